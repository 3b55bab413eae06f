//! Runs that stop and start again: `--resume` after `kill -9`, SIGTERM or
//! Ctrl-C at chosen points, and `--failed` feeding the next run.
#![cfg(feature = "cli")]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use crate::cli::{assert_exit, command, parfetch_with_env};
use crate::server::{Reply, TestServer};
use crate::support::wait_for;

/// A server that answers `budget` requests, then stalls the others until
/// given more (`usize::MAX`: all).
struct Rationed {
    server: TestServer,
    budget: Arc<AtomicUsize>,
}

impl Rationed {
    fn start(budget: usize) -> Rationed {
        let budget = Arc::new(AtomicUsize::new(budget));
        let left = Arc::clone(&budget);
        let server = TestServer::start(move |request| {
            let granted = left
                .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if granted {
                Reply::json(200, format!(r#"{{"path":{:?}}}"#, request.path))
            } else {
                Reply::Stall(Duration::from_secs(60))
            }
        });
        Rationed { server, budget }
    }

    fn grant(&self, requests: usize) {
        self.budget.store(requests, SeqCst);
    }
}

/// The list of `n` URLs in `dir/urls.txt`.
fn list(dir: &Path, server: &TestServer, n: usize) -> (String, Vec<String>) {
    let urls: Vec<String> = (0..n).map(|i| server.url(&format!("/doc/{i}"))).collect();
    let path = dir.join("urls.txt");
    std::fs::write(&path, urls.join("\n") + "\n").unwrap();
    (path.display().to_string(), urls)
}

/// Whole lines in the file at `path` (those with their newline).
fn whole_lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |text| text.matches('\n').count())
}

/// Starts the command in the background.
fn spawn(args: &[&str]) -> Child {
    command()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Sends `signal` to `child`, by its process id.
fn signal(child: &Child, signal: &str) {
    let sent = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Asserts that `path` holds exactly one whole JSON line per URL of `urls`,
/// each naming its URL; returns the indexes in file order.
fn assert_one_line_per_url(path: &Path, urls: &[String]) -> Vec<u64> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "a torn last line");
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for line in text.lines() {
        let line: serde_json::Value = serde_json::from_str(line).expect("whole JSON lines");
        let index = line["index"].as_u64().unwrap();
        assert_eq!(line["url"], urls[index as usize]);
        assert_eq!(line["ok"], true, "{line}");
        assert!(seen.insert(index), "index {index} twice");
        order.push(index);
    }
    assert_eq!(seen.len(), urls.len(), "every URL");
    order
}

/// The figures `--summary-json` wrote.
fn figures(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn resume_after_kill_9_at_several_points_leaves_one_line_per_url() {
    const N: usize = 40;
    // (the first run's kill point, the second's, whether --ordered)
    let points: [(usize, Option<usize>, bool); 6] = [
        (0, None, false),
        (1, None, false),
        (17, None, false),
        (N - 1, None, false),
        (10, Some(25), false),
        (7, Some(20), true),
    ];
    for (first, second, ordered) in points {
        let rationed = Rationed::start(first);
        let dir = crate::scratch_dir(&format!("cli-kill9-{first}-{ordered}"));
        let (file, urls) = list(&dir, &rationed.server, N);
        let out = dir.join("out.jsonl");
        let summary = dir.join("summary.json");
        let mut args = vec!["-i", &file, "--resume", "-o", out.to_str().unwrap(), "-q"];
        args.extend(["--summary-json", summary.to_str().unwrap()]);
        // In order, one at a time: the lines are the list's first ones.
        if ordered {
            args.extend(["-c", "1", "--ordered"]);
        } else {
            args.extend(["-c", "4", "--retry", "0"]);
        }
        let mut written = 0;
        for point in [Some(first), second].into_iter().flatten() {
            rationed.grant(point - written);
            let seen_before = rationed.server.requests();
            let mut child = spawn(&args);
            // The kill comes once `point` lines are in the file, and every
            // worker waits on a stalled request.
            let workers = if ordered { 1 } else { 4.min(N - point) };
            wait_for("the kill point", Duration::from_secs(30), || {
                whole_lines(&out) >= point
                    && rationed.server.requests() >= seen_before + (point - written) + workers
            });
            signal(&child, "-KILL");
            let _ = child.wait();
            assert_eq!(whole_lines(&out), point, "lines at the kill");
            assert!(!summary.exists(), "a killed run wrote no summary");
            written = point;
        }
        if first == 1 {
            // A write cut short by the kill: the start of a line.
            let mut text = std::fs::read(&out).unwrap();
            text.extend_from_slice(br#"{"index":5,"url":"http://127.0.0.1:1/doc/5","ok":tr"#);
            std::fs::write(&out, text).unwrap();
        }
        rationed.grant(usize::MAX);
        let output = parfetch_with_env(&args, &[], None);
        assert_exit(&output, 0);
        let order = assert_one_line_per_url(&out, &urls);
        if ordered {
            assert_eq!(
                order,
                (0..N as u64).collect::<Vec<_>>(),
                "in order across resumes"
            );
        }
        let figures = figures(&summary);
        assert_eq!(figures["skipped"], written, "{first}");
        assert_eq!(figures["requests"], N - written, "{first}");
        assert_eq!(figures["complete"], true);
    }
}

#[test]
fn a_stopped_resume_run_leaves_its_unfinished_urls_to_the_next() {
    const N: usize = 30;
    let rationed = Rationed::start(12);
    let dir = crate::scratch_dir("cli-sigterm");
    let (file, urls) = list(&dir, &rationed.server, N);
    let out = dir.join("out.jsonl");
    let summary = dir.join("summary.json");
    let args = [
        "-i",
        &file,
        "--resume",
        "-o",
        out.to_str().unwrap(),
        "-c",
        "4",
        // A stalled attempt ends within its timeout once stopped.
        "--timeout",
        "2",
        "--summary-json",
        summary.to_str().unwrap(),
    ];
    let child = spawn(&args);
    wait_for(
        "12 lines and 4 stalled requests",
        Duration::from_secs(30),
        || whole_lines(&out) >= 12 && rationed.server.requests() >= 16,
    );
    // What a pod gets when it is evicted: stop, write what finished.
    signal(&child, "-TERM");
    let output = child.wait_with_output().unwrap();
    assert_exit(&output, 130);
    assert_eq!(whole_lines(&out), 12, "no line for the 4 cut short");
    let stopped = figures(&summary);
    assert_eq!(
        (&stopped["complete"], &stopped["interrupted"]),
        (&false.into(), &true.into())
    );
    // The 4 cut short, and the requests the batch had taken from the list
    // but not started: at most twice the concurrency under way in all.
    let unfinished = stopped["unfinished"].as_u64().unwrap();
    assert!((4..=8).contains(&unfinished), "{unfinished}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{unfinished} left for --resume")),
        "{stderr}"
    );
    rationed.grant(usize::MAX);
    let output = parfetch_with_env(&args, &[], None);
    assert_exit(&output, 0);
    assert_one_line_per_url(&out, &urls);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("12 skipped, already in"), "{stderr}");
    assert_eq!(figures(&summary)["complete"], true);
}

#[test]
fn resume_takes_out_the_cancelled_lines_of_a_run_without_it() {
    const N: usize = 20;
    let rationed = Rationed::start(5);
    let dir = crate::scratch_dir("cli-resume-cancelled");
    let (file, urls) = list(&dir, &rationed.server, N);
    let out = dir.join("out.jsonl");
    let out = out.to_str().unwrap();
    // Without --resume: stopped, the unfinished URLs get Cancelled lines.
    let child = spawn(&["-i", &file, "-o", out, "-c", "4", "--timeout", "2"]);
    wait_for(
        "5 answers and 4 stalled requests",
        Duration::from_secs(30),
        || rationed.server.requests() >= 9,
    );
    signal(&child, "-INT");
    let output = child.wait_with_output().unwrap();
    assert_exit(&output, 130);
    let text = std::fs::read_to_string(out).unwrap();
    // The 4 cut short, and those taken from the list but not started: at
    // most twice the concurrency under way in all.
    let cancelled = text.matches("\"Cancelled\"").count();
    assert!((4..=8).contains(&cancelled), "{text}");
    rationed.grant(usize::MAX);
    let output = parfetch_with_env(&["-i", &file, "--resume", "-o", out], &[], None);
    assert_exit(&output, 0);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("took out {cancelled} lines")),
        "{stderr}"
    );
    assert_one_line_per_url(Path::new(out), &urls);
}

// From review of the CLI and limit changes (issue 23).
/// A write cut short within a line's first bytes (a kill between pages, a
/// full disk, a file size limit: `{"in` and no more) is the start of one
/// of parfetch's lines too: it is cut off, not taken for a foreign file.
#[test]
fn resume_cuts_a_line_torn_within_its_first_bytes() {
    let server =
        TestServer::start(|request| Reply::json(200, format!(r#"{{"path":{:?}}}"#, request.path)));
    let dir = crate::scratch_dir("cli-resume-torn-start");
    let (file, urls) = list(&dir, &server, 3);
    let out = dir.join("out.jsonl");
    let args = ["-i", &file, "--resume", "-o", out.to_str().unwrap(), "-q"];
    assert_exit(&parfetch_with_env(&args, &[], None), 0);
    // Two whole lines, and the third's write cut short after 4 bytes.
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 3);
    let kept: Vec<&str> = text.lines().take(2).collect();
    std::fs::write(&out, kept.join("\n") + "\n" + r#"{"in"#).unwrap();
    let output = parfetch_with_env(&args, &[], None);
    assert_exit(&output, 0);
    assert_one_line_per_url(&out, &urls);
}

#[test]
fn resume_refuses_a_file_parfetch_did_not_write() {
    let dir = crate::scratch_dir("cli-resume-foreign");
    let list = dir.join("urls.txt");
    let text = "http://127.0.0.1:1/a\nhttp://127.0.0.1:1/b\n";
    std::fs::write(&list, text).unwrap();
    let output = parfetch_with_env(
        &[
            "http://127.0.0.1:1/c",
            "--resume",
            "-o",
            list.to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert_exit(&output, 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--resume only appends to parfetch's own output"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&list).unwrap(),
        text,
        "left as it was"
    );
    let output = parfetch_with_env(&["http://127.0.0.1:1/c", "--resume"], &[], None);
    assert_exit(&output, 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--output <FILE>"), "{stderr}");
}

#[test]
fn failed_urls_feed_the_next_run() {
    // Each path fails the first time it is asked for, then answers.
    let asked = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let server = TestServer::start(move |request| {
        let first = asked.lock().unwrap().insert(request.path.clone());
        if request.path.contains("flaky") && first {
            Reply::status(500)
        } else {
            Reply::json(200, "{}")
        }
    });
    let dir = crate::scratch_dir("cli-failed");
    let mut urls: Vec<String> = (0..10).map(|i| server.url(&format!("/doc/{i}"))).collect();
    urls[3] = server.url("/flaky/3");
    // User info: the list keeps it, as the next run needs it.
    urls[7] = server.url("/flaky/7").replace("http://", "http://me:pw@");
    let file = dir.join("urls.txt");
    std::fs::write(&file, urls.join("\n")).unwrap();
    let (out, failed) = (dir.join("out.jsonl"), dir.join("failed.txt"));
    let (out, failed) = (out.to_str().unwrap(), failed.to_str().unwrap());
    let args = [
        "-i",
        file.to_str().unwrap(),
        "-o",
        out,
        "--failed",
        failed,
        "--retry",
        "0",
        "-q",
    ];
    let output = parfetch_with_env(&args, &[], None);
    assert_exit(&output, 2);
    let listed: BTreeSet<String> = std::fs::read_to_string(failed)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(listed, BTreeSet::from([urls[3].clone(), urls[7].clone()]));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(failed).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "credentials: the owner's only");
    }
    let again = dir.join("again.jsonl");
    let output = parfetch_with_env(
        &["-i", failed, "-o", again.to_str().unwrap(), "-q"],
        &[],
        None,
    );
    assert_exit(&output, 0);
    let text = std::fs::read_to_string(&again).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(!text.contains("pw@"), "{text}");
}

#[test]
fn a_resumed_run_lists_the_earlier_failures_again() {
    let server = TestServer::start(|request| {
        if request.path.contains("missing") {
            Reply::status(404)
        } else {
            Reply::json(200, "[]")
        }
    });
    let dir = crate::scratch_dir("cli-failed-resume");
    let urls = [
        server.url("/a"),
        server.url("/missing/1"),
        server.url("/b"),
        server.url("/missing/2"),
    ];
    let file = dir.join("urls.txt");
    std::fs::write(&file, urls.join("\n")).unwrap();
    let out = dir.join("out.jsonl");
    let run = |failed: &str| {
        let failed = dir.join(failed);
        let args = [
            "-i",
            file.to_str().unwrap(),
            "--resume",
            "-o",
            out.to_str().unwrap(),
            "--failed",
            failed.to_str().unwrap(),
            "-q",
        ];
        let output = parfetch_with_env(&args, &[], None);
        // The part holds failures, now as before.
        assert_exit(&output, 2);
        let mut listed: Vec<String> = std::fs::read_to_string(failed)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        listed.sort();
        listed
    };
    let first = run("failed-1.txt");
    assert_eq!(first, [urls[1].clone(), urls[3].clone()]);
    let requests = server.requests();
    assert_eq!(run("failed-2.txt"), first);
    assert_eq!(server.requests(), requests, "nothing fetched again");
    assert_eq!(lines_in(&out), 4);
}

fn lines_in(path: &Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count()
}

#[test]
fn resume_keeps_the_file_names_of_done_urls() {
    let server = TestServer::start(|request| Reply::json(200, format!("{:?}", request.path)));
    let dir = crate::scratch_dir("cli-resume-outdir");
    let mirror = dir.join("mirror");
    let first = server.url("/x").replace("http://", "http://a:1@");
    let file = dir.join("urls.txt");
    let out = dir.join("out.jsonl");
    let args = [
        "-i",
        file.to_str().unwrap(),
        "--resume",
        "-o",
        out.to_str().unwrap(),
        "--out-dir",
        mirror.to_str().unwrap(),
        "-q",
    ];
    std::fs::write(&file, format!("{first}\n")).unwrap();
    assert_exit(&parfetch_with_env(&args, &[], None), 0);
    // The list grows by a URL that differs only in its user info: it
    // would take the done URL's file.
    let second = server.url("/x").replace("http://", "http://b:2@");
    std::fs::write(&file, format!("{first}\n{second}\n")).unwrap();
    let output = parfetch_with_env(&args, &[], None);
    assert_exit(&output, 2);
    let text = std::fs::read_to_string(&out).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(
        (&last["index"], &last["error"]["kind"]),
        (&1.into(), &"NameCollision".into()),
        "{text}"
    );
    assert_eq!(std::fs::read_dir(&mirror).unwrap().count(), 1);
}
