//! The command line: what it accepts and how it maps to the library.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

const EXAMPLES: &str = "\
Examples:
  Fetch a few URLs, one JSON line each on standard output:
    parfetch https://cdn.example/a.json https://cdn.example/b.json
  Fetch a list (one URL per line; '#' comments), 64 at a time, into a file:
    parfetch -i urls.txt -c 64 -o results.jsonl
  Mirror the documents into a directory, at most 50 requests/s per host:
    parfetch -i urls.txt --out-dir mirror/ --rate 50
  Split one list across 4 jobs (this is job 0), in input order:
    parfetch -i urls.txt --shard 0/4 --ordered > part-0.jsonl
  Cache responses, then read them back without the network:
    parfetch -i urls.txt --cache-dir ~/.cache/parfetch
    parfetch -i urls.txt --cache-dir ~/.cache/parfetch --offline
  Behind a company proxy, trusting its CA:
    parfetch -i urls.txt --proxy http://proxy.corp:3128 --cacert corp-ca.pem
  Give up after 10 minutes, and keep figures for a script:
    parfetch -i urls.txt --deadline 10m --summary-json summary.json
  Shell completions:
    parfetch completions bash > ~/.local/share/bash-completion/completions/parfetch
    (also zsh, fish, elvish, powershell)

Output: one JSON line per URL, in completion order (--ordered: input order):
  {\"index\",\"url\",\"ok\",\"status\",\"attempts\",\"elapsed_ms\",\"error\",\"body\"}
  the body is the JSON as the server sent it, on one line.
Progress and the summary go to standard error (a bar with an ETA when the
number of URLs is known); NO_COLOR turns colour off.
Proxies: http_proxy, HTTPS_PROXY, ALL_PROXY and NO_PROXY are read as curl
reads them, unless --proxy or --no-proxy says otherwise. Certificates are
checked against Mozilla's roots and the machine's store (--no-system-roots:
not the machine's store), plus SSL_CERT_FILE / SSL_CERT_DIR and --cacert.
Exit status: 0 all succeeded, 2 some failed, 1 usage or I/O error, 130 interrupted.";

/// Fetch many JSON documents over HTTP in parallel, as JSON Lines.
#[derive(Debug, Parser)]
#[allow(clippy::struct_excessive_bools)] // each is one flag
#[command(name = "parfetch", version, after_help = EXAMPLES)]
pub(crate) struct Args {
    /// URLs to fetch; without any, URLs are read from --input or standard input
    pub(crate) urls: Vec<String>,

    /// Read URLs from FILE ('-' for standard input), one per line; blank
    /// lines and lines starting with '#' are skipped
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    pub(crate) input: Option<PathBuf>,

    /// Requests in flight at once
    #[arg(short = 'c', long, value_name = "N", default_value_t = 20)]
    pub(crate) concurrency: usize,

    /// How long one attempt may take: 30, 2.5, 500ms, 1.5s, 2m [default: 30s]
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub(crate) timeout: Option<Duration>,

    /// Retries of a failed attempt, for failures worth retrying [default: 3]
    #[arg(long, value_name = "N")]
    pub(crate) retries: Option<u32>,

    /// At most this many requests per second to any one host
    #[arg(long, value_name = "PER_SECOND")]
    pub(crate) rate: Option<u32>,

    /// A header for every request, as 'Name: value' (repeatable)
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub(crate) headers: Vec<String>,

    /// After how long unfinished requests end with DeadlineExceeded: 90, 1.5m, 2h
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub(crate) deadline: Option<Duration>,

    /// Take only input lines whose index modulo N is K (split one list across N jobs)
    #[arg(long, value_name = "K/N", value_parser = shard)]
    pub(crate) shard: Option<Shard>,

    /// Cache responses in DIR (HTTP caching rules; see the library docs)
    #[arg(long, value_name = "DIR")]
    pub(crate) cache_dir: Option<PathBuf>,

    /// Answer from the cache only, never touching the network (needs --cache-dir)
    #[arg(long)]
    pub(crate) offline: bool,

    /// Write the JSON lines to FILE instead of standard output
    #[arg(short = 'o', long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,

    /// Write each body to a file in DIR (named safely from its URL); the
    /// JSON lines then name the file instead of holding the body
    #[arg(long, value_name = "DIR")]
    pub(crate) out_dir: Option<PathBuf>,

    /// Write the JSON lines in input order instead of completion order
    #[arg(long)]
    pub(crate) ordered: bool,

    /// No progress bar and no summary on standard error
    #[arg(short, long)]
    pub(crate) quiet: bool,

    /// Also write the summary's figures to FILE, as JSON (even with --quiet)
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
    #[arg(long)]
    pub(crate) danger_accept_invalid_certs: bool,
}

/// Every `n`th line, starting at line `k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shard {
    pub(crate) k: usize,
    pub(crate) n: usize,
}

/// A duration, as `PARFETCH_TIMEOUT` takes it (one parser for both).
fn duration(text: &str) -> Result<Duration, String> {
    parfetch::parse_duration(text)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            format!("{text:?} is not a duration above zero: say 30, 2.5, 500ms, 1.5s, 2m or 1h")
        })
}

fn shard(text: &str) -> Result<Shard, String> {
    let (k, n) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not of the form K/N, such as 0/4"))?;
    let (k, n) = (k.trim().parse::<usize>(), n.trim().parse::<usize>());
    match (k, n) {
        (Ok(k), Ok(n)) if n > 0 && k < n => Ok(Shard { k, n }),
        _ => Err(format!(
            "{text:?}: K and N must be whole numbers with 0 <= K < N"
        )),
    }
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
    fn shards() {
        assert_eq!(shard("0/4"), Ok(Shard { k: 0, n: 4 }));
        assert_eq!(shard("3/4"), Ok(Shard { k: 3, n: 4 }));
        assert!(shard("4/4").is_err());
        assert!(shard("1/0").is_err());
        assert!(shard("x").is_err());
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
