//! quayside render: render and seal Environment folders offline.

/// Arguments (to be filled in).
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
