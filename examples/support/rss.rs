//! Peak memory of the current process, for the examples that report it.

/// Peak resident set size (VmHWM) of this process, in MB; 0 where
/// `/proc/self/status` cannot be read.
pub(crate) fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kilobytes = status
        .lines()
        .find(|line| line.starts_with("VmHWM"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .unwrap_or(0.0);
    kilobytes / 1024.0
}
