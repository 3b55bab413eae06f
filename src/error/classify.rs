//! How a failure is classified: its kind, whether it is worth another
//! attempt, and what it says about its host.
//!
//! One table, read by every layer: the transport (what a ureq error or a
//! status is), the retry rules (what is retried), the per-host governor
//! (what pushes a host's limit down or counts against its breaker), and
//! [`Error::is_retryable`] for callers.
//!
//! [`Error::is_retryable`]: crate::Error::is_retryable

use super::ErrorKind;

/// Whether a failure of this kind (and status) is worth another attempt.
///
/// The table: 5xx (but 501), 408 and 429 statuses, network errors and
/// timeouts are retried; 404/410, other 4xx, 501 (the server does not do
/// the method, and will not start to: curl and go-retryablehttp agree),
/// TLS, JSON, size, breaker and request errors are not, because sending
/// the same request again would fail the same way.
pub(crate) fn is_retryable(kind: ErrorKind, status: Option<u16>) -> bool {
    match kind {
        ErrorKind::Network | ErrorKind::Timeout => true,
        ErrorKind::Status => matches!(status, Some(408 | 429 | 500..=599)) && status != Some(501),
        _ => false,
    }
}

/// How the host answered a failed attempt: the kind of the governor's
/// [`Answer`](crate::policy::host::Answer), which adds its figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HostAnswer {
    /// The host answered, and is well: a 404, a 403, a body too large...
    Answered,
    /// It said "too many" (429): slow down, but it is well.
    Throttled,
    /// It is overloaded: 503, 504, a timeout, a refused or reset connection.
    /// Slow down; a failure for its breaker.
    Overloaded,
    /// It failed otherwise (500, 502, ...): a failure for its breaker.
    Failed,
    /// Nothing about the host: the request was not sent whole, or was
    /// stopped by its batch.
    Nothing,
}

/// What a failure of this kind (and status) says about its host.
pub(crate) fn host_answer(kind: ErrorKind, status: Option<u16>) -> HostAnswer {
    match kind {
        ErrorKind::Network | ErrorKind::Timeout => HostAnswer::Overloaded,
        ErrorKind::Status => match status {
            Some(429) => HostAnswer::Throttled,
            Some(503 | 504) => HostAnswer::Overloaded,
            // 501: the method is not done here; the host is well.
            Some(501) | None => HostAnswer::Answered,
            Some(500..=599) => HostAnswer::Failed,
            // 408: the server gave up waiting for the request.
            Some(408) => HostAnswer::Nothing,
            Some(_) => HostAnswer::Answered,
        },
        ErrorKind::InvalidRequest
        | ErrorKind::Cancelled
        | ErrorKind::DeadlineExceeded
        | ErrorKind::CircuitOpen
        | ErrorKind::Offline
        | ErrorKind::InvalidConfig
        | ErrorKind::Internal => HostAnswer::Nothing,
        // It answered: a 404, TLS it could speak, a body we refused...
        _ => HostAnswer::Answered,
    }
}

/// The kind of error a non-2xx status is, or `None` for a success.
pub(crate) fn classify_status(status: u16) -> Option<ErrorKind> {
    match status {
        200..=299 => None,
        404 | 410 => Some(ErrorKind::NotFound),
        _ => Some(ErrorKind::Status),
    }
}

/// The kind of error a ureq transport error is.
pub(crate) fn classify_transport(error: &ureq::Error) -> ErrorKind {
    use std::io::ErrorKind as Io;
    match error {
        ureq::Error::Timeout(_) => ErrorKind::Timeout,
        ureq::Error::Io(io) if matches!(io.kind(), Io::TimedOut | Io::WouldBlock) => {
            ErrorKind::Timeout
        }
        // rustls reports handshake and certificate failures as I/O errors.
        ureq::Error::Io(io) if io.get_ref().is_some_and(is_rustls_error) => ErrorKind::Tls,
        ureq::Error::BodyExceedsLimit(_) | ureq::Error::LargeResponseHeader(..) => {
            ErrorKind::BodyTooLarge
        }
        // A head of more header lines than ureq reads (127) is too large
        // too: the same request gets the same head again.
        ureq::Error::Protocol(protocol) if is_too_many_headers(protocol) => ErrorKind::BodyTooLarge,
        ureq::Error::Tls(_)
        | ureq::Error::Pem(_)
        | ureq::Error::Rustls(_)
        | ureq::Error::TlsRequired => ErrorKind::Tls,
        ureq::Error::Http(_) | ureq::Error::BadUri(_) | ureq::Error::InvalidProxyUrl => {
            ErrorKind::InvalidRequest
        }
        // A request head that does not fit the output buffer (a header of
        // more than 16 KiB): sending it again cannot help. (ureq's protocol
        // errors are ureq-proto's, whose type it does not re-export.)
        ureq::Error::Protocol(protocol) if protocol.to_string().starts_with("output too small") => {
            ErrorKind::InvalidRequest
        }
        // Only https requests are https-only: this is a redirect down to http.
        ureq::Error::RedirectFailed
        | ureq::Error::TooManyRedirects
        | ureq::Error::RequireHttpsOnly(_) => ErrorKind::Redirect,
        // Connection failures, resets, truncated bodies, malformed or
        // oversized responses, broken compression: the exchange failed on
        // the way, and another attempt may well succeed.
        _ => ErrorKind::Network,
    }
}

/// Whether ureq-proto refused a response head for its number of header
/// lines (its error type is not re-exported: its words tell).
fn is_too_many_headers(protocol: &impl std::fmt::Display) -> bool {
    protocol.to_string().contains("too many headers")
}

/// Whether `error` is about the response head, not the body: a head
/// larger than ureq reads, in bytes or in header lines.
pub(crate) fn is_head_too_large(error: &ureq::Error) -> bool {
    match error {
        ureq::Error::LargeResponseHeader(..) => true,
        ureq::Error::Protocol(protocol) => is_too_many_headers(protocol),
        _ => false,
    }
}

fn is_rustls_error(error: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    error.is::<rustls::Error>()
}

/// Whether a transport error looks like the server closed the connection
/// before answering: on a pooled connection, that is a stale connection
/// (closed while idle), not a failure of the host.
pub(crate) fn is_closed_before_response(error: &ureq::Error) -> bool {
    use std::io::ErrorKind as Io;
    matches!(error, ureq::Error::Io(io) if matches!(
        io.kind(),
        Io::UnexpectedEof | Io::ConnectionReset | Io::ConnectionAborted | Io::BrokenPipe
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_and_host_table() {
        use HostAnswer::{Answered, Failed, Nothing, Overloaded, Throttled};
        // (kind, status, retried, what it says about the host)
        let cases = [
            (ErrorKind::Status, Some(500), true, Failed),
            (ErrorKind::Status, Some(502), true, Failed),
            (ErrorKind::Status, Some(503), true, Overloaded),
            (ErrorKind::Status, Some(504), true, Overloaded),
            (ErrorKind::Status, Some(501), false, Answered),
            (ErrorKind::Status, Some(429), true, Throttled),
            (ErrorKind::Status, Some(408), true, Nothing),
            (ErrorKind::Status, Some(400), false, Answered),
            (ErrorKind::Status, Some(401), false, Answered),
            (ErrorKind::Status, Some(304), false, Answered),
            (ErrorKind::NotFound, Some(404), false, Answered),
            (ErrorKind::NotFound, Some(410), false, Answered),
            (ErrorKind::Network, None, true, Overloaded),
            (ErrorKind::Timeout, None, true, Overloaded),
            (ErrorKind::Tls, None, false, Answered),
            (ErrorKind::InvalidJson, None, false, Answered),
            (ErrorKind::BodyTooLarge, None, false, Answered),
            (ErrorKind::Redirect, None, false, Answered),
            (ErrorKind::CircuitOpen, None, false, Nothing),
            (ErrorKind::InvalidRequest, None, false, Nothing),
            (ErrorKind::Cancelled, None, false, Nothing),
            (ErrorKind::DeadlineExceeded, None, false, Nothing),
            (ErrorKind::Offline, None, false, Nothing),
            (ErrorKind::Internal, None, false, Nothing),
        ];
        for (kind, status, retryable, verdict) in cases {
            assert_eq!(is_retryable(kind, status), retryable, "{kind:?} {status:?}");
            assert_eq!(host_answer(kind, status), verdict, "{kind:?} {status:?}");
        }
    }

    #[test]
    fn status_classes() {
        assert_eq!(classify_status(200), None);
        assert_eq!(classify_status(204), None);
        assert_eq!(classify_status(404), Some(ErrorKind::NotFound));
        assert_eq!(classify_status(410), Some(ErrorKind::NotFound));
        assert_eq!(classify_status(304), Some(ErrorKind::Status));
        assert_eq!(classify_status(503), Some(ErrorKind::Status));
    }

    #[test]
    fn transport_classes() {
        use std::io;
        let cases = [
            (
                ureq::Error::Io(io::ErrorKind::ConnectionRefused.into()),
                ErrorKind::Network,
            ),
            (
                ureq::Error::Io(io::ErrorKind::TimedOut.into()),
                ErrorKind::Timeout,
            ),
            (ureq::Error::HostNotFound, ErrorKind::Network),
            (ureq::Error::ConnectionFailed, ErrorKind::Network),
            (ureq::Error::BodyExceedsLimit(10), ErrorKind::BodyTooLarge),
            (
                ureq::Error::LargeResponseHeader(1 << 20, 1 << 15),
                ErrorKind::BodyTooLarge,
            ),
            (ureq::Error::BadUri("x".into()), ErrorKind::InvalidRequest),
            (ureq::Error::TooManyRedirects, ErrorKind::Redirect),
            (
                ureq::Error::RequireHttpsOnly("http://h/".into()),
                ErrorKind::Redirect,
            ),
            (ureq::Error::Tls("bad"), ErrorKind::Tls),
            (
                ureq::Error::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
                )),
                ErrorKind::Tls,
            ),
        ];
        for (error, want) in cases {
            assert_eq!(classify_transport(&error), want, "{error}");
        }
        assert!(is_closed_before_response(&ureq::Error::Io(
            io::ErrorKind::UnexpectedEof.into()
        )));
        assert!(!is_closed_before_response(&ureq::Error::Io(
            io::ErrorKind::ConnectionRefused.into()
        )));
    }
}
