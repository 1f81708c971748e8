//! CPU time of a process from Linux `/proc/<pid>/stat`, for the benchmarks.

use anyhow::Context as _;

/// Clock ticks per second in `/proc` times: USER_HZ, 100 on every Linux
/// architecture quayside targets (a kernel constant, not the tick rate).
const USER_HZ: f64 = 100.0;

/// User + system CPU seconds of process `pid` (a number, or `self`).
pub fn cpu_seconds(pid: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name, in parentheses, may hold spaces: count after it.
    let after = stat.rsplit_once(')').context("malformed /proc stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `after` starts at field 3.
    let utime: f64 = fields.get(11).context("utime")?.parse()?;
    let stime: f64 = fields.get(12).context("stime")?.parse()?;
    Ok((utime + stime) / USER_HZ)
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_has_used_some_cpu_and_a_missing_one_is_an_error() {
        let spent = super::cpu_seconds("self").unwrap();
        assert!(spent >= 0.0);
        assert!(super::cpu_seconds("0").is_err());
    }
}
