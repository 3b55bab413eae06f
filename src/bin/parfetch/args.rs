//! The command line: what it accepts. Flags read like curl's where curl
//! has one (`--retry`, `--connect-timeout`, `-A`, `-k`, `-v`); each setting
//! the library reads from a `PARFETCH_*` variable can be given by one, and
//! the flag wins (`fetcher.rs`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser};

use crate::help::AFTER_HELP;
use crate::shard::{By, Spec};

/// Fetch many JSON documents over HTTP in parallel, as JSON Lines.
#[derive(Debug, Parser)]
#[allow(clippy::struct_excessive_bools)] // each is one flag
#[command(name = "parfetch", version, after_help = AFTER_HELP)]
pub(crate) struct Args {
    /// URLs to fetch; without any, URLs are read from --input or standard input
    pub(crate) urls: Vec<String>,

    /// Read URLs from FILE ('-' for standard input), one per line; blank
    /// lines and lines starting with '#' are skipped
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    pub(crate) input: Option<PathBuf>,

    /// Requests in flight at once, or `auto`: each host's limit starts at 32
    /// and finds what the host takes, up to 256 [default: 20, or
    /// PARFETCH_CONCURRENCY]. Either way a host that pushes back (429, 503,
    /// timeouts) gets fewer, and more again gradually.
    #[arg(short = 'c', long, value_name = "N|auto", value_parser = concurrency)]
    pub(crate) concurrency: Option<Concurrency>,

    /// How long one attempt may take: 30, 2.5, 500ms, 1.5s, 2m [default:
    /// 30s, or PARFETCH_TIMEOUT]
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub(crate) timeout: Option<Duration>,

    /// How long setting up a connection (TCP and TLS) may take, within
    /// --timeout [default: 10s, or PARFETCH_CONNECT_TIMEOUT]
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub(crate) connect_timeout: Option<Duration>,

    /// Retries of a failed attempt, for failures worth retrying [default:
    /// 3, or PARFETCH_RETRIES]
    #[arg(long = "retry", visible_alias = "retries", value_name = "N")]
    pub(crate) retry: Option<u32>,

    /// The User-Agent header [default: parfetch/VERSION, or PARFETCH_USER_AGENT]
    #[arg(short = 'A', long, value_name = "NAME")]
    pub(crate) user_agent: Option<String>,

    /// At most this many requests per second to any one host
    #[arg(long, value_name = "PER_SECOND")]
    pub(crate) rate: Option<u32>,

    /// At most this many requests in flight to any one host, whatever -c says
    #[arg(long, value_name = "N")]
    pub(crate) max_per_host: Option<usize>,

    /// A header for every request, as 'Name: value' (repeatable)
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub(crate) headers: Vec<String>,

    /// After how long unfinished requests end with DeadlineExceeded: 90, 1.5m, 2h
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub(crate) deadline: Option<Duration>,

    /// Fetch only part K of N of the list (K from 0), to split one list
    /// across N jobs; 'auto' takes K and N from the job scheduler (see
    /// below)
    #[arg(long, value_name = "K/N|auto", value_parser = crate::shard::spec)]
    pub(crate) shard: Option<Spec>,

    /// With --shard auto: how many parts, where the scheduler does not say
    /// (a Kubernetes Indexed Job: its completions) [default: PARFETCH_SHARDS]
    #[arg(long, value_name = "N", requires = "shard", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) shards: Option<u64>,

    /// How --shard deals out URLs: by line number; by a hash of the URL
    /// (reordering the list moves nothing); by a hash of its host (every
    /// URL of a host in one part, so --rate and --max-per-host hold across
    /// all jobs)
    #[arg(long, value_name = "HOW", value_enum, default_value_t = By::Line, requires = "shard")]
    pub(crate) shard_by: By,

    /// Cache responses in DIR (HTTP caching rules; see the library docs)
    /// [default: PARFETCH_CACHE_DIR]
    #[arg(long, value_name = "DIR")]
    pub(crate) cache_dir: Option<PathBuf>,

    /// Answer from the cache only, never touching the network (needs
    /// --cache-dir) [default: PARFETCH_OFFLINE]
    #[arg(long)]
    pub(crate) offline: bool,

    /// Write the JSON lines to FILE instead of standard output
    #[arg(short = 'o', long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,

    /// Carry on with the -o FILE of an earlier run (one that was killed,
    /// say): skip the URLs it holds, append the others; a torn last line
    /// is cut off
    #[arg(long, requires = "output")]
    pub(crate) resume: bool,

    /// Write the URLs that failed to FILE, one per line (as -i takes them)
    #[arg(long, value_name = "FILE")]
    pub(crate) failed: Option<PathBuf>,

    /// Write each body to a file in DIR, named from its URL and a 64-bit
    /// hash of it; the JSON lines then name the file instead of holding
    /// the body
    #[arg(long, value_name = "DIR")]
    pub(crate) out_dir: Option<PathBuf>,

    /// Write the JSON lines in input order instead of completion order
    #[arg(long)]
    pub(crate) ordered: bool,

    /// No progress bar and no summary on standard error
    #[arg(short, long)]
    pub(crate) quiet: bool,

    /// Show the library's warnings as the run goes (retries, circuit
    /// breakers); -vv: its debug lines too. Secrets are not shown
    #[arg(short, long, action = ArgAction::Count)]
    pub(crate) verbose: u8,

    /// Also write the summary's figures to FILE, as JSON (even with
    /// --quiet), when the run ends: there and "complete" once the part is
    /// done
    #[arg(long, value_name = "FILE")]
    pub(crate) summary_json: Option<PathBuf>,

    /// Send every request through the proxy at URL,
    /// http://[user:password@]host:port (default: the environment's)
    #[arg(long, value_name = "URL", conflicts_with = "no_proxy")]
    pub(crate) proxy: Option<String>,

    /// Send every request direct, whatever the environment says
    #[arg(long)]
    pub(crate) no_proxy: bool,

    /// Also trust the CA certificates in FILE (PEM; repeatable)
    #[arg(long, value_name = "FILE")]
    pub(crate) cacert: Vec<PathBuf>,

    /// Trust Mozilla's roots only, not the machine's certificate store
    #[arg(long)]
    pub(crate) no_system_roots: bool,

    /// Show the client certificate in FILE (PEM) to servers that ask for
    /// one; FILE holds its key too, unless --key names another
    #[arg(long, value_name = "FILE")]
    pub(crate) cert: Option<PathBuf>,

    /// The private key of --cert (PEM)
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub(crate) key: Option<PathBuf>,

    /// Keep the cookies servers set during this run, and send them back
    /// where they belong
    #[arg(long)]
    pub(crate) cookies: bool,

    /// DANGER: do not check TLS certificates at all; anyone on the way can
    /// then read and change what is fetched
    #[arg(short = 'k', long, visible_alias = "insecure")]
    pub(crate) danger_accept_invalid_certs: bool,
}

/// How many requests may be in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Concurrency {
    /// This many, at most, per host too.
    Fixed(usize),
    /// Each host's limit found from its answers, up to [`AUTO_CEILING`].
    Auto,
}

/// The most requests in flight with `-c auto`: a ceiling, not a target.
pub(crate) const AUTO_CEILING: usize = 256;

fn concurrency(text: &str) -> Result<Concurrency, String> {
    if text.trim().eq_ignore_ascii_case("auto") {
        return Ok(Concurrency::Auto);
    }
    match text.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(Concurrency::Fixed(n)),
        _ => Err(format!(
            "{text:?} is not a number of requests above zero, nor `auto`"
        )),
    }
}

/// A duration, as `PARFETCH_TIMEOUT` takes it (one parser for both).
fn duration(text: &str) -> Result<Duration, String> {
    crate::duration::parse_duration(text)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            format!("{text:?} is not a duration above zero: say 30, 2.5, 500ms, 1.5s, 2m or 1h")
        })
}

/// Splits `Name: value`.
pub(crate) fn header(text: &str) -> Result<(&str, &str), String> {
    match text.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.trim(), value.trim())),
        _ => Err(format!("invalid header {text:?}: expected 'Name: value'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrencies() {
        assert_eq!(concurrency("32"), Ok(Concurrency::Fixed(32)));
        assert_eq!(concurrency("auto"), Ok(Concurrency::Auto));
        assert_eq!(concurrency("AUTO"), Ok(Concurrency::Auto));
        assert!(concurrency("0").is_err());
        assert!(concurrency("lots").is_err());
    }

    #[test]
    fn headers_and_seconds() {
        assert_eq!(
            header("Authorization: Bearer a:b"),
            Ok(("Authorization", "Bearer a:b"))
        );
        assert!(header("no colon").is_err());
        assert!(header(": empty name").is_err());
        assert_eq!(duration("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert!(duration("0").is_err());
        assert!(duration("0ms").is_err());
        assert!(duration("soon").is_err());
    }
}
