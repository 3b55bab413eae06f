//! Where the URLs come from: arguments, a file or standard input, read
//! lazily so that a file of millions of lines is never held in memory.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::args::Shard;

/// The URLs to fetch, with the first read error kept for the end.
pub(crate) struct Urls {
    pub(crate) lines: Box<dyn Iterator<Item = String> + Send>,
    pub(crate) read_error: Arc<Mutex<Option<io::Error>>>,
}

/// Opens the source of URLs. Only opening a file can fail here; a read
/// error later ends the input and is kept in `read_error`.
pub(crate) fn open(urls: Vec<String>, input: Option<&Path>) -> io::Result<Urls> {
    let read_error = Arc::new(Mutex::new(None));
    let lines: Box<dyn Iterator<Item = String> + Send> = if urls.is_empty() {
        let reader: Box<dyn BufRead + Send> = match input {
            Some(path) if path != Path::new("-") => Box::new(BufReader::new(File::open(path)?)),
            _ => Box::new(BufReader::new(io::stdin())),
        };
        let slot = Arc::clone(&read_error);
        Box::new(reader.lines().map_while(move |line| match line {
            Ok(line) => Some(line),
            Err(error) => {
                if let Ok(mut slot) = slot.lock() {
                    slot.get_or_insert(error);
                }
                None
            }
        }))
    } else {
        Box::new(urls.into_iter())
    };
    Ok(Urls { lines, read_error })
}

/// The URL lines (blank lines and `#` comments skipped), numbered, and cut
/// down to one shard.
pub(crate) fn urls(
    lines: impl Iterator<Item = String>,
    shard: Option<Shard>,
) -> impl Iterator<Item = (usize, String)> {
    let (k, n) = shard.map_or((0, 1), |s| (s.k, s.n));
    lines
        .map(|line| line.trim().to_owned())
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .enumerate()
        .filter(move |(index, _)| index % n == k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_blanks_and_shards() {
        let lines = ["# list", "a", "", "  b  ", "#c", "c", "d", "e"].map(String::from);
        let all: Vec<_> = urls(lines.clone().into_iter(), None).collect();
        assert_eq!(
            all,
            [(0, "a"), (1, "b"), (2, "c"), (3, "d"), (4, "e")].map(|(i, s)| (i, s.to_owned()))
        );
        let shard = |k, n| -> Vec<usize> {
            urls(lines.clone().into_iter(), Some(Shard { k, n }))
                .map(|(i, _)| i)
                .collect()
        };
        assert_eq!(shard(0, 2), [0, 2, 4]);
        assert_eq!(shard(1, 2), [1, 3]);
    }
}
