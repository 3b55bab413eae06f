//! Redirects: which are followed, and what goes along. Sensitive headers
//! stay with their origin however it is spelled.

use std::sync::{Arc, Mutex};

use parfetch::Request;

use crate::server::{Reply, TestServer};

type Seen = Arc<Mutex<Vec<(String, Vec<(String, String)>)>>>;

fn recording_server(seen: &Seen) -> TestServer {
    let seen = Arc::clone(seen);
    TestServer::start(move |request| {
        seen.lock()
            .unwrap()
            .push((request.path.clone(), request.headers.clone()));
        if let Some(rest) = request.path.strip_prefix("/go/") {
            // /go/<percent-free location>
            let location = rest.replace('~', "/");
            return Reply::status(307).with_header("location", location);
        }
        Reply::json(200, "{}")
    })
}

// From review 1 (issue 12).
/// Held: sensitive headers do not follow a redirect to another port, to an
/// IP instead of a name, to a `//host` Location, nor back to the first
/// origin after another (A -> B -> A); a host spelled in upper case is the
/// same origin and keeps them.
#[test]
fn sensitive_headers_do_not_cross_origins_however_spelled() {
    let seen_a: Seen = Arc::default();
    let seen_b: Seen = Arc::default();
    let a = recording_server(&seen_a);
    let b = recording_server(&seen_b);
    let (pa, pb) = (a.addr().port(), b.addr().port());
    let fetcher = crate::quick()
        .header("x-api-key", "KEY")
        .sensitive_header("x-partner")
        .build()
        .unwrap();
    let send = |url: String| {
        fetcher
            .get_bytes(
                Request::get(url)
                    .header("authorization", "Bearer TOKEN")
                    .header("x-partner", "PARTNER")
                    .sensitive_header("x-signed", "SIGNED"),
            )
            .unwrap();
    };
    let leaked = |seen: &Seen, path: &str| -> Vec<String> {
        let seen = seen.lock().unwrap();
        let (_, headers) = seen
            .iter()
            .rev()
            .find(|(p, _)| p == path)
            .unwrap_or_else(|| panic!("{path} was not requested: {seen:?}"));
        headers
            .iter()
            .filter(|(n, v)| {
                ["x-api-key", "x-partner", "x-signed"].contains(&n.as_str())
                    || (n == "authorization" && v == "Bearer TOKEN")
            })
            .map(|(n, _)| n.clone())
            .collect()
    };
    // Another port on the same IP.
    send(format!(
        "http://127.0.0.1:{pa}/go/http:~~127.0.0.1:{pb}~port"
    ));
    assert!(
        leaked(&seen_b, "/port").is_empty(),
        "{:?}",
        leaked(&seen_b, "/port")
    );
    // A name, then an IP for the same machine.
    send(format!("http://localhost:{pa}/go/http:~~127.0.0.1:{pa}~ip"));
    assert!(
        leaked(&seen_a, "/ip").is_empty(),
        "{:?}",
        leaked(&seen_a, "/ip")
    );
    // A scheme-relative Location.
    send(format!(
        "http://127.0.0.1:{pa}/go/~~localhost:{pa}~relative"
    ));
    assert!(leaked(&seen_a, "/relative").is_empty());
    // A -> B -> A.
    send(format!(
        "http://127.0.0.1:{pa}/go/http:~~127.0.0.1:{pb}~go~http:~~127.0.0.1:{pa}~back"
    ));
    assert!(
        leaked(&seen_a, "/back").is_empty(),
        "{:?}",
        leaked(&seen_a, "/back")
    );
    // Location with user info, to another port: the caller's secrets stay
    // behind (ureq sends the Location's own user info as Basic auth, which
    // is the server's business, not a leak).
    send(format!(
        "http://127.0.0.1:{pa}/go/http:~~evil:pw@127.0.0.1:{pb}~userinfo"
    ));
    assert!(
        leaked(&seen_b, "/userinfo").is_empty(),
        "{:?}",
        seen_b.lock().unwrap().last()
    );
    // Same origin, host in upper case: kept (not a leak, and expected).
    send(format!(
        "http://localhost:{pa}/go/http:~~LOCALHOST:{pa}~same"
    ));
    assert_eq!(
        leaked(&seen_a, "/same").len(),
        4,
        "same origin keeps its headers"
    );
}

// From the hardening (issue 12).
#[test]
fn sensitive_headers_stay_with_their_origin_on_a_redirect() {
    type Seen = Arc<Mutex<Vec<Vec<(String, String)>>>>;
    let seen: Seen = Arc::default();
    let landing = TestServer::start({
        let seen = Arc::clone(&seen);
        move |request| {
            seen.lock().unwrap().push(request.headers.clone());
            Reply::json(200, "{}")
        }
    });
    // Another host: "localhost" rather than "127.0.0.1".
    let elsewhere = landing.url("/landing").replace("127.0.0.1", "localhost");
    let start = TestServer::start(move |request| match request.path.as_str() {
        "/same" => Reply::status(307).with_header("location", "/here"),
        "/here" => Reply::status(302).with_header("location", elsewhere.clone()),
        _ => Reply::json(200, "{}"),
    });
    let fetcher = crate::quick()
        .header("x-api-key", "KEY")
        .sensitive_header("X-Partner")
        .build()
        .unwrap();
    fetcher
        .get_bytes(
            Request::get(start.url("/same"))
                .header("authorization", "Bearer TOKEN")
                .header("proxy-authorization", "Basic PROXY")
                .header("cookie", "session=COOKIE")
                .header("x-partner", "PARTNER")
                .sensitive_header("x-signed", "SIGNED")
                .header("x-trace", "t1"),
        )
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "the chain reached the other host once");
    let names: Vec<&str> = seen[0].iter().map(|(name, _)| name.as_str()).collect();
    for secret in [
        "authorization",
        "proxy-authorization",
        "cookie",
        "x-api-key",
        "x-partner",
        "x-signed",
    ] {
        assert!(
            !names.contains(&secret),
            "{secret} went to another host: {names:?}"
        );
    }
    assert!(names.contains(&"x-trace"), "{names:?}");
}
