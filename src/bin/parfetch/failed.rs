//! `--failed FILE`: the URLs that failed, one per line, ready to be the
//! next run's `-i`.
//!
//! They are the URLs of the output's failed lines: with `--resume`, those
//! an earlier run wrote as well (the list is made anew every run, so it
//! never names a URL twice); URLs left unfinished for `--resume` are not
//! in it, as they have no line yet. The URLs are written as listed, user
//! info included (the next run needs it), so the file is made readable by
//! its owner only, like the cache.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// The list being written; the first write error is kept for the end.
pub(crate) struct FailedList {
    writer: BufWriter<File>,
    error: Option<io::Error>,
}

impl FailedList {
    /// Creates (or empties) the list at `path`.
    pub(crate) fn create(path: &Path) -> io::Result<FailedList> {
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        Ok(FailedList {
            writer: BufWriter::new(options.open(path)?),
            error: None,
        })
    }

    /// Adds `url`.
    pub(crate) fn add(&mut self, url: &str) {
        if self.error.is_none() {
            if let Err(error) = self
                .writer
                .write_all(url.as_bytes())
                .and_then(|()| self.writer.write_all(b"\n"))
            {
                self.error = Some(error);
            }
        }
    }

    /// Flushes the list to disk; the first error of the run, if any.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        self.writer.flush()?;
        let file = self.writer.get_ref();
        // A device or a pipe (`/dev/stdout`) has nothing to put on disk.
        if file.metadata()?.is_file() {
            file.sync_data()?;
        }
        Ok(())
    }
}
