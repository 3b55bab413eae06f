//! `--out-dir DIR`: each body in a file of its own, named after its URL.
//!
//! A name is the URL made safe for every file system (letters, digits,
//! `.`, `-` and `_`; at most 120 of them), then the 16 hex digits of the
//! URL's hash (`shard::hash` of the URL as the JSON line's `url` shows
//! it), then `.json`. Long URLs that share their first 120 characters
//! (signed URLs, long queries) differ in the hash, so two URLs get one name
//! only by a 64-bit collision, or when they differ only in their user info
//! (which no name shows: it holds credentials).
//!
//! When two URLs of a run still want one name, the second is an error for
//! that URL (its line says `NameCollision`), never an overwrite: the names
//! a run writes (or, with `--resume`, finds written by the run it
//! resumes) are kept, with a hash of the whole URL, 16 bytes a file. A file
//! that was there before the run, under the name of a URL of this run, is
//! taken to be that URL's (the name's hash says so) and replaced.
//!
//! Files are written whole or not at all: to a temporary file in DIR,
//! then renamed over the name, so a reader (or a run killed half-way)
//! never leaves half a body under a name.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::shard::hash;

/// The directory, and the names this run has claimed in it.
pub(crate) struct OutDir {
    dir: PathBuf,
    /// Makes this run's temporary names its own, with the process id
    /// (processes in containers often share one).
    nonce: u64,
    /// Name (by the hash in it) to the hash of the whole URL that has it.
    claimed: HashMap<u64, u64>,
}

/// Why a body was not saved.
pub(crate) enum SaveError {
    /// Another URL of the run has the name: the message says which name.
    Collision(String),
    /// The file could not be written.
    Io(io::Error),
}

impl OutDir {
    /// The directory `dir`, created if need be.
    pub(crate) fn create(dir: &Path) -> io::Result<OutDir> {
        fs::create_dir_all(dir)?;
        Ok(OutDir {
            dir: dir.to_owned(),
            nonce: fastrand::u64(..),
            claimed: HashMap::new(),
        })
    }

    /// Claims the name of `shown` (the URL as lines show it) for `url` (as
    /// listed): the name, unless another URL of the run has it.
    pub(crate) fn claim(&mut self, shown: &str, url: &str) -> Result<String, SaveError> {
        let key = hash(shown);
        let whole = hash(url);
        let name = file_name(shown, key);
        match self.claimed.insert(key, whole) {
            Some(earlier) if earlier != whole => {
                self.claimed.insert(key, earlier);
                Err(SaveError::Collision(format!(
                    "not saved: another URL of this run has the file {} (URLs that differ only \
                     in their user info share a name): fetch them into different --out-dir",
                    self.dir.join(&name).display()
                )))
            }
            _ => Ok(name),
        }
    }

    /// Writes `body` under the name of `shown` for `url`, atomically.
    /// `position` keeps the temporary names of the run apart.
    pub(crate) fn save(
        &mut self,
        shown: &str,
        url: &str,
        position: usize,
        body: &[u8],
    ) -> Result<PathBuf, SaveError> {
        let name = self.claim(shown, url)?;
        let path = self.dir.join(name);
        let temporary = self.dir.join(format!(
            ".parfetch-{}-{:016x}-{position}.tmp",
            std::process::id(),
            self.nonce
        ));
        fs::write(&temporary, body)
            .and_then(|()| fs::rename(&temporary, &path))
            .map_err(|error| {
                let _ = fs::remove_file(&temporary);
                SaveError::Io(error)
            })?;
        Ok(path)
    }
}

/// The file name for the URL `shown` whose hash is `key` (module docs).
/// It can never name a path outside the directory, nor a hidden file.
pub(crate) fn file_name(shown: &str, key: u64) -> String {
    let rest = shown.split_once("://").map_or(shown, |(_, rest)| rest);
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
    format!("{stem}-{key:016x}.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(url: &str) -> String {
        file_name(url, hash(url))
    }

    #[test]
    fn file_names_are_safe_and_distinct() {
        let long = "https://cdn.example/".to_owned() + &"x".repeat(150);
        let cases = [
            "https://cdn.example/laps/VER.json".to_owned(),
            "https://cdn.example/laps/VER?lap=1".to_owned(),
            "http://h/../../etc/passwd".to_owned(),
            "http://h/%2e%2e%2fx".to_owned(),
            "http://h/a b/ü/ç".to_owned(),
            "...".to_owned(),
            String::new(),
            long.clone() + "?sig=1",
            long + "?sig=2",
        ];
        let names: Vec<String> = cases.iter().map(|url| name(url)).collect();
        for name in &names {
            assert!(!name.starts_with('.'), "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
                "{name}"
            );
            assert!(
                Path::new(name).extension().is_some_and(|e| e == "json"),
                "{name}"
            );
            assert!(name.len() <= 120 + 1 + 16 + 5, "{name}");
        }
        assert_eq!(
            names[0],
            format!("cdn.example_laps_VER-{:016x}.json", hash(&cases[0]))
        );
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:#?}");
        // Same characters after replacement, different URLs: different names.
        assert_ne!(name("http://h/a?b"), name("http://h/a&b"));
        // User info never names a file.
        let secret = name("https://***@h/x");
        assert!(secret.starts_with("h_x-"), "{secret}");
    }

    #[test]
    fn one_name_for_two_urls_is_an_error_not_an_overwrite() {
        let dir = std::env::temp_dir().join(format!("parfetch-outdir-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut out = OutDir::create(&dir).unwrap();
        let shown = "http://***@h/x";
        let first = out.save(shown, "http://a:1@h/x", 0, b"[1]").ok().unwrap();
        // The same URL again: its own file, rewritten.
        assert!(out.save(shown, "http://a:1@h/x", 1, b"[2]").is_ok());
        match out.save(shown, "http://b:2@h/x", 2, b"[3]") {
            Err(SaveError::Collision(message)) => {
                assert!(message.contains("different --out-dir"), "{message}");
            }
            _ => panic!("a second URL took the name"),
        }
        assert_eq!(fs::read(&first).unwrap(), b"[2]");
        // No temporary file is left.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        let _ = fs::remove_dir_all(&dir);
    }
}
