//! The command over many machines: `--shard K/N` and `--shard auto` (the
//! job schedulers' variables), `--shard-by line|url|host`, and GNU
//! parallel running the parts.
#![cfg(feature = "cli")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use crate::cli::{assert_exit, clean_env, lines, parfetch_with_env};
use crate::server::{Reply, TestServer};

/// A server answering every path with `{"path": PATH}`.
fn echo() -> TestServer {
    TestServer::start(|request| Reply::json(200, format!(r#"{{"path":{:?}}}"#, request.path)))
}

/// Writes `urls` to `dir/urls.txt`, one per line, with a comment and a
/// blank line (not numbered).
fn url_file(dir: &Path, urls: &[String]) -> String {
    let path = dir.join("urls.txt");
    std::fs::write(&path, format!("# list\n\n{}\n", urls.join("\n"))).unwrap();
    path.display().to_string()
}

/// The shard (0-based) the documented hash puts `text` in, of `count`.
fn hashed(text: &str, count: u64) -> u64 {
    let digest = blake3::hash(text.as_bytes());
    u64::from_le_bytes(digest.as_bytes()[..8].try_into().unwrap()) % count
}

#[test]
fn each_schedulers_variables_pick_the_part() {
    let server = echo();
    let dir = crate::scratch_dir("cli-schedulers");
    let urls: Vec<String> = (0..12).map(|i| server.url(&format!("/{i}"))).collect();
    let file = url_file(&dir, &urls);
    let summary = dir.join("summary.json");
    type Case<'a> = (
        &'a [&'a str],
        &'a [(&'a str, &'a str)],
        usize,
        &'a str,
        Option<(&'a str, u64)>,
    );
    let cases: [Case<'_>; 7] = [
        (
            &[],
            &[("JOB_COMPLETION_INDEX", "1"), ("PARFETCH_SHARDS", "3")],
            1,
            "JOB_COMPLETION_INDEX",
            None,
        ),
        // --shards wins over PARFETCH_SHARDS.
        (
            &["--shards", "3"],
            &[("JOB_COMPLETION_INDEX", "2"), ("PARFETCH_SHARDS", "7")],
            2,
            "JOB_COMPLETION_INDEX",
            None,
        ),
        (
            &[],
            &[
                ("CLOUD_RUN_TASK_INDEX", "2"),
                ("CLOUD_RUN_TASK_COUNT", "3"),
                ("CLOUD_RUN_TASK_ATTEMPT", "1"),
            ],
            2,
            "CLOUD_RUN_TASK_INDEX",
            Some(("CLOUD_RUN_TASK_ATTEMPT", 1)),
        ),
        (
            &[],
            &[
                ("AWS_BATCH_JOB_ARRAY_INDEX", "0"),
                ("AWS_BATCH_JOB_ARRAY_SIZE", "3"),
                ("AWS_BATCH_JOB_ATTEMPT", "2"),
            ],
            0,
            "AWS_BATCH_JOB_ARRAY_INDEX",
            Some(("AWS_BATCH_JOB_ATTEMPT", 2)),
        ),
        (
            &[],
            &[
                ("SLURM_ARRAY_TASK_ID", "2"),
                ("SLURM_ARRAY_TASK_COUNT", "3"),
            ],
            2,
            "SLURM_ARRAY_TASK_ID",
            None,
        ),
        // --array=5-7: ids from 5, so id 6 is index 1.
        (
            &[],
            &[
                ("SLURM_ARRAY_TASK_ID", "6"),
                ("SLURM_ARRAY_TASK_MIN", "5"),
                ("SLURM_ARRAY_TASK_MAX", "7"),
                ("SLURM_RESTART_COUNT", "1"),
            ],
            1,
            "SLURM_ARRAY_TASK_ID",
            Some(("SLURM_RESTART_COUNT", 1)),
        ),
        // --array=10-30:10 (10, 20, 30): id 30 is index 2.
        (
            &[],
            &[
                ("SLURM_ARRAY_TASK_ID", "30"),
                ("SLURM_ARRAY_TASK_MIN", "10"),
                ("SLURM_ARRAY_TASK_MAX", "30"),
                ("SLURM_ARRAY_TASK_STEP", "10"),
                ("SLURM_ARRAY_TASK_COUNT", "3"),
            ],
            2,
            "SLURM_ARRAY_TASK_ID",
            None,
        ),
    ];
    for (flags, vars, index, from, attempt) in cases {
        let mut args = vec!["-i", &file, "--shard", "auto", "-q"];
        args.extend(["--summary-json", summary.to_str().unwrap()]);
        args.extend(flags);
        let output = parfetch_with_env(&args, vars, None);
        assert_exit(&output, 0);
        let mut seen: Vec<u64> = lines(&output)
            .iter()
            .map(|line| line["index"].as_u64().unwrap())
            .collect();
        seen.sort_unstable();
        let want: Vec<u64> = (0..12).filter(|i| i % 3 == index as u64).collect();
        assert_eq!(seen, want, "{vars:?}");
        let figures: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
        assert_eq!(
            figures["shard"],
            serde_json::json!({"index": index, "count": 3, "by": "line", "from": from}),
            "{vars:?}"
        );
        let attempt = attempt.map_or(
            serde_json::Value::Null,
            |(variable, value)| serde_json::json!({"variable": variable, "value": value}),
        );
        assert_eq!(figures["attempt"], attempt, "{vars:?}");
        assert_eq!(figures["complete"], true);
    }
}

#[test]
fn shard_auto_without_a_scheduler_names_the_variables() {
    let output = parfetch_with_env(&["--shard", "auto", "http://127.0.0.1:1/"], &[], None);
    assert_exit(&output, 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for name in [
        "JOB_COMPLETION_INDEX",
        "CLOUD_RUN_TASK_INDEX",
        "AWS_BATCH_JOB_ARRAY_INDEX",
        "SLURM_ARRAY_TASK_ID",
        "--shard K/N",
    ] {
        assert!(stderr.contains(name), "{name}: {stderr}");
    }
    assert!(output.stdout.is_empty());
    // Kubernetes gives no count: say where it comes from.
    let output = parfetch_with_env(
        &["--shard", "auto", "http://127.0.0.1:1/"],
        &[("JOB_COMPLETION_INDEX", "0")],
        None,
    );
    assert_exit(&output, 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--shards N or PARFETCH_SHARDS"), "{stderr}");
}

#[test]
fn each_mode_covers_the_list_exactly_once() {
    let servers: Vec<TestServer> = (0..5).map(|_| echo()).collect();
    let dir = crate::scratch_dir("cli-shard-modes");
    let mut urls: Vec<String> = (0..60)
        .map(|i| servers[i % 5].url(&format!("/doc/{i}")))
        .collect();
    // The same URL twice: two places in the list, two lines.
    urls.push(urls[7].clone());
    let file = url_file(&dir, &urls);
    // The list reversed: a URL's shard by url or host does not move.
    let reversed: Vec<String> = urls.iter().rev().cloned().collect();
    let reversed_file = dir.join("reversed.txt");
    std::fs::write(&reversed_file, reversed.join("\n")).unwrap();
    let count = 3u64;
    for by in ["line", "url", "host"] {
        let mut seen: BTreeMap<usize, u64> = BTreeMap::new();
        let mut hosts: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
        for shard in 0..count {
            let part = format!("{shard}/{count}");
            let output = parfetch_with_env(
                &["-i", &file, "--shard", &part, "--shard-by", by, "-q"],
                &[],
                None,
            );
            assert_exit(&output, 0);
            for line in lines(&output) {
                let index = line["index"].as_u64().unwrap() as usize;
                let url = &urls[index];
                assert_eq!(
                    line["url"], *url,
                    "{by}: the index is the place in the list"
                );
                assert!(seen.insert(index, shard).is_none(), "{by}: {url} twice");
                let host = url.split('/').nth(2).unwrap().to_owned();
                hosts.entry(host).or_default().insert(shard);
                let want = match by {
                    "line" => index as u64 % count,
                    "url" => hashed(url, count),
                    _ => hashed(&format!("http://{}", url.split('/').nth(2).unwrap()), count),
                };
                assert_eq!(shard, want, "{by}: {url} in the documented shard");
            }
        }
        assert_eq!(seen.len(), urls.len(), "{by}: every URL once");
        if by == "host" {
            for (host, shards) in &hosts {
                assert_eq!(shards.len(), 1, "{host} in shards {shards:?}");
            }
        } else {
            let used: BTreeSet<u64> = seen.values().copied().collect();
            assert_eq!(used.len(), count as usize, "{by}: dealt out, {seen:?}");
        }
        if by != "line" {
            for shard in 0..count {
                let part = format!("{shard}/{count}");
                let output = parfetch_with_env(
                    &[
                        "-i",
                        reversed_file.to_str().unwrap(),
                        "--shard",
                        &part,
                        "--shard-by",
                        by,
                        "-q",
                    ],
                    &[],
                    None,
                );
                for line in lines(&output) {
                    let url = line["url"].as_str().unwrap();
                    let before = urls.iter().position(|u| u == url).unwrap();
                    assert_eq!(seen[&before], shard, "{by}: {url} moved");
                }
            }
        }
    }
}

#[test]
fn gnu_parallel_runs_four_host_shards() {
    let available = Command::new("parallel").arg("--version").output();
    assert!(
        available
            .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).contains("GNU parallel")),
        "GNU parallel is needed: apt-get install parallel (.ci/run installs it)"
    );
    let servers: Vec<TestServer> = (0..12).map(|_| echo()).collect();
    let dir = crate::scratch_dir("cli-parallel");
    let urls: Vec<String> = (0..96)
        .map(|i| servers[i % 12].url(&format!("/doc/{i}")))
        .collect();
    let file = url_file(&dir, &urls);
    let out = dir.display().to_string();
    // What docs/many-machines.md shows, with this build's binary.
    let mut parallel = Command::new("parallel");
    clean_env(&mut parallel);
    let run = parallel
        .args(["--will-cite", "-j", "4", env!("CARGO_BIN_EXE_parfetch")])
        .args([
            "-i",
            &file,
            "--shard",
            "{}/4",
            "--shard-by",
            "host",
            "--resume",
            "-q",
        ])
        .args(["-o", &format!("{out}/part-{{}}.jsonl")])
        .args(["--summary-json", &format!("{out}/part-{{}}.summary.json")])
        .args([":::", "0", "1", "2", "3"])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut seen = BTreeSet::new();
    let mut host_parts: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    let mut filled = 0;
    for part in 0..4 {
        let text = std::fs::read_to_string(dir.join(format!("part-{part}.jsonl"))).unwrap();
        filled += usize::from(!text.is_empty());
        for line in text.lines() {
            let line: serde_json::Value = serde_json::from_str(line).unwrap();
            let index = line["index"].as_u64().unwrap() as usize;
            assert_eq!(line["ok"], true, "{line}");
            assert!(seen.insert(index), "{index} twice");
            let host = urls[index].split('/').nth(2).unwrap().to_owned();
            host_parts.entry(host).or_default().insert(part);
        }
        let summary: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join(format!("part-{part}.summary.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(summary["complete"], true);
        assert_eq!(summary["shard"]["index"], part);
    }
    assert_eq!(seen, (0..urls.len()).collect(), "every URL once");
    assert_eq!(host_parts.len(), 12);
    for (host, parts) in &host_parts {
        assert_eq!(parts.len(), 1, "{host} in parts {parts:?}");
    }
    assert!(filled >= 2, "12 hosts all in one part of 4");
}
