//! TLS and redirects: certificates are verified unless turned off by name,
//! https never redirects down to http, credentials do not follow redirects
//! to another host.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use parfetch::{ErrorKind, Fetcher, Request, Value};

use crate::server::{Reply, TestServer};

/// A TLS server with a certificate made here for 127.0.0.1 and localhost;
/// every request gets `response`. Returns its https base URL and the
/// certificate's PEM.
fn tls_server(response: String) -> (String, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let pem = certified.cert.pem();
    let chain = vec![certified.cert.der().clone()];
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(certified.signing_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (config, response) = (Arc::clone(&config), response.clone());
            std::thread::spawn(move || {
                let Ok(connection) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut tls = BufReader::new(rustls::StreamOwned::new(connection, stream));
                let mut line = String::new();
                // Read the request head (a failed handshake ends here).
                while tls.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let _ = tls.get_mut().write_all(response.as_bytes());
                let _ = tls.get_mut().flush();
            });
        }
    });
    (format!("https://{addr}"), pem)
}

fn ok_json() -> String {
    let body = r#"{"tls":true}"#;
    format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn an_unknown_certificate_is_a_tls_error_and_is_not_retried() {
    let (base, _) = tls_server(ok_json());
    let error = crate::quick()
        .build()
        .unwrap()
        .get_bytes(format!("{base}/x"))
        .unwrap_err();
    assert_eq!(
        (error.kind(), error.attempts()),
        (ErrorKind::Tls, 1),
        "{error:?}"
    );
    assert!(!error.is_retryable());
}

#[test]
fn a_trusted_root_is_accepted() {
    let (base, pem) = tls_server(ok_json());
    let fetcher = crate::quick().trust_root_certificates(pem).build().unwrap();
    let value: Value = fetcher.get_json(format!("{base}/x")).unwrap();
    assert_eq!(value["tls"], true);
}

#[test]
fn verification_is_off_only_when_asked_by_name() {
    let (base, _) = tls_server(ok_json());
    let fetcher = crate::quick()
        .danger_accept_invalid_certificates(true)
        .build()
        .unwrap();
    let value: Value = fetcher.get_json(format!("{base}/x")).unwrap();
    assert_eq!(value["tls"], true);
    // The default builder verifies.
    let debug = format!("{:?}", Fetcher::builder());
    assert!(
        debug.contains("accept_invalid_certificates: false"),
        "{debug}"
    );
}

#[test]
fn https_never_redirects_down_to_http() {
    let plain = TestServer::start(|_| Reply::json(200, "{}"));
    let location = plain.url("/downgraded");
    let (base, pem) = tls_server(format!(
        "HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    ));
    let fetcher = crate::quick().trust_root_certificates(pem).build().unwrap();
    let error = fetcher.get_bytes(format!("{base}/start")).unwrap_err();
    assert_eq!(
        (error.kind(), error.attempts()),
        (ErrorKind::Redirect, 1),
        "{error:?}"
    );
    assert_eq!(plain.requests(), 0, "nothing was sent over plain http");
}

#[test]
fn credentials_do_not_follow_a_redirect_to_another_host() {
    type Seen = Arc<Mutex<Vec<(Option<String>, Option<String>, Option<String>)>>>;
    let seen: Seen = Arc::default();
    let other = TestServer::start({
        let seen = Arc::clone(&seen);
        move |request| {
            seen.lock().unwrap().push((
                request.header("authorization").map(str::to_owned),
                request.header("cookie").map(str::to_owned),
                request.header("x-trace").map(str::to_owned),
            ));
            Reply::json(200, "{}")
        }
    });
    // Another host: "localhost" rather than "127.0.0.1".
    let target = other.url("/landing").replace("127.0.0.1", "localhost");
    let first =
        TestServer::start(move |_| Reply::status(302).with_header("location", target.clone()));
    let fetcher = crate::quick()
        .header("authorization", "Bearer SECRET")
        .build()
        .unwrap();
    fetcher
        .get_bytes(
            Request::get(first.url("/start"))
                .header("cookie", "session=SECRET")
                .header("x-trace", "t1"),
        )
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0],
        (None, None, Some("t1".to_owned())),
        "credentials were dropped, the rest kept"
    );
}
