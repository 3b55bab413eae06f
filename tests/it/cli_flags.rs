//! The command's settings: every `PARFETCH_*` variable the library reads
//! (a flag winning over its variable), the flags that read like curl's
//! (`--retry`, `--connect-timeout`, `-A`, `-k`, `--max-per-host`), and
//! `-v`/`-vv` (the library's log, without secrets).
#![cfg(feature = "cli")]

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::{assert_exit, lines, parfetch_with_env};
use crate::pki::{ca_as_server, ok_json, TlsServer};
use crate::server::{Reply, TestServer};

/// Requests a server is answering at once: now, and at most.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

/// A server that holds each request until `gather` are in at once (5 s
/// at most), then 30 ms more, so that requests that overlap are seen to.
fn gathering(gather: usize) -> (TestServer, Arc<InFlight>) {
    let counts = Arc::new(InFlight::default());
    let seen = Arc::clone(&counts);
    let server = TestServer::start(move |_| {
        let now = seen.now.fetch_add(1, SeqCst) + 1;
        seen.max.fetch_max(now, SeqCst);
        let started = Instant::now();
        while seen.now.load(SeqCst) < gather && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(30));
        seen.now.fetch_sub(1, SeqCst);
        Reply::json(200, "{}")
    });
    (server, counts)
}

/// The most requests in flight at once for 6 URLs, run with `args` and `vars`.
fn most_at_once(gather: usize, args: &[&str], vars: &[(&str, &str)]) -> usize {
    let (server, counts) = gathering(gather);
    let urls: Vec<String> = (0..6).map(|i| server.url(&format!("/{i}"))).collect();
    let mut all: Vec<&str> = urls.iter().map(String::as_str).collect();
    all.extend(args);
    all.push("-q");
    assert_exit(&parfetch_with_env(&all, vars, None), 0);
    counts.max.load(SeqCst)
}

#[test]
fn parfetch_concurrency_sets_requests_in_flight_and_c_wins() {
    assert_eq!(most_at_once(1, &[], &[("PARFETCH_CONCURRENCY", "1")]), 1);
    assert!(most_at_once(2, &["-c", "3"], &[("PARFETCH_CONCURRENCY", "1")]) >= 2);
}

#[test]
fn max_per_host_caps_one_host_whatever_the_concurrency() {
    assert_eq!(most_at_once(1, &["-c", "4", "--max-per-host", "1"], &[]), 1);
    assert!(most_at_once(2, &["-c", "4"], &[]) >= 2);
}

/// The error message of the one line of a run of `args` with `vars`.
fn error_message(args: &[&str], vars: &[(&str, &str)]) -> String {
    let output = parfetch_with_env(args, vars, None);
    assert_exit(&output, 2);
    let line = &lines(&output)[0];
    line["error"]["message"].as_str().unwrap().to_owned()
}

#[test]
fn parfetch_timeout_bounds_an_attempt_and_timeout_wins() {
    let server = TestServer::start(|_| Reply::Stall(Duration::from_secs(10)));
    let url = server.url("/slow");
    let args = ["--retry", "0", "-q", &url];
    let started = Instant::now();
    let message = error_message(&args, &[("PARFETCH_TIMEOUT", "300ms")]);
    assert!(message.contains("300ms"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let mut flagged = args.to_vec();
    flagged.extend(["--timeout", "700ms"]);
    let message = error_message(&flagged, &[("PARFETCH_TIMEOUT", "300ms")]);
    assert!(
        message.contains("700ms") && !message.contains("300ms"),
        "{message}"
    );
}

#[test]
fn parfetch_connect_timeout_and_connect_timeout_bound_the_handshake() {
    // Takes the connection, never answers the TLS ClientHello.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/x", silent.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream);
        }
    });
    let args = ["--retry", "0", "--timeout", "20", "-q", &url];
    let started = Instant::now();
    let message = error_message(&args, &[("PARFETCH_CONNECT_TIMEOUT", "300ms")]);
    assert!(message.contains("300ms"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let mut flagged = args.to_vec();
    flagged.extend(["--connect-timeout", "400ms"]);
    let message = error_message(&flagged, &[("PARFETCH_CONNECT_TIMEOUT", "300ms")]);
    assert!(
        message.contains("400ms") && !message.contains("300ms"),
        "{message}"
    );
}

#[test]
fn parfetch_retries_and_retry_set_the_attempts() {
    // A 503 that may be retried at once.
    let server = TestServer::start(|_| Reply::status(503).with_header("retry-after", "0"));
    let url = server.url("/busy");
    let attempts = |args: &[&str], vars: &[(&str, &str)]| {
        let mut all = vec!["-q", url.as_str()];
        all.extend(args);
        let output = parfetch_with_env(&all, vars, None);
        assert_exit(&output, 2);
        lines(&output)[0]["attempts"].as_u64().unwrap()
    };
    assert_eq!(attempts(&[], &[("PARFETCH_RETRIES", "2")]), 3);
    assert_eq!(attempts(&["--retry", "1"], &[("PARFETCH_RETRIES", "2")]), 2);
    // curl's name, and the old one.
    assert_eq!(
        attempts(&["--retries", "0"], &[("PARFETCH_RETRIES", "2")]),
        1
    );
}

#[test]
fn parfetch_user_agent_and_a_set_the_user_agent() {
    let server = TestServer::start(|request| {
        let agent = request.header("user-agent").unwrap_or_default();
        Reply::json(200, format!(r#"{{"agent":{agent:?}}}"#))
    });
    let url = server.url("/whoami");
    let agent = |args: &[&str], vars: &[(&str, &str)]| {
        let mut all = vec!["-q", url.as_str()];
        all.extend(args);
        let output = parfetch_with_env(&all, vars, None);
        assert_exit(&output, 0);
        lines(&output)[0]["body"]["agent"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(agent(&[], &[]).starts_with("parfetch/"));
    let from_env = [("PARFETCH_USER_AGENT", "env-agent/1")];
    assert_eq!(agent(&[], &from_env), "env-agent/1");
    assert_eq!(agent(&["-A", "flag-agent/2"], &from_env), "flag-agent/2");
    assert_eq!(agent(&["--user-agent", "long/3"], &from_env), "long/3");
}

#[test]
fn parfetch_cache_dir_offline_and_ci_steer_the_cache() {
    let server =
        TestServer::start(|_| Reply::json(200, "[1]").with_header("cache-control", "max-age=3600"));
    let dir = crate::scratch_dir("cli-env-cache");
    let cache = dir.join("cache");
    let cache = cache.to_str().unwrap();
    let url = server.url("/doc");
    let run = |vars: &[(&str, &str)], args: &[&str], code: i32| {
        let mut all = vec!["-q", url.as_str()];
        all.extend(args);
        let output = parfetch_with_env(&all, vars, None);
        assert_exit(&output, code);
        output
    };
    run(&[("PARFETCH_CACHE_DIR", cache)], &[], 0);
    assert_eq!(server.requests(), 1);
    // Offline: from the cache, the server not asked.
    let offline = [("PARFETCH_CACHE_DIR", cache), ("PARFETCH_OFFLINE", "1")];
    let output = run(&offline, &[], 0);
    assert_eq!(lines(&output)[0]["body"], serde_json::json!([1]));
    assert_eq!(server.requests(), 1);
    // --cache-dir wins: another, empty cache, so offline finds nothing.
    let other = dir.join("other");
    let output = run(&offline, &["--cache-dir", other.to_str().unwrap()], 2);
    assert_eq!(lines(&output)[0]["error"]["kind"], "Offline");
    // Offline without a cache cannot work: said before the run.
    let output = run(&[("PARFETCH_OFFLINE", "true")], &[], 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("offline mode needs a cache_dir"),
        "{stderr}"
    );
    // CI: no cache, whatever else says.
    let ci = [("PARFETCH_CACHE_DIR", cache), ("PARFETCH_CI", "1")];
    run(&ci, &[], 0);
    run(&ci, &["--cache-dir", cache], 0);
    assert_eq!(server.requests(), 3);
}

#[test]
fn a_bad_parfetch_variable_is_an_error_naming_it() {
    let cases: [(&str, &str, &[&str]); 7] = [
        ("PARFETCH_CONCURRENCY", "lots", &[]),
        ("PARFETCH_TIMEOUT", "soon", &[]),
        ("PARFETCH_CONNECT_TIMEOUT", "-1", &[]),
        ("PARFETCH_RETRIES", "x", &[]),
        ("PARFETCH_OFFLINE", "maybe", &[]),
        ("PARFETCH_CI", "perhaps", &[]),
        ("PARFETCH_SHARDS", "0", &["--shard", "auto"]),
    ];
    for (name, value, flags) in cases {
        let mut args = vec!["-q", "http://127.0.0.1:1/"];
        args.extend(flags);
        let vars = [(name, value), ("JOB_COMPLETION_INDEX", "0")];
        let output = parfetch_with_env(&args, &vars, None);
        assert_exit(&output, 1);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(&format!("{name}={value:?}")), "{stderr}");
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn help_names_every_variable() {
    let output = parfetch_with_env(&["--help"], &[], None);
    assert_exit(&output, 0);
    let help = String::from_utf8_lossy(&output.stdout);
    for name in [
        "PARFETCH_CONCURRENCY",
        "PARFETCH_TIMEOUT",
        "PARFETCH_CONNECT_TIMEOUT",
        "PARFETCH_RETRIES",
        "PARFETCH_USER_AGENT",
        "PARFETCH_CACHE_DIR",
        "PARFETCH_OFFLINE",
        "PARFETCH_CI",
        "PARFETCH_SHARDS",
        "JOB_COMPLETION_INDEX",
        "CLOUD_RUN_TASK_INDEX",
        "AWS_BATCH_JOB_ARRAY_INDEX",
        "SLURM_ARRAY_TASK_MIN",
        "--retry <N>",
        "--retries",
        "--connect-timeout <DURATION>",
        "-A, --user-agent <NAME>",
        "-k, --danger-accept-invalid-certs",
        "--insecure",
        "--max-per-host <N>",
        "-v, --verbose",
        "--resume",
        "--failed <FILE>",
        "--shard-by <HOW>",
        "--shards <N>",
    ] {
        assert!(help.contains(name), "--help lacks {name:?}");
    }
}

#[test]
fn k_and_insecure_accept_any_certificate_with_the_warning() {
    let server = TlsServer::start(&ca_as_server(), None, ok_json(r#"{"ok":true}"#));
    let url = format!("{}/x", server.base);
    let checked = parfetch_with_env(&["--retry", "0", "-q", &url], &[], None);
    assert_exit(&checked, 2);
    assert_eq!(lines(&checked)[0]["error"]["kind"], "Tls");
    for flag in ["-k", "--insecure", "--danger-accept-invalid-certs"] {
        // Even with -q: the run is not what a run usually is.
        let output = parfetch_with_env(&[flag, "-q", &url], &[], None);
        assert_exit(&output, 0);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("parfetch: warning: TLS certificate verification is OFF"),
            "{flag}: {stderr}"
        );
    }
}

#[test]
fn v_shows_the_librarys_log_and_never_its_secrets() {
    // From the brief of issue 27: the library's log lines never show secrets.
    let server = TestServer::start(|_| Reply::status(503).with_header("retry-after", "0"));
    let url = server
        .url("/private.json")
        .replace("http://", "http://me:PASSWORD@");
    let run = |flags: &[&str]| {
        let mut args = vec![
            "--retry",
            "2",
            "-H",
            "Authorization: Bearer SECRET-TOKEN",
            "-H",
            "Cookie: session=SECRET-COOKIE",
            "-H",
            "X-Api-Key: SECRET-KEY",
            &url,
        ];
        args.extend(flags);
        let output = parfetch_with_env(&args, &[], None);
        assert_exit(&output, 2);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        for secret in ["PASSWORD", "SECRET-TOKEN", "SECRET-COOKIE", "SECRET-KEY"] {
            assert!(
                !stderr.contains(secret),
                "{flags:?} shows {secret}: {stderr}"
            );
        }
        stderr
    };
    let quiet = run(&[]);
    assert!(!quiet.contains("retrying in"), "{quiet}");
    let warnings = run(&["-v"]);
    assert!(
        warnings.contains("parfetch: warning: ") && warnings.contains("retrying in"),
        "{warnings}"
    );
    assert!(warnings.contains("http://***@127.0.0.1"), "{warnings}");
    assert!(!warnings.contains("parfetch: debug: "), "{warnings}");
    let debug = run(&["-vv"]);
    assert!(debug.contains("parfetch: debug: "), "{debug}");
    assert!(debug.contains("attempt 1 failed in"), "{debug}");
}
