//! Figures about the current process (peak memory, CPU time) for the
//! examples that report them, read from `/proc/self`.

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

/// CPU time (user + system, all threads) this process has used, in
/// seconds, at the kernel's clock-tick resolution (10 ms); 0 where
/// `/proc/self/stat` cannot be read.
#[allow(dead_code)] // not every example reports it
pub(crate) fn cpu_seconds() -> f64 {
    const TICKS_PER_SECOND: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: f64 = after_name
        .split_whitespace()
        .skip(11) // utime and stime are fields 14 and 15
        .take(2)
        .filter_map(|field| field.parse::<f64>().ok())
        .sum();
    ticks / TICKS_PER_SECOND
}
