//! `parfetch`: fetch many JSON documents over HTTP in parallel, from a
//! shell or a job scheduler, as JSON Lines. The only part of the crate that
//! uses clap; everything it does goes through the library.

mod args;
mod count;
// The duration syntax of PARFETCH_TIMEOUT, from the library's own source:
// one parser for both, and none in the library's API.
#[path = "../../config/duration.rs"]
mod duration;
mod failed;
mod fetcher;
mod help;
mod input;
mod logger;
mod outdir;
mod output;
mod paths;
mod places;
mod progress;
mod resume;
mod run;
mod scheduler;
mod shard;
mod sink;
mod summary;

use std::io;
use std::process::ExitCode;
use std::sync::{Mutex, MutexGuard, PoisonError};

use clap::{CommandFactory, Parser};

use crate::args::Args;

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
    logger::init(args.verbose);
    match run::run(&args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("parfetch: {message}");
            ExitCode::from(1)
        }
    }
}

/// Locks `mutex`, whole even if a thread panicked holding it: what it
/// guards (counts, a list being written) is never left half-changed.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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
