//! `--resume`: carry on where a run that was killed left its output file.
//!
//! Why the file ends up with exactly one line per URL, whenever the kills
//! come (`kill -9`, an OOM kill, a node that vanished):
//! - A run with `--resume` writes each line with a single `write` to the
//!   file opened for appending, as soon as its URL is done (`output.rs`).
//!   So the file is whole lines, plus at worst the start of one line that a
//!   kill cut short. A line counts only with its newline.
//! - Before anything is appended, that torn end is cut off, and the lines
//!   of URLs a run stopped before finishing (`Cancelled`, `DeadlineExceeded`,
//!   written by a run without `--resume`) are taken out: their URLs are
//!   not done.
//! - The URLs of the remaining lines are skipped, each matched by its
//!   index in the list and by its URL (a line of another list, or of a
//!   list that was edited, does not make a URL count as done); the others
//!   are fetched and appended, each once.
//!
//! A run with `--resume` does not write the lines of URLs it stops before
//! finishing (Ctrl-C, SIGTERM, `--deadline`): the next run fetches them.
//! Once the run ends, the file is flushed to disk (`fsync`) before the
//! summary says the part is complete, so a machine that crashes later
//! does not leave a summary without its lines.
//!
//! What is kept of the file's lines: 16 bytes each (the index, a 63-bit
//! hash of the URL, whether it failed), to be walked in step with the list.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use crate::failed::FailedList;
use crate::outdir::OutDir;

/// How each of parfetch's lines begins.
const LINE_START: &[u8] = b"{\"index\":";

/// The error kinds of URLs a run stopped before finishing.
pub(crate) const UNFINISHED: [&str; 2] = ["Cancelled", "DeadlineExceeded"];

/// What the output file already holds, and what was mended in it.
pub(crate) struct Resumed {
    /// The file, open for appending after its last whole line.
    pub(crate) file: File,
    pub(crate) done: Done,
    /// Bytes of a torn last line that were cut off.
    pub(crate) cut: u64,
    /// Lines of unfinished URLs taken out.
    pub(crate) taken_out: u64,
}

/// The part of a line `--resume` reads (the body and the rest are skipped).
#[derive(Deserialize)]
struct Seen<'a> {
    index: u64,
    #[serde(borrow)]
    url: std::borrow::Cow<'a, str>,
    ok: bool,
    #[serde(borrow)]
    error: Option<SeenError<'a>>,
}

#[derive(Deserialize)]
struct SeenError<'a> {
    #[serde(borrow)]
    kind: std::borrow::Cow<'a, str>,
}

/// A line that counts, as kept: its index, and its URL's hash with the
/// lowest bit saying whether it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    index: u64,
    url_and_failed: u64,
}

impl Entry {
    fn new(index: u64, url: &str, failed: bool) -> Entry {
        Entry {
            index,
            url_and_failed: (crate::shard::hash(url) & !1) | u64::from(failed),
        }
    }

    fn same_url(self, url: &str) -> bool {
        self.url_and_failed & !1 == crate::shard::hash(url) & !1
    }

    fn failed(self) -> bool {
        self.url_and_failed & 1 == 1
    }
}

/// Opens (creating it if need be) the output file `path` to resume it:
/// reads its lines, mends it (see the module docs) and leaves it open for
/// appending.
///
/// # Errors
///
/// A message when the file cannot be read or written, or holds something
/// parfetch did not write (a line that is not one of its JSON lines):
/// nothing of it is changed then.
pub(crate) fn open(path: &Path) -> Result<Resumed, String> {
    let shown = path.display();
    let io_error = |e: io::Error| format!("cannot resume {shown}: {e}");
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(io_error)?;
    let mut entries = Vec::new();
    let mut taken_out = 0u64;
    // The end of the last whole line.
    let mut whole = 0u64;
    let mut reader = BufReader::with_capacity(1 << 20, &file);
    let mut line = Vec::new();
    for number in 1u64.. {
        line.clear();
        let read = reader.read_until(b'\n', &mut line).map_err(io_error)?;
        if read == 0 {
            break;
        }
        if line.last() != Some(&b'\n') {
            // A last line without its newline: a write cut short, if it is
            // the start of one of ours; else not ours to cut.
            let blank = line.iter().all(|b| b.is_ascii_whitespace() || *b == 0);
            // A write may stop within the opening itself (`{"in`).
            let ours = line.starts_with(LINE_START) || LINE_START.starts_with(&line);
            if !blank && !ours {
                return Err(not_ours(
                    path,
                    &format!("its last line ({number}) is not parfetch's"),
                ));
            }
            break;
        }
        let seen: Seen<'_> = serde_json::from_slice(&line)
            .map_err(|e| not_ours(path, &format!("line {number}: {e}")))?;
        let kind = seen.error.as_ref().map(|error| &*error.kind);
        if kind.is_some_and(|kind| UNFINISHED.contains(&kind)) {
            taken_out += 1;
        } else {
            entries.push(Entry::new(seen.index, &seen.url, !seen.ok));
        }
        whole += read as u64;
    }
    drop(reader);
    let length = file.metadata().map_err(io_error)?.len();
    let cut = length.saturating_sub(whole);
    let file = if taken_out > 0 {
        rewrite_without_unfinished(path, &file, whole).map_err(io_error)?
    } else {
        if cut > 0 {
            file.set_len(whole).map_err(io_error)?;
            file.sync_data().map_err(io_error)?;
        }
        file
    };
    // Completion order is nearly sorted: the sort is cheap.
    entries.sort_unstable();
    Ok(Resumed {
        file,
        done: Done {
            entries,
            next: 0,
            skipped: 0,
            skipped_failed: 0,
        },
        cut,
        taken_out,
    })
}

fn not_ours(path: &Path, what: &str) -> String {
    format!(
        "cannot resume {}: {what}; --resume only appends to parfetch's own output \
         (JSON lines): name another -o, or move this file aside",
        path.display()
    )
}

/// Copies the first `whole` bytes of `file` without the lines of
/// unfinished URLs to a temporary file beside it, and puts that in its
/// place (a rename: a kill meanwhile leaves the old file whole).
fn rewrite_without_unfinished(path: &Path, file: &File, whole: u64) -> io::Result<File> {
    let temporary = sibling(path, ".parfetch-resume");
    let copy = File::create(&temporary)?;
    let mut writer = BufWriter::new(&copy);
    let mut source = file;
    source.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::with_capacity(1 << 20, io::Read::take(source, whole));
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let unfinished = serde_json::from_slice::<Seen<'_>>(&line).is_ok_and(|seen| {
            seen.error
                .is_some_and(|error| UNFINISHED.contains(&&*error.kind))
        });
        if !unfinished {
            writer.write_all(&line)?;
        }
    }
    writer.flush()?;
    drop(writer);
    copy.sync_all()?;
    fs::rename(&temporary, path)?;
    sync_dir(path);
    OpenOptions::new().read(true).append(true).open(path)
}

/// `path` with `suffix` added to its file name, in its directory.
pub(crate) fn sibling(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(suffix);
    path.with_file_name(name)
}

/// Makes a rename in `path`'s directory durable (Unix; elsewhere a no-op).
pub(crate) fn sync_dir(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
        }
    }
}

/// The URLs the output already holds, walked in step with the list.
pub(crate) struct Done {
    /// Sorted by index.
    entries: Vec<Entry>,
    /// The first entry not yet passed by the list.
    next: usize,
    pub(crate) skipped: u64,
    pub(crate) skipped_failed: u64,
}

impl Done {
    /// How many lines the file holds that count.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the URL `shown` (as a line shows it), the list's `index`th,
    /// is done; `Some(failed)` if so. Indexes must come in increasing order.
    fn check(&mut self, index: u64, shown: &str) -> Option<bool> {
        while self.entries.get(self.next).is_some_and(|e| e.index < index) {
            self.next += 1;
        }
        let found = self.entries[self.next..]
            .iter()
            .take_while(|e| e.index == index)
            .find(|e| e.same_url(shown))?;
        self.skipped += 1;
        self.skipped_failed += u64::from(found.failed());
        Some(found.failed())
    }

    /// Lines of the file that no URL of the list matched (by index and
    /// URL): from another list, an edited one, or another shard.
    pub(crate) fn unmatched(&self) -> u64 {
        (self.entries.len() as u64).saturating_sub(self.skipped)
    }
}

/// Leaves out the URLs the output already holds: lists the failed ones
/// again in `--failed` (a new list every run) and claims the files of the
/// others in `--out-dir` (so that no new URL takes their name).
pub(crate) struct Skipper {
    pub(crate) done: Done,
    pub(crate) failed: Option<Arc<Mutex<FailedList>>>,
    pub(crate) out_dir: Option<Arc<Mutex<OutDir>>>,
}

impl Skipper {
    /// Whether the list's `index`th URL, `url`, is done already.
    pub(crate) fn skips(&mut self, index: usize, url: &str) -> bool {
        let request = parfetch::Request::get(url);
        // The URL as lines show it (user info hidden), to match them.
        let shown = request.redacted_url();
        let Some(failed) = self.done.check(index as u64, &shown) else {
            return false;
        };
        if failed {
            if let Some(list) = &self.failed {
                crate::lock(list).add(url);
            }
        } else if let Some(dir) = &self.out_dir {
            // Its file was written by an earlier run; a collision found now
            // would have been found then.
            let _ = crate::lock(dir).claim(&shown, url);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("parfetch-resume-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir.join("out.jsonl")
    }

    fn line(index: u64, url: &str, error: Option<&str>) -> String {
        let error = error.map_or("null".to_owned(), |kind| {
            format!(r#"{{"kind":"{kind}","message":"m"}}"#)
        });
        format!(
            r#"{{"index":{index},"url":"{url}","ok":{},"status":200,"attempts":1,"elapsed_ms":1.0,"error":{error},"body":{{"a":[1,"}}\n"]}}}}"#,
            error == "null"
        ) + "\n"
    }

    #[test]
    fn a_torn_end_is_cut_and_whole_lines_count() {
        let path = scratch("torn");
        let text = line(0, "http://h/0", None) + &line(2, "http://h/2", Some("NotFound"));
        let torn = r#"{"index":1,"url":"http://h/1","o"#;
        fs::write(&path, text.clone() + torn).unwrap();
        let mut resumed = open(&path).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
        assert_eq!((resumed.cut, resumed.taken_out), (torn.len() as u64, 0));
        let done = &mut resumed.done;
        assert_eq!(done.check(0, "http://h/0"), Some(false));
        assert_eq!(done.check(1, "http://h/1"), None);
        // The same index with another URL: the list changed; not done.
        assert_eq!(done.check(2, "http://h/other"), None);
        assert_eq!(done.unmatched(), 1);
        // Appending goes after the last whole line.
        resumed.file.write_all(b"x\n").unwrap();
        assert!(fs::read_to_string(&path).unwrap().ends_with("}\nx\n"));
    }

    #[test]
    fn unfinished_lines_are_taken_out() {
        let path = scratch("unfinished");
        let (ok, failed) = (
            line(0, "http://h/0", None),
            line(3, "http://h/3", Some("Timeout")),
        );
        let kept = ok.clone() + &failed;
        let text = line(1, "http://h/1", Some("Cancelled"))
            + &ok
            + &line(2, "http://h/2", Some("DeadlineExceeded"))
            + &failed;
        fs::write(&path, &text).unwrap();
        let mut resumed = open(&path).unwrap();
        assert_eq!((resumed.cut, resumed.taken_out), (0, 2));
        assert_eq!(fs::read_to_string(&path).unwrap(), kept);
        assert_eq!(resumed.done.len(), 2);
        assert_eq!(resumed.done.check(3, "http://h/3"), Some(true));
    }

    #[test]
    fn a_file_that_is_not_ours_is_left_alone() {
        for text in ["http://h/0\nhttp://h/1\n", "{\"index\":0}\n", "http://h/0"] {
            let path = scratch("not-ours");
            fs::write(&path, text).unwrap();
            let message = open(&path).err().unwrap();
            assert!(
                message.contains("--resume only appends to parfetch's own output"),
                "{message}"
            );
            assert_eq!(fs::read_to_string(&path).unwrap(), text);
        }
        let path = scratch("missing");
        let resumed = open(&path).unwrap();
        assert_eq!(resumed.done.len(), 0);
        assert!(path.exists());
    }
}
