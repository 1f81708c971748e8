//! quayside quay-emulator: serve the Quay API emulator.

/// Arguments (to be filled in).
#[derive(clap::Args, Debug)]
pub struct Args {}

pub async fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
