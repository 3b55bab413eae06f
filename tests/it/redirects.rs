//! Redirects: which are followed, and what goes along. Sensitive headers
//! stay with their origin however it is spelt. (https never down to http:
//! tls.rs.)

use std::sync::{Arc, Mutex};

use parfetch::{ErrorKind, Request};

use crate::server::{Reply, TestServer};

/// What `error` says: its message, its `Debug`, and every cause under it.
fn whole_story(error: &parfetch::Error) -> String {
    let mut story = format!("{error} {error:?}");
    let mut cause = std::error::Error::source(error);
    while let Some(error) = cause {
        story.push_str(": ");
        story.push_str(&error.to_string());
        cause = error.source();
    }
    story
}

// With redirect_loop_is_reported of errors.rs.
/// More than `max_redirects` hops end the request with `Redirect`, after
/// one attempt, saying how many were allowed; a loop is named as one
/// (README, Errors), an endless chain that never comes back is not. (The
/// reason is in the error's `Debug` today: its `Display` says only
/// "redirect not followed".)
#[test]
fn too_many_redirects_are_counted_and_a_loop_is_named() {
    let server = TestServer::start(|request| {
        if let Some(n) = request.path.strip_prefix("/hop/") {
            let next = n.parse::<u32>().unwrap() + 1;
            return Reply::status(302).with_header("location", format!("/hop/{next}"));
        }
        let next = if request.path == "/a" { "/b" } else { "/a" };
        Reply::status(302).with_header("location", next)
    });
    let fetcher = crate::quick().max_redirects(3).build().unwrap();
    for (path, looped) in [("/a", true), ("/hop/0", false)] {
        let error = fetcher.get_bytes(server.url(path)).unwrap_err();
        assert_eq!(
            (error.kind(), error.attempts()),
            (ErrorKind::Redirect, 1),
            "{error:?}"
        );
        let story = whole_story(&error);
        assert!(story.contains("more than 3 redirects"), "{story}");
        assert_eq!(
            story.contains("they go round in a loop"),
            looped,
            "{path}: {story}"
        );
    }
    // 1 + 3 hops each, and no more.
    assert_eq!(server.requests(), 8);
}

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

// From review 1 (issue 12), the hardening (issue 12) and tls.rs.
/// Sensitive headers (the caller's `Authorization`, `Proxy-Authorization`
/// and `Cookie`, a default-sensitive `X-API-Key` from the builder, a header
/// the builder marks sensitive, one a request marks sensitive) do not
/// follow a redirect to another origin: another port, an IP instead of a
/// name, a `//host` Location, another host name after a hop on the same
/// origin, back to the first origin after another (A -> B -> A), a
/// Location with user info of its own. Other headers go along; a host
/// spelled in upper case is the same origin and keeps them all.
#[test]
fn sensitive_headers_stay_with_their_origin_however_spelt() {
    let seen_a: Seen = Arc::default();
    let seen_b: Seen = Arc::default();
    let a = recording_server(&seen_a);
    let b = recording_server(&seen_b);
    let (pa, pb) = (a.addr().port(), b.addr().port());
    let fetcher = crate::quick()
        .header("authorization", "Bearer BUILDER")
        .header("x-api-key", "KEY")
        .sensitive_header_name("X-Partner")
        .build()
        .unwrap();
    // Start, the server that answers last, the path it answers, whether
    // that is the first request's origin.
    let rows: [(String, &Seen, &str, bool); 7] = [
        // Another port on the same IP.
        (
            format!("http://127.0.0.1:{pa}/go/http:~~127.0.0.1:{pb}~port"),
            &seen_b,
            "/port",
            false,
        ),
        // A name, then an IP for the same machine.
        (
            format!("http://localhost:{pa}/go/http:~~127.0.0.1:{pa}~ip"),
            &seen_a,
            "/ip",
            false,
        ),
        // A scheme-relative Location.
        (
            format!("http://127.0.0.1:{pa}/go/~~localhost:{pa}~relative"),
            &seen_a,
            "/relative",
            false,
        ),
        // A hop on the same origin, then another host name.
        (
            format!("http://127.0.0.1:{pa}/go/~go~http:~~localhost:{pb}~landing"),
            &seen_b,
            "/landing",
            false,
        ),
        // A -> B -> A.
        (
            format!("http://127.0.0.1:{pa}/go/http:~~127.0.0.1:{pb}~go~http:~~127.0.0.1:{pa}~back"),
            &seen_a,
            "/back",
            false,
        ),
        // A Location with user info, to another port: the caller's secrets
        // stay behind (ureq sends the Location's own user info as Basic
        // auth, which is the server's business, not a leak).
        (
            format!("http://127.0.0.1:{pa}/go/http:~~evil:pw@127.0.0.1:{pb}~userinfo"),
            &seen_b,
            "/userinfo",
            false,
        ),
        // Same origin, host in upper case: kept (not a leak, and expected).
        (
            format!("http://localhost:{pa}/go/http:~~LOCALHOST:{pa}~same"),
            &seen_a,
            "/same",
            true,
        ),
    ];
    let secrets = [
        "authorization",
        "proxy-authorization",
        "cookie",
        "x-api-key",
        "x-partner",
        "x-signed",
    ];
    for (start, seen, path, same_origin) in rows {
        fetcher
            .get_bytes(
                Request::get(&start)
                    .header("proxy-authorization", "Basic PROXY")
                    .header("cookie", "session=COOKIE")
                    .header("x-partner", "PARTNER")
                    .sensitive_header("x-signed", "SIGNED")
                    .header("x-trace", "t1"),
            )
            .unwrap();
        let seen = seen.lock().unwrap();
        let arrived: Vec<&Vec<(String, String)>> = seen
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, headers)| headers)
            .collect();
        let [headers] = arrived[..] else {
            panic!("{start}: {path} was requested {} times", arrived.len());
        };
        let value = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let carried: Vec<&str> = secrets
            .into_iter()
            .filter(|name| match (*name, value(name)) {
                ("authorization", Some(v)) => v.starts_with("Bearer "),
                (_, found) => found.is_some(),
            })
            .collect();
        let want: &[&str] = if same_origin { &secrets } else { &[] };
        assert_eq!(carried, want, "{start} -> {path}: {headers:?}");
        assert_eq!(value("x-trace"), Some("t1"), "{start} -> {path}");
    }
}
