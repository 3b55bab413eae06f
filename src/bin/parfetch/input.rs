//! Where the URLs come from: arguments, a file or standard input, read
//! lazily so that a file of millions of lines is never held in memory.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::shard::{By, Shard};

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
/// numbers and the shard keeps), counted before the run so that the
/// progress bar knows its end; `None` for standard input or anything that
/// is not a regular file, which cannot be read twice. By line, only line
/// starts are looked at; by URL or host, each URL is hashed.
pub(crate) fn count(path: &Path, shard: Shard) -> io::Result<Option<u64>> {
    if path == Path::new("-") || !std::fs::metadata(path)?.is_file() {
        return Ok(None);
    }
    if shard.by == By::Line {
        let (k, n) = (shard.index as u64, shard.count as u64);
        return crate::count::url_lines(File::open(path)?, k, n).map(Some);
    }
    let lines = BufReader::new(File::open(path)?)
        .split(b'\n')
        .map(|line| line.map(|line| String::from_utf8_lossy(&line).into_owned()));
    let mut count = 0;
    let mut error = None;
    let lines = lines.map_while(|line| line.map_err(|e| error = Some(e)).ok());
    for (line, url) in urls(lines) {
        count += u64::from(shard.keeps(line, &url));
    }
    match error {
        Some(error) => Err(error),
        None => Ok(Some(count)),
    }
}

/// The URL lines (blank lines and `#` comments skipped), trimmed and
/// numbered from 0: a URL's number is its place in the whole list, the
/// same in every shard.
pub(crate) fn urls(lines: impl Iterator<Item = String>) -> impl Iterator<Item = (usize, String)> {
    lines
        .map(|line| line.trim().to_owned())
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .enumerate()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_blanks_are_not_numbered() {
        let lines = ["# list", "a", "", "  b  ", "#c", "c", "d", "e"].map(String::from);
        let all: Vec<_> = urls(lines.into_iter()).collect();
        assert_eq!(
            all,
            [(0, "a"), (1, "b"), (2, "c"), (3, "d"), (4, "e")].map(|(i, s)| (i, s.to_owned()))
        );
    }

    #[test]
    fn counting_agrees_with_reading() {
        let dir = std::env::temp_dir().join(format!("parfetch-count-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("urls.txt");
        let mut text = String::from("# list\n\n  \t\nhttp://a/1\n   # indented comment\n");
        text.push_str("\u{a0}\n\u{a0}http://b/\r\nhttp://c/\n\n");
        for i in 0..3000 {
            text += &["http://h", &(i % 13).to_string(), "/", &i.to_string(), "\n"].concat();
        }
        text.push_str("http://last-without-newline/");
        std::fs::write(&path, &text).unwrap();
        let shards = [
            Shard::ALL,
            Shard {
                index: 2,
                count: 7,
                by: By::Line,
            },
            Shard {
                index: 1,
                count: 3,
                by: By::Url,
            },
            Shard {
                index: 0,
                count: 3,
                by: By::Host,
            },
        ];
        for shard in shards {
            let lines = text.lines().map(str::to_owned);
            let read = urls(lines).filter(|(i, url)| shard.keeps(*i, url)).count() as u64;
            assert_eq!(count(&path, shard).unwrap(), Some(read), "{shard:?}");
        }
        assert_eq!(count(Path::new("-"), Shard::ALL).unwrap(), None);
        assert!(count(&dir.join("missing"), Shard::ALL).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
