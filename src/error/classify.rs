//! How a failure is classified: its kind, and whether it is worth another
//! attempt.
//!
//! One table, read by every layer: the transport (what a ureq error or a
//! status is), the retry rules (what is retried), and [`Error::is_retryable`]
//! for callers.
//!
//! [`Error::is_retryable`]: crate::Error::is_retryable

use super::ErrorKind;

/// Whether a failure of this kind (and status) is worth another attempt.
///
/// The table: 5xx, 408 and 429 statuses, network errors and timeouts are
/// retried; 404/410, other 4xx, TLS, JSON, size, breaker and request errors
/// are not, because sending the same request again would fail the same way.
pub(crate) fn is_retryable(kind: ErrorKind, status: Option<u16>) -> bool {
    match kind {
        ErrorKind::Network | ErrorKind::Timeout => true,
        ErrorKind::Status => matches!(status, Some(408 | 429 | 500..=599)),
        _ => false,
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
    fn retryable_table() {
        let cases = [
            (ErrorKind::Status, Some(500), true, true),
            (ErrorKind::Status, Some(503), true, true),
            (ErrorKind::Status, Some(429), true, false),
            (ErrorKind::Status, Some(408), true, false),
            (ErrorKind::Status, Some(400), false, false),
            (ErrorKind::Status, Some(401), false, false),
            (ErrorKind::NotFound, Some(404), false, false),
            (ErrorKind::NotFound, Some(410), false, false),
            (ErrorKind::Network, None, true, true),
            (ErrorKind::Timeout, None, true, true),
            (ErrorKind::Tls, None, false, false),
            (ErrorKind::InvalidJson, None, false, false),
            (ErrorKind::BodyTooLarge, None, false, false),
            (ErrorKind::CircuitOpen, None, false, false),
            (ErrorKind::InvalidRequest, None, false, false),
            (ErrorKind::Redirect, None, false, false),
        ];
        for (kind, status, retryable, _) in cases {
            assert_eq!(is_retryable(kind, status), retryable, "{kind:?} {status:?}");
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
