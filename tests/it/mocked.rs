//! Exact request counts and request shapes, checked by mockito.

use mockito::Matcher;

use parfetch::ErrorKind;

#[test]
fn not_found_is_requested_exactly_once() {
    let mut server = mockito::Server::new();
    let mock = server
        .mock("GET", "/gone.json")
        .with_status(404)
        .expect(1)
        .create();
    let fetcher = crate::quick().build().unwrap();
    let error = fetcher
        .get_bytes(format!("{}/gone.json", server.url()))
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    mock.assert();
}

#[test]
fn server_errors_are_requested_one_plus_retries_times() {
    let mut server = mockito::Server::new();
    let mock = server
        .mock("GET", "/flaky.json")
        .with_status(502)
        .expect(3)
        .create();
    let fetcher = crate::quick().max_retries(2).build().unwrap();
    let error = fetcher
        .get_bytes(format!("{}/flaky.json", server.url()))
        .unwrap_err();
    assert_eq!((error.status(), error.attempts()), (Some(502), 3));
    mock.assert();
}

#[test]
fn requests_carry_the_default_and_own_headers() {
    let mut server = mockito::Server::new();
    let mock = server
        .mock("GET", "/laps.json")
        .match_header("accept", "application/json")
        .match_header("x-api-key", "k")
        .match_header("user-agent", Matcher::Regex("^parfetch/".into()))
        .match_header("accept-encoding", Matcher::Regex("gzip".into()))
        .with_body(r#"{"laps":[1,2]}"#)
        .expect(1)
        .create();
    let fetcher = crate::quick().header("x-api-key", "k").build().unwrap();
    let value: parfetch::Value = fetcher
        .get_json(format!("{}/laps.json", server.url()))
        .unwrap();
    assert_eq!(value["laps"][1], 2);
    mock.assert();
}
