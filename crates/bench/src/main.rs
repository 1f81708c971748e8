//! `quayside-bench`: the benchmarks, printing their numbers
//! (docs/benchmarks.md). A binary of its own so the controller image ships
//! none of it.

mod apiserver;
mod controller;
mod procfs;
mod seal;
mod targets;
mod tenancy;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "quayside-bench",
    version,
    about = "Run quayside's benchmarks and print their numbers"
)]
struct Cli {
    /// Check the arguments and exit 0 without doing anything. Hidden: it
    /// lets tests/docs prove that documented commands too long to run in
    /// CI (full-size benchmarks) still parse.
    #[arg(long, global = true, hide = true)]
    dry_parse: bool,
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Seal+render+commit throughput next to `sops --encrypt` per file.
    Seal(seal::Args),
    /// The controller at scale: no-op heartbeat, rotation, provisioning, memory, start-up.
    Controller(controller::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.dry_parse {
        return Ok(());
    }
    match cli.bench {
        Bench::Seal(args) => seal::run(args),
        Bench::Controller(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(controller::run(args)),
    }
}
