//! The `parfetch` command, end to end against a local server.
#![cfg(feature = "cli")]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::server::{json_doc, Reply, TestServer};

/// The variables a test's environment may carry that would change where
/// requests go or which roots are trusted.
const AMBIENT: [&str; 10] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// Prefixes of the variables that set the command's options (its own and
/// a job scheduler's): a test sets the ones it means.
const SETTINGS: [&str; 5] = [
    "PARFETCH_",
    "JOB_COMPLETION_INDEX",
    "CLOUD_RUN_",
    "AWS_BATCH_",
    "SLURM_",
];

fn parfetch(args: &[&str], stdin: Option<&str>) -> Output {
    parfetch_with_env(args, &[], stdin)
}

/// The command, with none of the test's proxy, certificate, `PARFETCH_*`
/// or scheduler variables in its environment.
pub(crate) fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_parfetch"));
    clean_env(&mut command);
    command
}

/// Takes the test's proxy, certificate, `PARFETCH_*` and scheduler
/// variables out of `command`'s environment (its children's too).
pub(crate) fn clean_env(command: &mut Command) {
    for name in AMBIENT {
        command.env_remove(name);
    }
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if SETTINGS.iter().any(|prefix| text.starts_with(prefix)) {
            command.env_remove(&name);
        }
    }
}

/// Runs the command with `vars` as the only proxy, certificate and
/// option variables of its environment.
pub(crate) fn parfetch_with_env(
    args: &[&str],
    vars: &[(&str, &str)],
    stdin: Option<&str>,
) -> Output {
    let mut child = command()
        .envs(vars.iter().copied())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// Asserts the command's exit code, showing its stderr if it differs.
pub(crate) fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

pub(crate) fn lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect()
}

/// `/doc/i` serves `json_doc(i, 300)`, the low indexes slowest; `/missing` 404s.
fn server() -> TestServer {
    TestServer::start(|request| {
        match request
            .path
            .strip_prefix("/doc/")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(i) => Reply::Delay(
                Duration::from_millis(40u64.saturating_sub(i as u64 * 2)),
                Box::new(Reply::json(200, json_doc(i, 300))),
            ),
            None => Reply::status(404),
        }
    })
}

fn url_file(dir: &Path, urls: &[String]) -> String {
    let path = dir.join("urls.txt");
    let mut text = String::from("# a comment\n\n");
    for url in urls {
        text.push_str(url);
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    crate::scratch_dir(&format!("cli-{name}"))
}

#[test]
fn json_lines_one_per_url_with_the_documented_keys() {
    let server = server();
    let dir = temp_dir("shape");
    let urls: Vec<String> = (0..20).map(|i| server.url(&format!("/doc/{i}"))).collect();
    let output = parfetch(&["-i", &url_file(&dir, &urls), "-c", "8", "-q"], None);
    assert_exit(&output, 0);
    let lines = lines(&output);
    assert_eq!(lines.len(), 20);
    for line in &lines {
        let keys: Vec<&str> = line
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "attempts",
                "body",
                "elapsed_ms",
                "error",
                "index",
                "ok",
                "status",
                "url"
            ]
        );
        let index = line["index"].as_u64().unwrap() as usize;
        assert_eq!(line["url"], urls[index]);
        assert_eq!(
            (line["ok"].as_bool(), line["status"].as_u64()),
            (Some(true), Some(200))
        );
        let want: serde_json::Value = serde_json::from_slice(&json_doc(index, 300)).unwrap();
        assert_eq!(line["body"], want);
    }
    let indexes: Vec<u64> = lines.iter().map(|l| l["index"].as_u64().unwrap()).collect();
    assert_ne!(
        indexes,
        (0..20).collect::<Vec<_>>(),
        "completion order by default"
    );
    assert!(output.stderr.is_empty(), "--quiet prints nothing");
}

#[test]
fn ordered_output_follows_the_input() {
    let server = server();
    let urls: Vec<String> = (0..20).map(|i| server.url(&format!("/doc/{i}"))).collect();
    let mut args: Vec<&str> = urls.iter().map(String::as_str).collect();
    args.extend(["--ordered", "-c", "8", "-q"]);
    let lines = lines(&parfetch(&args, None));
    let indexes: Vec<u64> = lines.iter().map(|l| l["index"].as_u64().unwrap()).collect();
    assert_eq!(indexes, (0..20).collect::<Vec<_>>());
}

#[test]
fn two_shards_cover_the_list_exactly_once() {
    let server = server();
    let dir = temp_dir("shards");
    let urls: Vec<String> = (0..21).map(|i| server.url(&format!("/doc/{i}"))).collect();
    let file = url_file(&dir, &urls);
    let mut seen = Vec::new();
    for shard in ["0/2", "1/2"] {
        for line in lines(&parfetch(&["-i", &file, "--shard", shard, "-q"], None)) {
            let index = line["index"].as_u64().unwrap() as usize;
            assert_eq!(
                line["url"], urls[index],
                "the index is the place in the whole list"
            );
            seen.push(index);
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..21).collect::<Vec<_>>());
}

#[test]
fn out_dir_writes_bodies_inside_the_directory_only() {
    let server =
        TestServer::start(|request| Reply::json(200, format!(r#"{{"path":{:?}}}"#, request.path)));
    let dir = temp_dir("mirror");
    let mirror = dir.join("mirror");
    let urls = [
        server.url("/laps/VER.json"),
        server.url("/../../escape.json"),
        server.url("/a%2F..%2Fb?x=1&y=/.."),
    ];
    let mut args = vec!["--out-dir", mirror.to_str().unwrap(), "-q"];
    args.extend(urls.iter().map(String::as_str));
    let output = parfetch(&args, None);
    assert_exit(&output, 0);
    let lines = lines(&output);
    assert_eq!(lines.len(), 3);
    for line in &lines {
        assert!(line.get("body").is_none(), "{line}");
        let file = Path::new(line["file"].as_str().unwrap());
        assert_eq!(file.parent(), Some(mirror.as_path()), "{}", file.display());
        let body: serde_json::Value =
            serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        assert!(body["path"].is_string());
    }
    let names: Vec<String> = std::fs::read_dir(&mirror)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("127.0.0.1_") && n.contains("laps_VER-")),
        "{names:?}"
    );
    // Nothing escaped next to the mirror.
    let beside: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside, ["mirror"]);
}

#[test]
fn out_dir_names_two_urls_with_one_stem_get_two_files() {
    let server = TestServer::start(|request| Reply::json(200, format!("{:?}", request.path)));
    let dir = temp_dir("mirror-names");
    let mirror = dir.join("mirror");
    // Signed URLs: one long path, then a query that differs.
    let long = server.url(&format!("/{}", "segment/".repeat(20)));
    let urls = [format!("{long}?sig=1"), format!("{long}?sig=2")];
    let mut args = vec!["--out-dir", mirror.to_str().unwrap(), "-q", "-c", "1"];
    args.extend(urls.iter().map(String::as_str));
    for _ in 0..2 {
        // A second run replaces the files of its own URLs.
        assert_exit(&parfetch(&args, None), 0);
        let mut names: Vec<String> = std::fs::read_dir(&mirror)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(names[0][..120], names[1][..120], "one stem");
        // Each URL's body under a name of its own.
        let bodies: std::collections::BTreeSet<String> = names
            .iter()
            .map(|name| serde_json::from_slice(&std::fs::read(mirror.join(name)).unwrap()).unwrap())
            .collect();
        let want = ["sig=1", "sig=2"].map(|q| format!("/{}?{q}", "segment/".repeat(20)));
        assert_eq!(bodies, want.into_iter().collect());
    }
    // Two URLs that differ only in user info want one name: the second is
    // an error for that URL, never an overwrite.
    let secret = |who: &str| {
        server
            .url("/x")
            .replace("http://", &format!("http://{who}@"))
    };
    let (first, second) = (secret("a:1"), secret("b:2"));
    let output = parfetch(
        &[
            "--out-dir",
            mirror.to_str().unwrap(),
            "-q",
            "-c",
            "1",
            &first,
            &second,
        ],
        None,
    );
    assert_exit(&output, 2);
    let mut lines = lines(&output);
    lines.sort_by_key(|l| l["index"].as_u64());
    assert_eq!(lines[0]["ok"], true);
    assert_eq!(
        (&lines[1]["ok"], &lines[1]["error"]["kind"]),
        (&false.into(), &"NameCollision".into())
    );
    assert!(lines[1].get("file").is_none());
    assert_eq!(std::fs::read_dir(&mirror).unwrap().count(), 3);
}

#[test]
fn failures_exit_2_and_bad_lines_are_reported_in_place() {
    let server = server();
    let input = format!(
        "{}\nnot a url\n{}\n",
        server.url("/doc/1"),
        server.url("/missing")
    );
    let output = parfetch(&["--retries", "0", "-q"], Some(&input));
    assert_eq!(output.status.code(), Some(2));
    let mut lines = lines(&output);
    lines.sort_by_key(|l| l["index"].as_u64());
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["ok"], true);
    assert_eq!(lines[1]["error"]["kind"], "InvalidRequest");
    assert_eq!(lines[1]["attempts"], 0);
    assert!(lines[1]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("http://"));
    assert_eq!(
        (
            lines[2]["error"]["kind"].as_str(),
            lines[2]["status"].as_u64()
        ),
        (Some("NotFound"), Some(404))
    );
}

#[test]
fn usage_and_io_errors_exit_1_with_a_message() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["-i", "/nonexistent/urls.txt"],
            "cannot read /nonexistent/urls.txt",
        ),
        (
            &["-H", "no colon here", "http://127.0.0.1:1/"],
            "invalid header \"no colon here\"",
        ),
        (
            &["-H", "x-evil: a\u{7f}b", "http://127.0.0.1:1/"],
            "forbidden character",
        ),
        (&["--concurrency", "many"], "invalid value 'many'"),
    ];
    for (args, want) in cases {
        let output = parfetch(args, None);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn the_summary_names_what_happened() {
    let server = server();
    let output = parfetch(
        &[
            &server.url("/doc/1"),
            &server.url("/missing"),
            "--retries",
            "0",
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("2 URLs in"), "{stderr}");
    assert!(stderr.contains("1 ok, 1 failed (NotFound 1)"), "{stderr}");
    assert!(stderr.contains(" · connections "), "{stderr}");
    // p50, p95 and max on one line, in milliseconds with one decimal.
    let latency = stderr
        .lines()
        .find(|l| l.contains("latency"))
        .unwrap_or_default();
    for part in [" p50 ", " ms · p95 ", " ms · max ", " ms · retries 0"] {
        assert!(latency.contains(part), "{latency}");
    }
    // Standard error is not a terminal here: no colour, no progress line.
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
}

/// The JSON summary names its counters as the library's `Stats` does
/// (`requests`, `successes`, `failures`, `bytes_received`, durations in
/// seconds), so a script reads one vocabulary.
// From the issue 26 follow-up: the CLI wrote `urls`, `ok`, `failed`,
// `bytes` and `latency_ms`.
#[test]
fn the_summary_goes_to_a_json_file_for_scripts() {
    let server = server();
    let dir = temp_dir("summary-json");
    let path = dir.join("summary.json");
    let output = parfetch(
        &[
            &server.url("/doc/1"),
            &server.url("/doc/2"),
            &server.url("/missing"),
            "--retries",
            "0",
            "-q",
            "--summary-json",
            path.to_str().unwrap(),
        ],
        None,
    );
    assert_exit(&output, 2);
    assert!(output.stderr.is_empty(), "quiet: nothing on standard error");
    let figures: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        (
            &figures["requests"],
            &figures["successes"],
            &figures["failures"]
        ),
        (&3.into(), &2.into(), &1.into())
    );
    assert_eq!(figures["failures_by_kind"]["NotFound"], 1);
    assert_eq!(figures["interrupted"], false);
    assert_eq!(figures["retries"], 0);
    let bytes = figures["bytes_received"].as_u64().unwrap();
    assert!(bytes > 0, "{figures}");
    let latency = &figures["latency"];
    let (p50, max) = (
        latency["p50"].as_f64().unwrap(),
        latency["max"].as_f64().unwrap(),
    );
    // Seconds: a loopback request takes far less than ten.
    assert!(p50 > 0.0 && p50 <= max && max < 10.0, "{latency}");
    for old in [
        "urls",
        "ok",
        "failed",
        "bytes",
        "latency_ms",
        "seconds",
        "per_second",
    ] {
        assert!(
            figures.get(old).is_none(),
            "{old} is not the library's word"
        );
    }
}

#[test]
fn completions_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef parfetch"),
        ("fish", "complete -c parfetch"),
    ] {
        let output = parfetch(&["completions", shell], None);
        assert_exit(&output, 0);
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("summary-json"), "{shell}");
    }
    let output = parfetch(&["completions", "tcsh"], None);
    assert_exit(&output, 1);
    assert!(String::from_utf8_lossy(&output.stderr).contains("bash, zsh, fish"));
}

#[test]
fn help_names_the_options() {
    let output = parfetch(&["--help"], None);
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    for line in [
        "Usage: parfetch [OPTIONS] [URLS]...",
        "-i, --input <FILE>",
        "-c, --concurrency <N|auto>",
        "--rate <PER_SECOND>",
        "-H, --header <HEADER>",
        "--shard <K/N|auto>",
        "--out-dir <DIR>",
        "--ordered",
        "--cache-dir <DIR>",
        "--offline",
        "--summary-json <FILE>",
        "--proxy <URL>",
        "--cacert <FILE>",
        // A worked example of each main use.
        "parfetch -i urls.txt -c 64 -o results.jsonl",
        "--out-dir mirror/ --rate 50",
        "--shard 0/4",
        "--cache-dir ~/.cache/parfetch --offline",
        "--proxy http://proxy.corp:3128 --cacert corp-ca.pem",
        "parfetch completions bash",
        "NO_COLOR",
        "Exit status: 0 all succeeded, 2 some failed, 1 usage or I/O error, 130 interrupted.",
    ] {
        assert!(help.contains(line), "--help lacks {line:?}:\n{help}");
    }
}

#[test]
fn ctrl_c_stops_new_requests_flushes_and_exits_130() {
    let server = TestServer::start(|request| {
        if request.path == "/fast" {
            Reply::json(200, "{}")
        } else {
            Reply::Stall(Duration::from_secs(20))
        }
    });
    let mut input = format!("{}\n", server.url("/fast"));
    for i in 0..1000 {
        input.push_str(&server.url(&format!("/slow/{i}")));
        input.push('\n');
    }
    let mut child = command()
        .args(["-c", "4", "--timeout", "1", "--ordered"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    // Ready for Ctrl-C: its handler is set before the batch starts, and
    // /fast is done once a fifth request comes, as only its worker (of 4)
    // is free for one.
    crate::support::wait_for("the fifth request", Duration::from_secs(20), || {
        server.requests() >= 5
    });
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let output = child.wait_with_output().unwrap();
    assert_exit(&output, 130);
    let lines = lines(&output);
    assert_eq!(lines[0]["ok"], true, "the finished request was written");
    assert!(
        lines.len() < 100,
        "requests kept starting after Ctrl-C: {}",
        lines.len()
    );
    assert!(
        lines[1..].iter().all(|l| l["error"]["kind"] == "Cancelled"),
        "{lines:?}"
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("URLs in"),
        "the summary"
    );
}

#[test]
fn cache_dir_then_offline() {
    let server =
        TestServer::start(|_| Reply::json(200, "[1]").with_header("cache-control", "max-age=3600"));
    let dir = temp_dir("cli-cache");
    let cache = dir.join("cache");
    let cache = cache.to_str().unwrap();
    let url = server.url("/x");
    assert_eq!(
        parfetch(&[&url, "--cache-dir", cache, "-q"], None)
            .status
            .code(),
        Some(0)
    );
    let output = parfetch(&[&url, "--cache-dir", cache, "--offline", "-q"], None);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(lines(&output)[0]["body"], serde_json::json!([1]));
    let missing = parfetch(
        &[&server.url("/y"), "--cache-dir", cache, "--offline", "-q"],
        None,
    );
    assert_eq!(missing.status.code(), Some(2));
    assert_eq!(lines(&missing)[0]["error"]["kind"], "Offline");
    assert_eq!(server.requests(), 1);
    let output = parfetch(&[&url, "--offline"], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("offline mode needs a cache_dir"));
}

#[test]
fn credentials_in_urls_never_reach_the_output() {
    let server = server();
    let dir = temp_dir("secrets");
    let ok = server
        .url("/doc/1")
        .replace("http://", "http://USER:SECRET@");
    let missing = server.url("/missing").replace("http://", "http://TOKEN@");
    let out_dir = dir.join("mirror");
    let output = parfetch(
        &["--retries", "0", "--out-dir", out_dir.to_str().unwrap()],
        Some(&format!("{ok}\n{missing}\n")),
    );
    assert_exit(&output, 2);
    let everything = [output.stdout.clone(), output.stderr.clone()].concat();
    let text = String::from_utf8_lossy(&everything);
    for secret in ["USER", "SECRET", "TOKEN"] {
        assert!(!text.contains(secret), "{secret} shown: {text}");
    }
    assert!(text.contains("http://***@127.0.0.1"), "{text}");
    for file in std::fs::read_dir(&out_dir).unwrap() {
        let name = file.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains("SECRET") && !name.contains("USER"), "{name}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bodies_are_written_as_sent_and_identical_across_runs() {
    // 40 keys in an order no hash map keeps, numbers spelled their own way.
    let mut doc = String::from("{ ");
    for i in (0..40).rev() {
        doc.push_str(&format!("\"key{i}\" : {i}.50, "));
    }
    doc.push_str("\"big\": 123456789012345678901234567890, \"s\": \"a  b\\u00e9\" }");
    let body = doc.clone();
    let server = TestServer::start(move |_| Reply::json(200, body.clone()));
    let url = server.url("/doc");
    let runs: Vec<Vec<u8>> = (0..3)
        .map(|_| {
            let output = parfetch(&["-q", &url], None);
            assert_exit(&output, 0);
            output.stdout
        })
        .collect();
    let line: serde_json::Value = serde_json::from_slice(&runs[0]).unwrap();
    let written = String::from_utf8(runs[0].clone()).unwrap();
    let expected: String = {
        // The document without the whitespace between its tokens.
        let mut out = String::new();
        let mut in_string = false;
        let mut escaped = false;
        for c in doc.chars() {
            if in_string {
                out.push(c);
                escaped = !escaped && c == '\\';
                in_string = escaped || c != '"';
            } else if !c.is_whitespace() {
                in_string = c == '"';
                out.push(c);
            }
        }
        out
    };
    assert!(
        written.contains(&format!("\"body\":{expected}")),
        "{written}"
    );
    assert_eq!(line["ok"], true);
    // The elapsed time differs from run to run; the body never does.
    let bodies: Vec<&str> = runs
        .iter()
        .map(|run| {
            let text = std::str::from_utf8(run).unwrap();
            &text[text.find("\"body\":").unwrap()..]
        })
        .collect();
    assert!(bodies.iter().all(|b| *b == bodies[0]));
}

/// A body goes into its line uncopied, in pieces: each line still comes
/// out whole, to standard output and (with `--resume`, unbuffered) to a
/// file, however large its document.
#[test]
fn documents_of_megabytes_are_written_whole_one_per_line() {
    const SIZE: usize = 1 << 20;
    let doc = |path: &str| {
        let index = path.trim_start_matches('/').parse().unwrap_or(0);
        json_doc(index, SIZE)
    };
    let server = TestServer::start(move |request| Reply::json(200, doc(&request.path)));
    let urls: Vec<String> = (1..=4).map(|n| server.url(&format!("/{n}"))).collect();
    let check = |text: Vec<u8>| {
        let text = String::from_utf8(text).unwrap();
        assert!(text.ends_with("}\n"), "the last line is whole");
        let mut indexes = Vec::new();
        for line in text.lines() {
            let line: serde_json::Value = serde_json::from_str(line).expect("a whole line");
            let index = line["index"].as_u64().unwrap() as usize;
            let want: serde_json::Value =
                serde_json::from_slice(&doc(&format!("/{}", index + 1))).unwrap();
            assert!(line["body"] == want, "line {index}: the body as sent");
            indexes.push(index);
        }
        indexes.sort_unstable();
        assert_eq!(indexes, [0, 1, 2, 3]);
    };
    let mut args: Vec<&str> = urls.iter().map(String::as_str).collect();
    args.extend(["-c", "2", "-q"]);
    let output = parfetch(&args, None);
    assert_exit(&output, 0);
    check(output.stdout);
    let out = temp_dir("megabytes").join("out.jsonl");
    let out = out.to_str().unwrap();
    args.extend(["--resume", "-o", out]);
    assert_exit(&parfetch(&args, None), 0);
    check(std::fs::read(out).unwrap());
}

/// A number past what an f64 holds is JSON text (RFC 8259 §6 leaves the
/// range to the reader): the body is written as sent, not refused.
// From issue 26: `{"f":1e400}` was refused, so the CLI wrote an error.
#[test]
fn a_number_past_f64_is_written_as_sent() {
    let server = TestServer::start(|_| Reply::json(200, r#"{ "f": 1e400, "g": -2.5E-999 }"#));
    let output = parfetch(&["-q", &server.url("/huge")], None);
    assert_exit(&output, 0);
    let written = String::from_utf8(output.stdout).unwrap();
    assert!(
        written
            .trim_end()
            .ends_with(r#""body":{"f":1e400,"g":-2.5E-999}}"#),
        "{written}"
    );
}

#[test]
fn durations_take_units() {
    let server = server();
    for args in [
        ["--timeout", "1.5s", "--deadline", "2m"],
        ["--timeout", "1500ms", "--deadline", "90"],
    ] {
        let output = parfetch(
            &[
                args[0],
                args[1],
                args[2],
                args[3],
                "-q",
                &server.url("/doc/1"),
            ],
            None,
        );
        assert_exit(&output, 0);
    }
    let output = parfetch(&["--timeout", "soon", &server.url("/doc/1")], None);
    assert_exit(&output, 1);
    assert!(String::from_utf8_lossy(&output.stderr).contains("500ms"));
}

#[test]
fn devices_are_written_to_never_replaced() {
    // From a run of the review4 bar test: `-o /dev/null` could not be
    // flushed to disk, and a summary renamed over /dev/null would replace it.
    let server = server();
    let output = parfetch(
        &[
            &server.url("/doc/1"),
            &server.url("/missing"),
            "--retry",
            "0",
            "-q",
            "-o",
            "/dev/null",
            "--failed",
            "/dev/null",
            "--summary-json",
            "/dev/stdout",
        ],
        None,
    );
    assert_exit(&output, 2);
    let figures: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (&figures["successes"], &figures["failures"]),
        (&1.into(), &1.into())
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let null = std::fs::metadata("/dev/null").unwrap().file_type();
        assert!(null.is_char_device(), "/dev/null was replaced");
    }
}

/// An empty 200 is not JSON: its line is an `InvalidJson` failure, not
/// `"body": null`; a 204 has no content by definition, and is `null`.
#[test]
fn an_empty_success_is_a_failure_and_a_204_is_null() {
    let server = TestServer::start(|request| match request.path.as_str() {
        "/204" => Reply::status(204),
        _ => Reply::status(200),
    });
    let input = format!("{}\n{}\n", server.url("/204"), server.url("/empty"));
    let output = parfetch(&["--retries", "0", "-q"], Some(&input));
    assert_exit(&output, 2);
    let mut lines = lines(&output);
    lines.sort_by_key(|l| l["index"].as_u64());
    assert_eq!(lines.len(), 2);
    assert_eq!(
        (&lines[0]["ok"], &lines[0]["body"]),
        (&true.into(), &serde_json::Value::Null)
    );
    assert_eq!(lines[1]["ok"], false);
    assert_eq!(lines[1]["error"]["kind"], "InvalidJson");
    assert!(
        lines[1]["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("no content")),
        "{}",
        lines[1]
    );
    assert!(lines[1].get("body").is_none_or(|body| body.is_null()));
}

/// A JSON line's `error.message` is the error's `Display`, which ends with
/// its cause: the cause is written once, not again after it.
// From issue 26 (Display ends with its cause; the CLI added it a second time).
#[test]
fn an_error_line_names_its_cause_once() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/laps.json");
    let output = parfetch(&["--retries", "0", "-q", &url], None);
    assert_exit(&output, 2);
    let lines = lines(&output);
    let message = lines[0]["error"]["message"].as_str().unwrap_or_default();
    let head = format!("GET {url}: network error: ");
    assert!(message.starts_with(&head), "{message:?}");
    assert_eq!(
        message
            .to_ascii_lowercase()
            .matches("connection refused")
            .count(),
        1,
        "{message:?}"
    );
}
