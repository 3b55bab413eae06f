//! Counting the URL lines of a file before a run, so that the progress bar
//! knows where it ends: a scan for line ends (`memchr`) that looks only at
//! the start of each line. Measured on 10 million lines in the README
//! (`cargo run --release --features cli --example count_lines`).

use std::io::{self, Read};

/// How many of the lines `k`, `k + n`, `k + 2n`... of URL lines `input`
/// holds: lines whose first character that is not a space is not `#`.
pub(crate) fn url_lines(mut input: impl Read, k: u64, n: u64) -> io::Result<u64> {
    let mut buffer = vec![0; 1 << 20];
    let mut count = 0u64;
    // The part of a line the last read cut off, when it may matter: a
    // line counts if its first byte that is not a space is not `#`.
    let mut line = LineStart::Fresh;
    loop {
        let read = match input.read(&mut buffer) {
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if read == 0 {
            break;
        }
        let mut rest = &buffer[..read];
        loop {
            let end = memchr::memchr(b'\n', rest);
            let (part, after) = match end {
                Some(end) => (&rest[..end], Some(&rest[end + 1..])),
                None => (rest, None),
            };
            line = line.then(part);
            match after {
                Some(after) => {
                    count += u64::from(line.is_url());
                    line = LineStart::Fresh;
                    rest = after;
                }
                None => break,
            }
        }
    }
    count += u64::from(line.is_url());
    // Lines k, k + n, k + 2n... of `count`.
    Ok(count.saturating_add(n.saturating_sub(1).saturating_sub(k)) / n.max(1))
}

/// What is known of a line so far.
#[derive(Clone, Copy)]
enum LineStart {
    /// Nothing but spaces yet.
    Fresh,
    /// A URL (its first non-space byte is not `#`).
    Url,
    /// A comment.
    Comment,
    /// Starts with a byte past ASCII: whether `str::trim` would take it
    /// for a space is decided on the whole line.
    Unsure(bool),
}

impl LineStart {
    fn then(self, part: &[u8]) -> LineStart {
        match self {
            // White space as `str::trim` has it (a vertical tab too).
            LineStart::Fresh => match part
                .iter()
                .find(|b| !(b.is_ascii() && (**b as char).is_whitespace()))
            {
                None => LineStart::Fresh,
                Some(b'#') => LineStart::Comment,
                Some(byte) if byte.is_ascii() => LineStart::Url,
                Some(_) => {
                    let text = String::from_utf8_lossy(part);
                    let trimmed = text.trim();
                    LineStart::Unsure(!trimmed.is_empty() && !trimmed.starts_with('#'))
                }
            },
            LineStart::Unsure(false) => LineStart::Fresh.then(part),
            known => known,
        }
    }

    fn is_url(self) -> bool {
        matches!(self, LineStart::Url | LineStart::Unsure(true))
    }
}
