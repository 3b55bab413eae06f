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
        // Lines as bytes: one that is not UTF-8 (a Latin-1 comment, say)
        // does not end the list; as a URL, it fails on its own.
        Box::new(reader.split(b'\n').map_while(move |line| match line {
            Ok(line) => Some(String::from_utf8_lossy(&line).into_owned()),
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

/// How many URLs the file at `path` holds for `shard` (the lines [`urls`]
/// keeps), counted before the run so that the progress bar knows its end;
/// `None` for standard input or anything that is not a regular file, which
/// cannot be read twice.
pub(crate) fn count(path: &Path, shard: Option<Shard>) -> io::Result<Option<u64>> {
    if path == Path::new("-") || !std::fs::metadata(path)?.is_file() {
        return Ok(None);
    }
    let (k, n) = shard.map_or((0, 1), |s| (s.k as u64, s.n as u64));
    crate::count::url_lines(File::open(path)?, k, n).map(Some)
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

    #[test]
    fn counting_agrees_with_reading() {
        let dir = std::env::temp_dir().join(format!("parfetch-count-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("urls.txt");
        let mut text = String::from("# list\n\n  \t\nhttp://a/1\n   # indented comment\n");
        text.push_str("\u{a0}\n\u{a0}http://b/\r\nhttp://c/\n\n");
        for i in 0..3000 {
            text += &["http://h/", &i.to_string(), "\n"].concat();
        }
        text.push_str("http://last-without-newline/");
        std::fs::write(&path, &text).unwrap();
        for shard in [None, Some(Shard { k: 0, n: 1 }), Some(Shard { k: 2, n: 7 })] {
            let lines = text.lines().map(str::to_owned);
            let read = urls(lines, shard).count() as u64;
            assert_eq!(count(&path, shard).unwrap(), Some(read), "{shard:?}");
        }
        assert_eq!(count(Path::new("-"), None).unwrap(), None);
        assert!(count(&dir.join("missing"), None).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
