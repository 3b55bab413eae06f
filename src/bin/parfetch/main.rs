//! `parfetch`: fetch many JSON documents over HTTP in parallel, from a
//! shell or a job scheduler, as JSON Lines. The only part of the crate that
//! uses clap; everything it does goes through the library.

mod args;
mod count;
mod input;
mod output;
mod progress;
mod summary;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use parfetch::{CancelToken, Fetcher, Progress, Report};

use crate::args::Args;
use crate::output::{ErrorLine, Line, Output};
use crate::summary::Summary;

fn main() -> ExitCode {
    // `parfetch completions SHELL`: before the URLs are parsed, as a URL
    // cannot be called `completions`.
    // (`args_os`: an argument that is not UTF-8 is clap's to refuse.)
    let mut words = std::env::args_os().skip(1);
    if words.next().is_some_and(|word| word == "completions") {
        return completions(words.next().as_deref().and_then(std::ffi::OsStr::to_str));
    }
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(error) => {
            let _ = error.print();
            // --help and --version are not errors; usage errors exit 1.
            return if error.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(&args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("parfetch: {message}");
            ExitCode::from(1)
        }
    }
}

/// Writes the completion script for `shell` to standard output.
fn completions(shell: Option<&str>) -> ExitCode {
    use clap_complete::Shell;
    let shell = match shell {
        Some("bash") => Shell::Bash,
        Some("zsh") => Shell::Zsh,
        Some("fish") => Shell::Fish,
        Some("elvish") => Shell::Elvish,
        Some("powershell") => Shell::PowerShell,
        other => {
            let what = match other {
                None => "no shell given".to_owned(),
                Some(name) => format!("no completions for the shell '{name}'"),
            };
            eprintln!(
                "parfetch: {what}: say bash, zsh, fish, elvish or powershell, e.g. \
                 `parfetch completions bash > \
                 ~/.local/share/bash-completion/completions/parfetch`"
            );
            return ExitCode::from(1);
        }
    };
    clap_complete::generate(shell, &mut Args::command(), "parfetch", &mut io::stdout());
    ExitCode::SUCCESS
}

fn fetcher(args: &Args) -> Result<Fetcher, String> {
    let mut builder = Fetcher::builder().concurrency(args.concurrency);
    if let Some(timeout) = args.timeout {
        builder = builder.timeout(timeout);
    }
    if let Some(retries) = args.retries {
        builder = builder.max_retries(retries);
    }
    if let Some(rate) = args.rate {
        builder = builder.rate_limit(rate);
    }
    if let Some(dir) = &args.cache_dir {
        builder = builder.cache_dir(dir);
    }
    builder = builder.offline(args.offline);
    for header in &args.headers {
        let (name, value) = args::header(header)?;
        builder = builder.header(name, value);
    }
    if let Some(proxy) = &args.proxy {
        builder = builder.proxy(proxy);
    }
    if args.no_proxy {
        builder = builder.no_proxy();
    }
    // A command runs on a machine whose owner set up its trust store, as
    // curl and git take it; a library's program may run anywhere.
    builder = builder.system_roots(!args.no_system_roots);
    for path in &args.cacert {
        builder = builder.trust_root_certificates(read(path, "--cacert")?);
    }
    if let Some(path) = &args.cert {
        let mut pem = read(path, "--cert")?;
        if let Some(key) = &args.key {
            pem.push(b'\n');
            pem.extend(read(key, "--key")?);
        }
        builder = builder.client_certificate(pem);
    }
    builder = builder
        .cookie_store(args.cookies)
        .danger_accept_invalid_certificates(args.danger_accept_invalid_certs);
    if args.danger_accept_invalid_certs {
        // The library logs it; the command has no logger: said here.
        eprintln!(
            "parfetch: warning: TLS certificates are NOT checked \
             (--danger-accept-invalid-certs): anyone on the way can read and change what is fetched"
        );
    }
    builder.build().map_err(|error| error.to_string())
}

/// The contents of `path`, given with `flag`.
fn read(path: &std::path::Path, flag: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|error| format!("{flag} {}: {error}", path.display()))
}

fn run(args: &Args) -> Result<ExitCode, String> {
    let fetcher = fetcher(args)?;
    let source = input::open(args.urls.clone(), args.input.as_deref()).map_err(|error| {
        let path = args.input.as_deref().unwrap_or("-".as_ref()).display();
        format!("cannot read {path}: {error}")
    })?;
    if let Some(dir) = &args.out_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    // The summary's file is made now, so that a bad path is found before
    // the run, and it must be none of the run's other files.
    let summary_file = match &args.summary_json {
        Some(path) => {
            let others = [args.output.as_deref(), args.input.as_deref()];
            if others
                .into_iter()
                .flatten()
                .any(|other| same_file(path, other))
            {
                return Err(format!(
                    "--summary-json {} is also the input or the output: name another file",
                    path.display()
                ));
            }
            let file =
                File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Some((path, file))
        }
        None => None,
    };
    let writer: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(io::stdout())),
    };
    let output = Output::new(writer, args.ordered);

    // Ctrl-C: no new requests; what finished is written, then the summary.
    let cancel = CancelToken::new();
    let on_interrupt = cancel.clone();
    ctrlc::set_handler(move || on_interrupt.cancel())
        .map_err(|e| format!("cannot handle Ctrl-C: {e}"))?;
    let still_going = cancel.clone();
    let lines = source
        .lines
        .take_while(move |_| !still_going.is_cancelled());
    let (k, n) = args.shard.map_or((0, 1), |s| (s.k, s.n));
    let urls = input::urls(lines, args.shard).map(|(_, url)| url);

    // A file is counted first, so that the bar knows where it ends.
    let total = if args.urls.is_empty() {
        match &args.input {
            Some(path) => input::count(path, args.shard)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            None => None,
        }
    } else {
        let count = input::urls(args.urls.iter().cloned(), args.shard).count();
        Some(count as u64)
    };
    let color = progress::color_allowed();
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
        output,
        summary: Summary::default(),
        write_error: None,
        cancel: &cancel,
        shard: (k, n),
    };
    let stats = match &args.out_dir {
        Some(dir) => batch.for_each_report_bytes(|position, report| {
            let file = match &report.result {
                Ok(body) => match output::save(dir, report.request.url(), position, body) {
                    Ok(path) => Some(path.display().to_string()),
                    Err(error) => {
                        sink.fail(
                            &format!("cannot write into {}: {error}", dir.display()),
                            error,
                        );
                        return;
                    }
                },
                Err(_) => None,
            };
            sink.emit(position, &report, None, file);
        }),
        // Bodies as the servers sent them (on one line): identical from
        // one run to the next, and no time spent re-serialising.
        None => batch.for_each_report::<parfetch::RawJson>(|position, report| {
            let body = report.result.as_ref().ok().map(parfetch::RawJson::as_str);
            sink.emit(position, &report, body, None);
        }),
    };
    line.finish();
    let Sink {
        mut output,
        summary,
        write_error,
        ..
    } = sink;
    output
        .finish()
        .map_err(|e| format!("cannot write the results: {e}"))?;
    if let Some(error) = write_error {
        return Err(format!("cannot write the results: {error}"));
    }
    if let Some(error) = source
        .read_error
        .lock()
        .ok()
        .and_then(|mut slot| slot.take())
    {
        return Err(format!("reading the URLs failed: {error}"));
    }
    let figures = summary.figures(&stats, &fetcher.stats(), cancel.is_cancelled());
    if !args.quiet {
        eprintln!("{}", figures.render(color));
    }
    if let Some((path, mut file)) = summary_file {
        serde_json::to_writer_pretty(&mut file, &figures)
            .map_err(io::Error::from)
            .and_then(|()| file.write_all(b"\n"))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(if cancel.is_cancelled() {
        ExitCode::from(130)
    } else if summary.failed() > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Whether `a` and `b` name one file: once both exist, the same file
/// (through links too); else the same file name in the same directory.
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    #[cfg(unix)]
    if let (Ok(a), Ok(b)) = (std::fs::metadata(a), std::fs::metadata(b)) {
        use std::os::unix::fs::MetadataExt;
        return (a.dev(), a.ino()) == (b.dev(), b.ino());
    }
    #[cfg(not(unix))]
    if let (Ok(a), Ok(b)) = (a.canonicalize(), b.canonicalize()) {
        return a == b;
    }
    let resolved = |path: &std::path::Path| {
        let dir = path
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        Some(dir.canonicalize().ok()?.join(path.file_name()?))
    };
    match (resolved(a), resolved(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a == b,
    }
}

/// Turns reports into JSON lines and counts them.
struct Sink<'a> {
    output: Output,
    summary: Summary,
    write_error: Option<io::Error>,
    cancel: &'a CancelToken,
    /// `(k, n)`: the batch's `i`th URL is the list's `i * n + k`th.
    shard: (usize, usize),
}

impl Sink<'_> {
    fn emit<T>(
        &mut self,
        position: usize,
        report: &Report<T>,
        body: Option<&str>,
        file: Option<String>,
    ) {
        let (k, n) = self.shard;
        let error = report.result.as_ref().err();
        let line = Line {
            // The URL's place in the whole list, so shards' outputs merge.
            index: position * n + k,
            // User info (`https://TOKEN@host/`) is a secret: never written.
            url: &report.request.redacted_url(),
            ok: error.is_none(),
            status: report.status,
            attempts: report.attempts,
            elapsed_ms: (report.elapsed.as_secs_f64() * 1e5).round() / 100.0,
            error: error.map(ErrorLine::new),
            file,
        };
        self.summary.add(error.map(parfetch::Error::kind));
        if let Err(error) = self.output.write(position, &line, body) {
            self.fail(&format!("cannot write the results: {error}"), error);
        }
    }

    /// Stops the run after an output error: nothing more can be written.
    fn fail(&mut self, message: &str, error: io::Error) {
        if self.write_error.is_none() {
            eprintln!("parfetch: {message}");
            self.write_error = Some(error);
        }
        self.cancel.cancel();
    }
}
