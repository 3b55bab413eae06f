//! Where results go: JSON lines (in completion or input order) and, with
//! `--out-dir`, one file per body.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// One JSON line: what became of one URL (its body, JSON as sent, is
/// added last by [`Output::write`]).
#[derive(Serialize)]
pub(crate) struct Line<'a> {
    pub(crate) index: usize,
    pub(crate) url: &'a str,
    pub(crate) ok: bool,
    pub(crate) status: Option<u16>,
    pub(crate) attempts: u32,
    pub(crate) elapsed_ms: f64,
    pub(crate) error: Option<ErrorLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) file: Option<String>,
}

/// An error, for machines (`kind`) and people (`message`).
#[derive(Serialize)]
pub(crate) struct ErrorLine {
    pub(crate) kind: String,
    pub(crate) message: String,
}

impl ErrorLine {
    pub(crate) fn new(error: &parfetch::Error) -> ErrorLine {
        // The message with its causes, as one line.
        let mut message = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        ErrorLine {
            kind: format!("{:?}", error.kind()),
            message,
        }
    }
}

/// Writes JSON lines, holding back lines that arrive early in input order.
pub(crate) struct Output {
    writer: Box<dyn Write>,
    ordered: bool,
    /// With `ordered`: lines waiting for an earlier one, by position.
    waiting: BTreeMap<usize, Vec<u8>>,
    next: usize,
}

impl Output {
    pub(crate) fn new(writer: Box<dyn Write>, ordered: bool) -> Output {
        Output {
            writer,
            ordered,
            waiting: BTreeMap::new(),
            next: 0,
        }
    }

    /// Writes the line of the request at `position` in the batch, with
    /// `body` (JSON text, already checked) as its last field.
    pub(crate) fn write(
        &mut self,
        position: usize,
        line: &Line<'_>,
        body: Option<&str>,
    ) -> io::Result<()> {
        let mut bytes = serde_json::to_vec(line).map_err(io::Error::other)?;
        if let Some(body) = body {
            // The line ends with its object's '}': the body goes before it.
            bytes.pop();
            bytes.extend_from_slice(b",\"body\":");
            bytes.extend_from_slice(body.as_bytes());
            bytes.push(b'}');
        }
        bytes.push(b'\n');
        if !self.ordered {
            return self.writer.write_all(&bytes);
        }
        self.waiting.insert(position, bytes);
        while let Some(bytes) = self.waiting.remove(&self.next) {
            self.writer.write_all(&bytes)?;
            self.next += 1;
        }
        Ok(())
    }

    /// Writes any lines still waiting (after an interrupted batch) and flushes.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        for bytes in std::mem::take(&mut self.waiting).into_values() {
            self.writer.write_all(&bytes)?;
        }
        self.writer.flush()
    }
}

/// The file name for `url`'s body: the URL without its scheme and user
/// info (a secret), every character but letters, digits, `.`, `-` and `_`
/// turned into `_`, no leading dot, at most 120 characters, then a hash of
/// the whole URL (so that URLs differing only in replaced characters, or in
/// credentials, do not collide). It can never name a path outside the
/// directory.
pub(crate) fn file_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let rest = match rest[..authority_end].rfind('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    let safe: String = rest
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let stem = safe.trim_end_matches(".json").trim_matches(['.', '_']);
    let stem: String = stem.chars().take(120).collect();
    format!("{stem}-{:08x}.json", fnv1a(url.as_bytes()) >> 32)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Writes `body` to `dir` under its URL's file name, atomically (a reader
/// never sees half a file). Returns the path.
pub(crate) fn save(dir: &Path, url: &str, position: usize, body: &[u8]) -> io::Result<PathBuf> {
    let path = dir.join(file_name(url));
    let temporary = dir.join(format!(".parfetch-{}-{position}.tmp", std::process::id()));
    fs::write(&temporary, body)?;
    fs::rename(&temporary, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_distinct() {
        let cases = [
            "https://cdn.example/laps/VER.json",
            "https://cdn.example/laps/VER?lap=1",
            "http://h/../../etc/passwd",
            "http://h/%2e%2e%2fx",
            "http://h/a b/ü/ç",
            "...",
            "",
        ];
        let names: Vec<String> = cases.iter().map(|url| file_name(url)).collect();
        for name in &names {
            assert!(!name.starts_with('.'), "{name}");
            assert!(!name.contains('/') && !name.contains('\\'), "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
                "{name}"
            );
            assert!(
                Path::new(name).extension().is_some_and(|e| e == "json"),
                "{name}"
            );
            assert!(name.len() <= 120 + 14, "{name}");
        }
        assert!(
            names[0].starts_with("cdn.example_laps_VER-"),
            "{}",
            names[0]
        );
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        // Same characters after replacement, different URLs: different names.
        assert_ne!(file_name("http://h/a?b"), file_name("http://h/a&b"));
        // Credentials never name a file.
        let secret = file_name("https://me:SECRET@h/x");
        assert!(
            secret.starts_with("h_x-") && !secret.contains("SECRET"),
            "{secret}"
        );
    }
}
