//! One run: which URLs (the list, cut to this process's shard, less what
//! `--resume` finds done), the batch, and where each result goes. The
//! parts each live in a file of their own; this one puts them in order.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use parfetch::{CancelToken, Progress};

use crate::args::Args;
use crate::failed::FailedList;
use crate::outdir::OutDir;
use crate::output::Output;
use crate::places::Places;
use crate::resume::{Done, Skipper};
use crate::scheduler::{self, Scheduler};
use crate::shard::{Shard, Spec};
use crate::sink::Sink;
use crate::summary::{Part, ShardFigures};
use crate::{fetcher, input, lock, logger, paths, progress, resume, summary};

/// Runs the command; `Err` is a message for a usage or I/O error (exit 1).
pub(crate) fn run(args: &Args) -> Result<ExitCode, String> {
    let var = |name: &str| std::env::var(name).ok();
    let (shard, shard_figures, scheduler) = part(args, &var)?;
    paths::distinct(args)?;
    let fetcher = fetcher::build(args)?;
    logger::start_run(args.verbose);
    let source = input::open(args.urls.clone(), args.input.as_deref()).map_err(|error| {
        let path = args.input.as_deref().unwrap_or("-".as_ref()).display();
        format!("cannot read {path}: {error}")
    })?;
    let out_dir = match &args.out_dir {
        Some(dir) => {
            Some(Arc::new(Mutex::new(OutDir::create(dir).map_err(|e| {
                format!("cannot create {}: {e}", dir.display())
            })?)))
        }
        None => None,
    };
    let failed = match &args.failed {
        Some(path) => Some(Arc::new(Mutex::new(
            FailedList::create(path)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        ))),
        None => None,
    };

    let Opened { writer, file, done } = open_output(args)?;
    // Made once the output is open: a run that cannot start leaves the
    // summary of the last one that ended.
    let summary_file = match &args.summary_json {
        Some(path) => Some((
            path,
            summary::prepare(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        )),
        None => None,
    };
    let already = done.as_ref().map_or(0, |done| done.len() as u64);
    let skipper = done.map(|done| {
        Arc::new(Mutex::new(Skipper {
            done,
            failed: failed.clone(),
            out_dir: out_dir.clone(),
        }))
    });

    // Ctrl-C, SIGTERM, SIGHUP: no new requests; what finished is written,
    // then the summary.
    let cancel = CancelToken::new();
    let on_interrupt = cancel.clone();
    ctrlc::set_handler(move || on_interrupt.cancel())
        .map_err(|e| format!("cannot handle Ctrl-C: {e}"))?;
    let still_going = cancel.clone();
    let lines = source
        .lines
        .take_while(move |_| !still_going.is_cancelled());
    let skipping = skipper.clone();
    let numbered = input::urls(lines)
        .filter(move |(index, url)| shard.keeps(*index, url))
        .filter(move |(index, url)| {
            !skipping
                .as_ref()
                .is_some_and(|skipper| lock(skipper).skips(*index, url))
        });
    let places = Places::default();
    let urls = places.track(numbered);

    let color = progress::color_allowed();
    let total = if progress::shown(args.quiet) {
        count(args, shard)?.map(|count| count.saturating_sub(already))
    } else {
        None
    };
    let line = progress::Line::new(total, args.quiet, color);
    let mut batch = fetcher
        .batch(urls)
        .cancel_token(cancel.clone())
        .on_progress(|progress: &Progress| line.update(progress));
    if let Some(total) = total {
        batch = batch.total(total);
    }
    if let Some(deadline) = args.deadline {
        batch = batch.deadline(deadline);
    }
    let mut sink = Sink {
        output: Output::new(writer, file, args.ordered, failed.clone()),
        places,
        out_dir,
        resume: args.resume,
        write_error: None,
        cancel: &cancel,
    };
    let stats = if sink.out_dir.is_some() {
        let mut responses = batch.iter_bytes();
        for (position, result) in &mut responses {
            sink.save_and_emit(position, &result);
        }
        responses.stats()
    } else {
        // Bodies as the servers sent them (on one line): identical from
        // one run to the next, and no time spent re-serialising.
        let mut responses = batch.iter::<parfetch::RawJson>();
        for (position, result) in &mut responses {
            // The body moves into its line, uncopied.
            let mut body = None;
            let result = result.map(|response| response.map(|raw| body = Some(raw.into_string())));
            let (index, url) = sink.places.take(position);
            sink.emit(position, (index, &url), &result, body, None, None);
        }
        responses.stats()
    };
    line.finish();
    let Sink {
        mut output,
        write_error,
        ..
    } = sink;
    let finished = output.finish();
    // The error that stopped the run, once: flushing after it fails alike.
    if let Some(message) = write_error {
        return Err(message);
    }
    finished.map_err(|e| format!("cannot write the results: {e}"))?;
    if let (Some(list), Some(path)) = (&failed, &args.failed) {
        lock(list)
            .finish()
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if let Some(error) = source
        .read_error
        .lock()
        .ok()
        .and_then(|mut slot| slot.take())
    {
        return Err(format!("reading the URLs failed: {error}"));
    }
    let interrupted = cancel.is_cancelled();
    let mut part = Part {
        shard: shard_figures,
        attempt: scheduler::attempt(&var, scheduler),
        resumed: args.resume.then(|| args.output.clone()).flatten(),
        ..Part::default()
    };
    if let Some(skipper) = &skipper {
        let skipper = lock(skipper);
        part.skipped = skipper.done.skipped;
        part.skipped_failed = skipper.done.skipped_failed;
        let unmatched = skipper.done.unmatched();
        if unmatched > 0 && !interrupted {
            eprintln!(
                "parfetch: warning: {unmatched} lines of {} match no URL of this part of the \
                 list (by index and URL): the list, --shard or --shard-by changed since they \
                 were written; they are kept, and the part's URLs fetched",
                part.resumed.as_deref().unwrap_or(Path::new("-")).display()
            );
        }
    }
    let figures = output
        .summary
        .figures(&stats, &fetcher.stats(), part, interrupted);
    if !args.quiet {
        eprintln!("{}", figures.render(color));
    }
    if let Some((path, temporary)) = summary_file {
        figures
            .write(path, temporary)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(if interrupted {
        ExitCode::from(130)
    } else if figures.any_failed() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Where the lines go: standard output, a new file, or (`--resume`) the
/// file an earlier run left, mended; with the file to put on disk at the
/// end, and what it already holds.
fn open_output(args: &Args) -> Result<Opened, String> {
    let (writer, file, done): (Box<dyn Write>, _, _) = match &args.output {
        Some(path) if args.resume => {
            let resumed = resume::open(path)?;
            if !args.quiet {
                note_mending(path, resumed.cut, resumed.taken_out);
            }
            let sync = resumed
                .file
                .try_clone()
                .map_err(|e| format!("{}: {e}", path.display()))?;
            // Unbuffered: each line reaches the file in one write, at once.
            (Box::new(resumed.file), Some(sync), Some(resumed.done))
        }
        Some(path) => {
            let file =
                File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            let sync = file
                .try_clone()
                .map_err(|e| format!("{}: {e}", path.display()))?;
            (Box::new(BufWriter::new(file)), Some(sync), None)
        }
        None => (Box::new(BufWriter::new(io::stdout())), None, None),
    };
    Ok(Opened { writer, file, done })
}

/// The output, opened.
struct Opened {
    writer: Box<dyn Write>,
    /// The output file, to put on disk at the end.
    file: Option<File>,
    /// What `--resume` found in it.
    done: Option<Done>,
}

/// This process's shard, as the summary says it, and the scheduler that
/// gave it.
fn part(
    args: &Args,
    var: &impl Fn(&str) -> Option<String>,
) -> Result<(Shard, Option<ShardFigures>, Option<Scheduler>), String> {
    let by = args.shard_by;
    let (index, count, from, scheduler) = match args.shard {
        None => return Ok((Shard::ALL, None, None)),
        Some(Spec::Fixed { index, count }) => {
            if args.shards.is_some() {
                return Err(
                    "--shards goes with --shard auto: --shard K/N says the count itself".to_owned(),
                );
            }
            (index, count, None, None)
        }
        Some(Spec::Auto) => {
            let shards = args
                .shards
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
            let given = scheduler::assignment(var, shards)?;
            (
                given.index,
                given.count,
                Some(given.variable),
                Some(given.scheduler),
            )
        }
    };
    let figures = ShardFigures {
        index,
        count,
        by,
        from,
    };
    Ok((Shard { index, count, by }, Some(figures), scheduler))
}

/// How many URLs the run will see, when that can be known before it.
fn count(args: &Args, shard: Shard) -> Result<Option<u64>, String> {
    if !args.urls.is_empty() {
        let urls = input::urls(args.urls.iter().cloned());
        return Ok(Some(
            urls.filter(|(i, url)| shard.keeps(*i, url)).count() as u64
        ));
    }
    match &args.input {
        Some(path) => {
            input::count(path, shard).map_err(|e| format!("cannot read {}: {e}", path.display()))
        }
        None => Ok(None),
    }
}

/// Says what `--resume` mended in `path`.
fn note_mending(path: &Path, cut: u64, taken_out: u64) {
    if cut > 0 {
        eprintln!(
            "parfetch: {}: cut off a torn last line ({cut} bytes); its URL is fetched again",
            path.display()
        );
    }
    if taken_out > 0 {
        eprintln!(
            "parfetch: {}: took out {taken_out} lines of URLs an earlier run stopped before \
             finishing; they are fetched again",
            path.display()
        );
    }
}
