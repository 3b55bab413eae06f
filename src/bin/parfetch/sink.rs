//! What becomes of each result: its line (its place in the whole list,
//! its URL without secrets, its body or the file holding it) and, with
//! `--out-dir`, its file. A URL a `--resume` run stopped before finishing
//! gets no line (the next run fetches it).

use std::sync::{Arc, Mutex};

use parfetch::{CancelToken, Error, ErrorKind, Request, Response};

use crate::lock;
use crate::outdir::{OutDir, SaveError};
use crate::output::{ErrorLine, Line, Output, Ready};
use crate::places::Places;

/// Turns results into lines (and files, with `--out-dir`).
pub(crate) struct Sink<'a> {
    pub(crate) output: Output,
    pub(crate) places: Places,
    pub(crate) out_dir: Option<Arc<Mutex<OutDir>>>,
    /// With `--resume`: unfinished URLs get no line.
    pub(crate) resume: bool,
    /// The message of the first output error: it stops the run, and is
    /// said once, when the run ends.
    pub(crate) write_error: Option<String>,
    pub(crate) cancel: &'a CancelToken,
}

impl Sink<'_> {
    /// With `--out-dir`: saves the body, then writes the line naming it.
    pub(crate) fn save_and_emit(
        &mut self,
        position: usize,
        result: &Result<Response<Vec<u8>>, Error>,
    ) {
        let (index, url) = self.places.take(position);
        let (Ok(response), Some(dir)) = (result, &self.out_dir) else {
            return self.emit(position, (index, &url), result, None, None, None);
        };
        let shown = Request::get(url.as_str()).redacted_url().into_owned();
        let saved = lock(dir).save(&shown, &url, position, response.body());
        match saved {
            Ok(path) => self.emit(
                position,
                (index, &url),
                result,
                None,
                Some(path.display().to_string()),
                None,
            ),
            Err(SaveError::Collision(message)) => {
                let error = ErrorLine {
                    kind: "NameCollision".to_owned(),
                    message,
                };
                self.emit(position, (index, &url), result, None, None, Some(error));
            }
            Err(SaveError::Io(error)) => {
                self.fail(format!("cannot write into the --out-dir: {error}"));
            }
        }
    }

    /// Writes the line of the request at batch `position`: its result, or
    /// `error` in its stead (a body that could not be saved). `listed`: its
    /// number and URL in the list (`Places::take`).
    pub(crate) fn emit<T>(
        &mut self,
        position: usize,
        (index, url): (usize, &str),
        result: &Result<Response<T>, Error>,
        body: Option<String>,
        file: Option<String>,
        error: Option<ErrorLine>,
    ) {
        let kind = result.as_ref().err().map(parfetch::Error::kind);
        if self.resume
            && matches!(
                kind,
                Some(ErrorKind::Cancelled | ErrorKind::DeadlineExceeded)
            )
        {
            // Not done: the next run with --resume fetches it.
            self.output.leave_unfinished(position);
            return;
        }
        let error = error.or_else(|| result.as_ref().err().map(ErrorLine::new));
        let failure = error.as_ref().map(|error| error.kind.clone());
        let (status, attempts, elapsed) = match result {
            Ok(response) => (
                Some(response.status()),
                response.attempts(),
                response.elapsed(),
            ),
            Err(error) => (error.status(), error.attempts(), error.elapsed()),
        };
        // User info (`https://TOKEN@host/`) is a secret: never written.
        let shown = Request::get(url).redacted_url().into_owned();
        let line = Line {
            // The URL's place in the whole list, so shards' outputs merge.
            index,
            url: &shown,
            ok: error.is_none(),
            status,
            attempts,
            elapsed_ms: (elapsed.as_secs_f64() * 1e5).round() / 100.0,
            error,
            file,
        };
        let written = Ready::new(&line, body.filter(|_| line.ok), url, failure)
            .and_then(|ready| self.output.write(position, ready));
        if let Err(error) = written {
            self.fail(format!("cannot write the results: {error}"));
        }
    }

    /// Stops the run after an output error: nothing more can be written.
    fn fail(&mut self, message: String) {
        if self.write_error.is_none() {
            self.write_error = Some(message);
        }
        self.cancel.cancel();
    }
}
