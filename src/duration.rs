//! Durations as people write them in flags and variables: `30s`, `5m`,
//! `24h`, `1d`, `250ms`, or plain seconds (the `quayside run` flags, and
//! the benchmark's `--timeout`).

use std::time::Duration;

/// `30s`, `5m`, `24h`, `1d`, `250ms`, or plain seconds.
pub fn parse(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30s, 5m or 24h"))?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        "d" => Duration::from_secs(n * 86400),
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?}; use ms, s, m, h or d"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn units_and_plain_seconds() {
        assert_eq!(super::parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(super::parse("30"), Ok(Duration::from_secs(30)));
        assert_eq!(super::parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(super::parse("1d"), Ok(Duration::from_secs(86400)));
        assert!(super::parse("5 weeks").is_err());
        assert!(super::parse("m").is_err());
    }
}
