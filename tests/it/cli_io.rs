//! The command's input and output at their edges: URL lists and arguments
//! that are not UTF-8 or hold odd white space, files it must not overwrite
//! or that it cannot write, terminal escapes a server sends, a run of no
//! URLs. (Its flags and their output: cli.rs.)
#![cfg(feature = "cli")]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::cli::{assert_exit, lines, parfetch_with_env};
use crate::server::{Reply, TestServer};

fn ok_server() -> TestServer {
    TestServer::start(|_| Reply::json(200, br#"{"ok":true}"#.to_vec()))
}

// From review 4 (issue 15).
/// Found (now fixed): `--summary-json FILE` "writes the same figures as JSON"; `-o
/// FILE` writes the JSON lines. Given the same FILE for both (a slip of
/// the keyboard, or `--summary-json "$OUT"`), the run exits 0 and the
/// file holds the summary alone: every result is overwritten, after
/// the whole run. The same happens to the URL list with `-i urls.txt
/// --summary-json urls.txt`. Was at fault: src/bin/parfetch/main.rs:236-238
/// writes the summary with `fs::write` over whatever the path is, after
/// the run. Fix: before the run, refuse a `--summary-json` that is the
/// same file as `-o` or `-i` (compare canonical paths, or the device
/// and inode once both exist), exit 1 with a message.
#[test]
fn summary_json_on_the_output_file_loses_the_results() {
    let server = ok_server();
    let dir = crate::scratch_dir("cli-io-same-file");
    let path = dir.join("out.jsonl");
    let path = path.to_str().unwrap();
    let url = server.url("/a");
    let output = parfetch_with_env(&["-q", "-o", path, "--summary-json", path, &url], &[], None);
    let written = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        written.contains("\"index\"")
            || (output.status.code() == Some(1) && server.requests() == 0),
        "exit {:?}; the results file now holds:\n{written}",
        output.status.code()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// From review 4 (issue 15).
/// Found (now fixed): "At the end, a summary" on standard error; `-o FILE` that
/// cannot be created is refused before anything is fetched. A
/// `--summary-json` path that cannot be written is found only after the
/// whole run (hours, for a season of telemetry), and then the run exits
/// 1 without the summary on standard error: the figures of the run are
/// lost both ways. Was at fault: src/bin/parfetch/main.rs:236-241, the write
/// comes after the run and its `?` returns before `eprintln!` of the
/// summary. Fix: create (or open for writing) the summary file before
/// the run, as `-o` is (main.rs:140-143); at the end, print the summary
/// first and then report a write failure.
#[test]
fn an_unwritable_summary_json_is_found_before_the_run() {
    let server = ok_server();
    let dir = crate::scratch_dir("cli-io-summary-unwritable");
    let path = dir.join("no-such-dir").join("summary.json");
    let url = server.url("/a");
    let output = parfetch_with_env(&["--summary-json", path.to_str().unwrap(), &url], &[], None);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        server.requests() == 0 || stderr.contains("1 URLs in"),
        "fetched {} URL(s), then lost the summary: {stderr}",
        server.requests()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// From review 4 (issue 15).
/// Found (now fixed): "Exit status: ... 1 usage or I/O error" (README, --help). A
/// first argument that is not UTF-8 (a file name in Latin-1 pasted as a
/// URL, `parfetch $'caf\xe9'`) makes the command panic, exit 101 with a
/// Rust backtrace note, before clap can say what is wrong. Fault:
/// src/bin/parfetch/main.rs:26, `std::env::args()` panics on a non-UTF-8
/// argument (also when argv[0], the program's own path, is not UTF-8).
/// Fix: look for `completions` with `std::env::args_os()` and compare
/// `OsStr`s; leave the rest to clap, which reports invalid UTF-8 as a
/// usage error.
#[test]
fn a_non_utf8_argument_is_a_usage_error_not_a_panic() {
    use std::os::unix::ffi::OsStrExt;
    let output = Command::new(env!("CARGO_BIN_EXE_parfetch"))
        .arg(std::ffi::OsStr::from_bytes(b"caf\xe9"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

// From review 4 (issue 15).
/// Found (now fixed): "blank lines and `#` comments skipped" (README), and the
/// count made before the run is "the lines `urls` keeps" (input.rs). A
/// comment with one Latin-1 byte (`# café`, a list saved on Windows)
/// ends the list there: nothing after it is fetched, and the run exits 1
/// with "reading the URLs failed: stream did not contain valid UTF-8";
/// the count skipped that comment and promised the bar 1 URL. A URL line
/// with a raw non-UTF-8 byte does the same to the whole rest of the
/// list. Was at fault: src/bin/parfetch/input.rs:27-35, `BufRead::lines()`
/// fails on invalid UTF-8 and `map_while` ends the input. Fix: read
/// lines as bytes (`split(b'\n')`), skip blank and `#` lines before
/// decoding, and turn a non-UTF-8 URL line into that line's own
/// InvalidRequest result (lossy text, so the line shows which).
#[test]
fn a_latin1_comment_does_not_end_the_list() {
    let server = ok_server();
    let dir = crate::scratch_dir("cli-io-latin1");
    let file = dir.join("urls.txt");
    let mut text = b"# caf\xe9 list\n".to_vec();
    text.extend_from_slice(server.url("/a").as_bytes());
    text.push(b'\n');
    std::fs::write(&file, text).unwrap();
    let output = parfetch_with_env(&["-q", "-i", file.to_str().unwrap()], &[], None);
    assert_exit(&output, 0);
    assert_eq!(lines(&output).len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

// From review 4 (issue 15).
/// Found (now fixed): the bar "knows its end" because the file's URL lines are
/// counted first (README); the count must agree with what is read
/// (count.rs, input.rs). It does not for a line holding a vertical tab
/// (`\x0b`, or `\x0b# comment`): the reader's `str::trim` takes VT for
/// white space and skips the line, the counter's `is_ascii_whitespace`
/// does not, and counts it as a URL. A file of 2 URLs and one such line
/// ends with the bar at "67% 2/3". Was at fault: src/bin/parfetch/count.rs:175
/// (`b.is_ascii_whitespace()` lacks 0x0B) against input.rs:62
/// (`line.trim()`). Fix: use one definition of white space in both, e.g.
/// `matches!(b, b' ' | b'\t'..=b'\r')` for ASCII in count.rs (VT is
/// 0x0B, in that range). Drawn under a pseudo-terminal made by
/// util-linux `script`, which the test needs (it fails without it).
#[test]
fn the_bar_ends_where_the_list_ends() {
    assert!(
        Command::new("script").arg("--version").output().is_ok(),
        "util-linux `script` is needed to draw the bar under a pseudo-terminal \
         (Debian: apt-get install bsdutils)"
    );
    let server = TestServer::start(|_| {
        Reply::Delay(
            Duration::from_millis(150),
            Box::new(Reply::json(200, b"{}".to_vec())),
        )
    });
    let dir = crate::scratch_dir("cli-io-vt");
    let file = dir.join("urls.txt");
    let text = format!("{}\n\x0b\n{}\n", server.url("/a"), server.url("/b"));
    std::fs::write(&file, text).unwrap();
    let command = format!(
        "'{}' --no-proxy -c 1 -i '{}' -o /dev/null",
        env!("CARGO_BIN_EXE_parfetch"),
        file.display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut screen = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut screen)
        .unwrap();
    let _ = child.wait();
    assert!(screen.contains("2 URLs in"), "{screen:?}");
    assert!(
        screen.contains("/2 ") && !screen.contains("/3 "),
        "the bar counts 3 URLs in a list of 2: {screen:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// From review 4 (issue 15).
/// FAILS (words): `parfetch completions` without a shell answers
/// "Say bash, zsh, fish, elvish or powershell (got None)", and with an
/// unknown one "(got Some(\"tcsh\"))": Rust's `Option` Debug in a
/// message for people (clap would say "invalid value 'tcsh' for
/// '<SHELL>'"). Was at fault: src/bin/parfetch/main.rs:60-65 formats
/// `{other:?}`. Fix: "no shell given" / "unknown shell 'tcsh'".
#[test]
fn completions_usage_reads_as_words() {
    for args in [&["completions"][..], &["completions", "tcsh"]] {
        let output = parfetch_with_env(args, &[], None);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            !stderr.contains("None") && !stderr.contains("Some("),
            "{args:?}: {stderr}"
        );
    }
}

// From review 4 (issue 15).
/// Held: a server cannot put a terminal escape into the command's
/// output: ESC and BEL in an HTML body (200 and 500), in a body that is
/// cut short, and in an NDJSON line all come out escaped (`\u001b` in
/// the JSON lines), and the summary on standard error holds only counts
/// and kinds.
#[test]
fn terminal_escapes_from_a_server_stay_escaped() {
    let evil = b"\x1b[2J\x1b]0;owned\x07<html>\x9b31m".to_vec();
    let server = TestServer::start(move |request| match request.path.as_str() {
        "/200" => Reply::Respond {
            status: 200,
            headers: vec![("content-type".into(), "text/html".into())],
            body: evil.clone(),
        },
        "/500" => Reply::json(500, evil.clone()),
        "/cut" => Reply::json(200, b"{\"a\":\"\x1b[2J".to_vec()),
        _ => Reply::json(200, b"{\"a\":1}\n\x1b[2J{}".to_vec()),
    });
    let urls: Vec<String> = ["/200", "/500", "/cut", "/nd"]
        .iter()
        .map(|p| server.url(p))
        .collect();
    let mut args = vec!["--retries", "0"];
    args.extend(urls.iter().map(String::as_str));
    let output = parfetch_with_env(&args, &[], None);
    assert_exit(&output, 2);
    for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        assert!(
            !bytes.iter().any(|b| matches!(b, 0x1b | 0x07)),
            "{stream}: {}",
            String::from_utf8_lossy(bytes)
        );
    }
    assert_eq!(lines(&output).len(), 4);
}

// From review 4 (issue 15).
/// Held: a run of no URLs (an empty file) exits 0 and writes finite
/// figures: 0 per second, latencies 0, no NaN, no division by zero.
#[test]
fn a_run_of_no_urls_has_finite_figures() {
    let dir = crate::scratch_dir("cli-io-empty");
    let file = dir.join("urls.txt");
    std::fs::write(&file, "# nothing yet\n\n").unwrap();
    let summary = dir.join("summary.json");
    let output = parfetch_with_env(
        &[
            "-i",
            file.to_str().unwrap(),
            "--summary-json",
            summary.to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert_exit(&output, 0);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("0 URLs in") && stderr.contains("(0/s)"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("NaN") && !stderr.contains("inf"),
        "{stderr}"
    );
    let figures: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(figures["requests"], 0);
    assert_eq!(figures["requests_per_second"], 0.0);
    assert_eq!(figures["latency"]["max"], 0.0);
    let _ = std::fs::remove_dir_all(&dir);
}

// From review 5.
/// Found (now fixed): `--summary-json` on the URL list through another name (a hard
/// link or a symlink) truncates the list before the run: `parfetch -i
/// urls.txt --summary-json link.txt` fetches nothing, exits 0 and leaves
/// urls.txt holding the summary. review4's fix was to refuse a summary
/// file that is the input or output ("compare canonical paths, or the
/// device and inode once both exist"); only the parent directory is
/// canonicalized, so two names of one file are taken for two files.
/// At fault: src/bin/parfetch/main.rs:282-294 (`same_file` joins the
/// canonical parent with the file name, never resolving the file itself
/// nor comparing dev/inode), then :161 `File::create` truncates.
#[test]
fn summary_json_through_a_link_does_not_destroy_the_url_list() {
    let server = TestServer::start(|_| Reply::json(200, br#"{"ok":true}"#.to_vec()));
    let dir = crate::scratch_dir("cli-io-summary-link");
    let urls = dir.join("urls.txt");
    let url = server.url("/a");
    let mut wrong = Vec::new();
    let mut links = vec![("hard", dir.join("hard.txt"))];
    #[cfg(unix)]
    links.push(("sym", dir.join("sym.txt")));
    for (kind, link) in links {
        std::fs::write(&urls, format!("{url}\n")).unwrap();
        let _ = std::fs::remove_file(&link);
        if kind == "hard" {
            std::fs::hard_link(&urls, &link).unwrap();
        } else {
            #[cfg(unix)]
            std::os::unix::fs::symlink(&urls, &link).unwrap();
        }
        let output = crate::cli::parfetch_with_env(
            &[
                "-q",
                "-i",
                urls.to_str().unwrap(),
                "--summary-json",
                link.to_str().unwrap(),
            ],
            &[],
            None,
        );
        let left = std::fs::read_to_string(&urls).unwrap_or_default();
        if !left.contains(&url) {
            wrong.push(format!(
                "{kind} link: exit {:?}, urls.txt now holds:\n{left}",
                output.status.code()
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// From review of the CLI and limit changes (issue 23).
/// An output that cannot be written (a pipe whose reader is gone, as in
/// `parfetch ... | head -1`; a full disk) stops the run with one message
/// saying so, not the same message twice.
#[test]
fn an_output_that_cannot_be_written_is_said_once() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let reader_gone = Arc::new(AtomicBool::new(false));
    let gone = Arc::clone(&reader_gone);
    // Lines larger than the output's buffer: written as they come.
    let server = TestServer::start(move |_| {
        while !gone.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        Reply::json(200, crate::server::json_doc(0, 64 << 10))
    });
    let urls: Vec<String> = (0..4).map(|n| server.url(&format!("/{n}"))).collect();
    let mut child = crate::cli::command()
        .args(&urls)
        .args(["-q", "-c", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    reader_gone.store(true, Ordering::SeqCst);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("cannot write the results").count(),
        1,
        "{stderr}"
    );
}
