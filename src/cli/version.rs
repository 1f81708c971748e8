//! quayside version: the release and the git commit it was built from.

/// The version line: `quayside <version> (commit <sha>)`.
pub fn line() -> String {
    format!(
        "quayside {} (commit {})",
        env!("CARGO_PKG_VERSION"),
        env!("QUAYSIDE_GIT_COMMIT")
    )
}

pub fn run() -> anyhow::Result<()> {
    println!("{}", line());
    Ok(())
}
