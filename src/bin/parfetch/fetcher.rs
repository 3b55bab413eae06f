//! The fetcher the command runs: the library's `PARFETCH_*` variables
//! first (`FetcherBuilder::from_env`, so the command and a program using
//! the library read them alike), then the flags over them.

use std::path::Path;

use parfetch::Fetcher;

use crate::args::{self, Args};

/// Builds the fetcher `args` and the environment ask for.
///
/// # Errors
///
/// A message: a bad header, an unreadable certificate file, a setting the
/// library refuses (a bad `PARFETCH_*` variable among them, named).
pub(crate) fn build(args: &Args) -> Result<Fetcher, String> {
    let mut builder = Fetcher::builder().from_env();
    match args.concurrency {
        Some(args::Concurrency::Fixed(concurrency)) => builder = builder.concurrency(concurrency),
        Some(args::Concurrency::Auto) => {
            builder = builder
                .concurrency(args::AUTO_CEILING)
                .adaptive_concurrency(true);
        }
        None => {}
    }
    if let Some(timeout) = args.timeout {
        builder = builder.timeout(timeout);
    }
    if let Some(timeout) = args.connect_timeout {
        builder = builder.connect_timeout(timeout);
    }
    if let Some(retries) = args.retry {
        builder = builder.max_retries(retries);
    }
    if let Some(user_agent) = &args.user_agent {
        builder = builder.user_agent(user_agent);
    }
    if let Some(rate) = args.rate {
        builder = builder.rate_limit(rate);
    }
    if let Some(requests) = args.max_per_host {
        builder = builder.max_per_host(requests);
    }
    if let Some(dir) = &args.cache_dir {
        builder = builder.cache_dir(dir);
    }
    // A switch can only turn offline mode on: without it,
    // PARFETCH_OFFLINE decides.
    if args.offline {
        builder = builder.offline(true);
    }
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
    // The library warns when checks are off; the logger shows that
    // warning even with -q (`logger.rs`).
    builder = builder
        .cookie_store(args.cookies)
        .danger_accept_invalid_certificates(args.danger_accept_invalid_certs);
    builder.build().map_err(|error| error.to_string())
}

/// The contents of `path`, given with `flag`.
fn read(path: &Path, flag: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|error| format!("{flag} {}: {error}", path.display()))
}
