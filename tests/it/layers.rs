//! The layers of `src/` and what each may import, read from the code.
//!
//! `docs/architecture.md` draws the layers; this test holds the code to
//! them. It reads every `crate::` path outside `#[cfg(test)]` code (test
//! modules may reach anywhere), maps it to the layer it names, and checks:
//!
//! - the leaves (`origin`, `redact`, `clock`, `cancel`, `stats`, `request`,
//!   `response`, `error/`) import only leaves;
//! - `policy/` and `cache/` never import `transport/`, `engine/`,
//!   `config/`, `parse/` or the face;
//! - `transport/` never imports `engine/`, `parse/`, `config/` or the face;
//! - `parse/` imports only `error/`;
//! - `config/` never imports `engine/` or the face; `engine/` never the face;
//! - no two files import each other, directly or around a loop.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A layer: a folder of `src/`, a leaf file, or the face.
fn layer_of_module(first: &str) -> &'static str {
    match first {
        "transport" => "transport",
        "policy" => "policy",
        "engine" => "engine",
        "parse" => "parse",
        "config" => "config",
        "cache" => "cache",
        "error" => "error",
        "origin" | "redact" | "clock" | "cancel" | "stats" | "request" | "response" => "leaf",
        // `lib.rs`, `fetcher.rs`, `batch.rs`, and what `lib.rs` re-exports
        // (`crate::Fetcher`, `crate::Error` ...: named by their layer below).
        _ => "face",
    }
}

/// The layer a re-exported name at the crate root comes from.
fn layer_of_root_name(name: &str) -> &'static str {
    match name {
        "Error" | "ErrorKind" => "error",
        "Request" | "Method" | "CacheMode" | "CancelToken" | "Stats" | "Latency" | "Response"
        | "Headers" | "CacheStatus" => "leaf",
        "Value" | "RawJson" | "prelude" => "parse",
        "Cache" => "cache",
        "FetcherBuilder" => "config",
        "BreakerState" => "policy",
        _ => "face",
    }
}

/// Whether `from` may import `to`; why not, if it may not.
fn forbidden(from: &str, to: &str) -> Option<&'static str> {
    let leaf = |l: &str| l == "leaf" || l == "error";
    match from {
        _ if from == to => None,
        "leaf" | "error" if !leaf(to) => Some("a leaf imports only leaves"),
        "policy" | "cache"
            if matches!(to, "transport" | "engine" | "config" | "parse" | "face") =>
        {
            Some("policy/ and cache/ never import transport/, engine/, config/, parse/ or the face")
        }
        "transport" if matches!(to, "engine" | "parse" | "config" | "face") => {
            Some("transport/ never imports engine/, parse/, config/ or the face")
        }
        "parse" if to != "error" => Some("parse/ imports only error/"),
        "config" if matches!(to, "engine" | "face") => {
            Some("config/ never imports engine/ or the face")
        }
        "engine" if to == "face" => Some("engine/ never imports the face"),
        _ => None,
    }
}

/// The layer of a file of `src/`.
fn layer_of_file(path: &Path) -> &'static str {
    let relative = path.strip_prefix("src").unwrap_or(path);
    let first = relative
        .components()
        .next()
        .and_then(|c| c.as_os_str().to_str())
        .unwrap_or_default();
    layer_of_module(first.trim_end_matches(".rs"))
}

/// The code of `text` outside its test module (everything before the first
/// `#[cfg(test)]` line: test modules stand at the end of their file), its
/// comment lines left out (a doc link names a path, but imports nothing).
fn outside_tests(text: &str) -> String {
    let code = match text.find("\n#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    };
    code.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::a::b...` path in `code`, as its segments; a `use
/// crate::{a, b::c}` group gives each of its members.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        // `$crate::`, or a word ending in `crate` (`mycrate::`): not ours.
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        if rest.starts_with('{') {
            let end = rest.find('}').unwrap_or(rest.len());
            for member in rest[1..end].split(',') {
                let segments = segments(member);
                if !segments.is_empty() {
                    paths.push(segments);
                }
            }
            continue;
        }
        let segments = segments(rest);
        if !segments.is_empty() {
            paths.push(segments);
        }
    }
    paths
}

/// The leading `a::b::c` of `text`, as segments.
fn segments(text: &str) -> Vec<String> {
    let text = text.trim_start();
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(text.len());
    text[..end]
        .split("::")
        .filter(|s| !s.is_empty() && *s != "self")
        .map(str::to_owned)
        .collect()
}

/// The layer a path names.
fn layer_of_path(segments: &[String]) -> &'static str {
    let first = segments[0].as_str();
    if first.starts_with(|c: char| c.is_uppercase()) || first == "prelude" {
        return layer_of_root_name(first);
    }
    layer_of_module(first)
}

/// The file of `src/` a path names: the longest prefix of its segments that
/// is a module file.
fn file_of_path(segments: &[String]) -> Option<PathBuf> {
    let mut best = None;
    let mut dir = PathBuf::from("src");
    for segment in segments {
        let file = dir.join(format!("{segment}.rs"));
        let folder = dir.join(segment).join("mod.rs");
        if file.is_file() {
            best = Some(file);
        } else if folder.is_file() {
            best = Some(folder);
        } else {
            break;
        }
        dir = dir.join(segment);
    }
    best
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            // The command-line tool is a user of the library, not a layer.
            if path.file_name().is_some_and(|n| n == "bin") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            // The fuzz hooks exist only under cfg(fuzzing) or cfg(test).
            && path.file_name().is_some_and(|n| n != "fuzz.rs")
        {
            out.push(path);
        }
    }
}

/// What breaks the rules in `files` (path, code): one line each.
fn violations(files: &[(PathBuf, String)]) -> Vec<String> {
    let mut found = Vec::new();
    let mut graph: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for (path, text) in files {
        let from = layer_of_file(path);
        for segments in crate_paths(&outside_tests(text)) {
            let to = layer_of_path(&segments);
            if let Some(rule) = forbidden(from, to) {
                found.push(format!(
                    "{} imports crate::{}: {rule}",
                    path.display(),
                    segments.join("::")
                ));
            }
            if let Some(target) = file_of_path(&segments).filter(|t| t != path) {
                graph.entry(path.clone()).or_default().insert(target);
            }
        }
    }
    found.extend(cycles(&graph));
    found
}

/// The import loops of `graph`, each named by its files.
fn cycles(graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Vec<String> {
    // A file is on a loop when it can reach itself.
    let reaches = |from: &PathBuf| {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&PathBuf> = graph.get(from).into_iter().flatten().collect();
        while let Some(next) = stack.pop() {
            if seen.insert(next.clone()) {
                stack.extend(graph.get(next).into_iter().flatten());
            }
        }
        seen
    };
    let reach: BTreeMap<&PathBuf, BTreeSet<PathBuf>> =
        graph.keys().map(|file| (file, reaches(file))).collect();
    let mut loops = BTreeSet::new();
    for (file, reached) in &reach {
        if reached.contains(*file) {
            // Its loop: the files it reaches that reach it back.
            let members: BTreeSet<String> = reached
                .iter()
                .filter(|other| reach.get(other).is_some_and(|r| r.contains(*file)))
                .map(|p| p.display().to_string())
                .collect();
            loops.insert(members.into_iter().collect::<Vec<_>>().join(" <-> "));
        }
    }
    loops
        .into_iter()
        .map(|members| format!("import loop: {members}"))
        .collect()
}

#[test]
fn every_layer_imports_only_what_it_may() {
    let mut paths = Vec::new();
    rust_files(Path::new("src"), &mut paths);
    assert!(
        paths.len() > 20,
        "src/ not found from {:?}",
        std::env::current_dir()
    );
    let files: Vec<(PathBuf, String)> = paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            (path, text)
        })
        .collect();
    let found = violations(&files);
    assert!(
        found.is_empty(),
        "layer rules broken:\n{}",
        found.join("\n")
    );
}

#[test]
fn a_forbidden_import_is_caught() {
    let file = |path: &str, text: &str| (PathBuf::from(path), text.to_owned());
    let cases = [
        (
            file(
                "src/policy/breaker.rs",
                "use crate::transport::agent::Agents;\n",
            ),
            "policy/ and cache/ never import",
        ),
        (
            file(
                "src/cache/mod.rs",
                "use crate::{origin::Origin, engine::Engine};\n",
            ),
            "policy/ and cache/ never import",
        ),
        (
            file(
                "src/transport/attempt.rs",
                "let x = crate::parse::parse_body(b);\n",
            ),
            "transport/ never imports",
        ),
        (
            file("src/origin.rs", "use crate::Fetcher;\n"),
            "a leaf imports only leaves",
        ),
        (
            file("src/parse/mod.rs", "use crate::request::Request;\n"),
            "parse/ imports only error/",
        ),
        (
            file("src/engine/mod.rs", "use crate::batch::Batch;\n"),
            "engine/ never imports the face",
        ),
    ];
    for (case, rule) in cases {
        let found = violations(std::slice::from_ref(&case));
        assert!(
            found.iter().any(|f| f.contains(rule)),
            "{}: {found:?}",
            case.0.display()
        );
    }
    // Code in a test module may reach anywhere.
    let tested = file(
        "src/policy/host.rs",
        "use crate::clock::Clock;\n#[cfg(test)]\nmod tests { use crate::Fetcher; }\n",
    );
    assert_eq!(violations(&[tested]), Vec::<String>::new());
}

#[test]
fn an_import_loop_is_caught() {
    let mut graph = BTreeMap::new();
    let (a, b, c) = (
        PathBuf::from("src/a.rs"),
        PathBuf::from("src/b.rs"),
        PathBuf::from("src/c.rs"),
    );
    graph.insert(a.clone(), BTreeSet::from([b.clone()]));
    graph.insert(b.clone(), BTreeSet::from([c.clone()]));
    graph.insert(c.clone(), BTreeSet::from([a.clone()]));
    assert_eq!(
        cycles(&graph),
        ["import loop: src/a.rs <-> src/b.rs <-> src/c.rs"]
    );
    graph.insert(c, BTreeSet::new());
    assert_eq!(cycles(&graph), Vec::<String>::new());
}
