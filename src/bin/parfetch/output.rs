//! Where the results go: the JSON lines (in completion or input order),
//! and with them the counts of the summary and the `--failed` list, so that
//! a URL is counted (and listed) exactly when its line is written.
//!
//! With `--resume`, each line goes to the file in one `write` as soon as it
//! is ready (`resume.rs` says why), and a URL the run stopped before
//! finishing gets no line; with `--ordered` too, no line after such a URL
//! is written either, so the file stays in input order across resumes.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::failed::FailedList;
use crate::summary::Summary;

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
        // The message ends with its causes already: one line.
        ErrorLine {
            kind: error.kind().to_string(),
            message: error.to_string(),
        }
    }
}

/// A line ready to be written, and what it counts as.
pub(crate) struct Ready {
    /// The JSON line up to its body (or whole, newline included, if it has
    /// none).
    bytes: Vec<u8>,
    /// The body, as it came: written after `bytes` and before [`TAIL`],
    /// not copied into the line (a document may be megabytes).
    body: Option<String>,
    /// The error kind, if the URL failed.
    failure: Option<String>,
    /// The URL as listed, if it failed (for `--failed`).
    failed_url: Option<String>,
}

impl Ready {
    /// `line` with `body` (JSON text, already checked) as its last field.
    /// `url` is the URL as listed, `failure` the kind of its error.
    pub(crate) fn new(
        line: &Line<'_>,
        body: Option<String>,
        url: &str,
        failure: Option<String>,
    ) -> io::Result<Ready> {
        let mut bytes = serde_json::to_vec(line).map_err(io::Error::other)?;
        if body.is_some() {
            // The line ends with its object's '}': the body goes before it.
            bytes.pop();
            bytes.extend_from_slice(b",\"body\":");
        } else {
            bytes.push(b'\n');
        }
        Ok(Ready {
            bytes,
            body,
            failed_url: failure.as_ref().map(|_| url.to_owned()),
            failure,
        })
    }
}

/// What ends a line with a body: its object's '}', and the newline.
const TAIL: &[u8] = b"}\n";

/// Writes every byte of `parts`, in as few writes as the writer takes
/// (one, for a file): std's `write_all_vectored` is not stable yet.
fn write_all_vectored(writer: &mut dyn Write, mut parts: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !parts.is_empty() {
        match writer.write_vectored(parts) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => IoSlice::advance_slices(&mut parts, written),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Writes lines, and counts and lists what it writes.
pub(crate) struct Output {
    writer: Box<dyn Write>,
    /// The output file, to be flushed to disk at the end.
    file: Option<File>,
    /// With `--ordered`: lines waiting for an earlier one.
    order: Option<Order>,
    pub(crate) summary: Summary,
    failed: Option<Arc<Mutex<FailedList>>>,
}

/// Lines held back until the earlier ones are written.
#[derive(Default)]
struct Order {
    /// By batch position.
    waiting: BTreeMap<usize, Ready>,
    /// The next position to write.
    next: usize,
    /// The first position that will have no line (`--resume`): nothing
    /// from it on is written.
    hole: Option<usize>,
}

impl Output {
    /// Lines to `writer` (with `file`, the same file, to flush to disk at
    /// the end), in input order if `ordered`; failed URLs to `failed`.
    pub(crate) fn new(
        writer: Box<dyn Write>,
        file: Option<File>,
        ordered: bool,
        failed: Option<Arc<Mutex<FailedList>>>,
    ) -> Output {
        Output {
            writer,
            file,
            order: ordered.then(Order::default),
            summary: Summary::default(),
            failed,
        }
    }

    /// Writes the line of the request at batch `position` (once the
    /// earlier ones are written, if in order).
    pub(crate) fn write(&mut self, position: usize, ready: Ready) -> io::Result<()> {
        let Some(order) = &mut self.order else {
            return self.commit(ready);
        };
        if order.hole.is_some_and(|hole| position > hole) {
            self.summary.unfinished += 1;
            return Ok(());
        }
        order.waiting.insert(position, ready);
        loop {
            let Some(order) = &mut self.order else {
                return Ok(());
            };
            let Some(ready) = order.waiting.remove(&order.next) else {
                return Ok(());
            };
            order.next += 1;
            self.commit(ready)?;
        }
    }

    /// Notes that the request at `position` gets no line: the run stopped
    /// before it finished, and `--resume` will fetch it.
    pub(crate) fn leave_unfinished(&mut self, position: usize) {
        self.summary.unfinished += 1;
        if let Some(order) = &mut self.order {
            if order.hole.is_none_or(|hole| position < hole) {
                order.hole = Some(position);
                // Lines after it will not be written: let them go now.
                let later = order.waiting.split_off(&position);
                self.summary.unfinished += later.len() as u64;
            }
        }
    }

    fn commit(&mut self, ready: Ready) -> io::Result<()> {
        // One write per line: with --resume the writer is the file itself.
        match &ready.body {
            None => self.writer.write_all(&ready.bytes)?,
            Some(body) => write_all_vectored(
                &mut self.writer,
                &mut [
                    IoSlice::new(&ready.bytes),
                    IoSlice::new(body.as_bytes()),
                    IoSlice::new(TAIL),
                ],
            )?,
        }
        self.summary.add(ready.failure);
        if let (Some(list), Some(url)) = (&self.failed, ready.failed_url) {
            crate::lock(list).add(&url);
        }
        Ok(())
    }

    /// Writes what is still waiting (the lines after a request that never
    /// ended, if any: an interrupted run without `--resume`), flushes, and
    /// puts the file on disk.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        if let Some(order) = &mut self.order {
            let waiting = std::mem::take(&mut order.waiting);
            if order.hole.is_some() {
                self.summary.unfinished += waiting.len() as u64;
            } else {
                for ready in waiting.into_values() {
                    self.commit(ready)?;
                }
            }
        }
        self.writer.flush()?;
        match &self.file {
            // A device or a pipe (`-o /dev/null`) has nothing to put on disk.
            Some(file) if file.metadata()?.is_file() => file.sync_data(),
            _ => Ok(()),
        }
    }
}
