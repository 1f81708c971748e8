//! The `quayside` command: the controller and its tools.

mod cli;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "quayside",
    version,
    about = "Quay image repositories and pull credentials for every Environment, delivered through GitOps"
)]
struct Cli {
    /// Check the arguments and exit 0 without doing anything. Hidden: it
    /// lets tests/docs_commands.rs prove that documented commands too long
    /// to run in CI (full-size benchmarks) still parse.
    #[arg(long, global = true, hide = true)]
    dry_parse: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller.
    Run(Box<cli::run::Args>),
    /// Print the CustomResourceDefinitions as YAML (or, with --reference, as Markdown).
    Crd {
        /// Print the field reference in Markdown instead (docs/crd-reference.md).
        #[arg(long)]
        reference: bool,
    },
    /// Run the Quay API emulator (for tests, the demo and benchmarks).
    QuayEmulator(cli::emulator::Args),
    /// Render and seal Environment folders offline (previews in pull requests).
    Render(cli::render::Args),
    /// Check a side-repo folder or repository: every Secret sealed and decryptable.
    Verify(cli::verify::Args),
    /// Run the benchmarks and print their numbers.
    Bench(cli::bench::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.dry_parse {
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Crd { reference } => {
            if reference {
                print!("{}", quayside::api::crd_reference_markdown());
            } else {
                print!("{}", quayside::api::crds_yaml());
            }
            Ok(())
        }
        Command::Run(args) => rt.block_on(cli::run::run(*args)),
        Command::QuayEmulator(args) => rt.block_on(cli::emulator::run(args)),
        Command::Render(args) => cli::render::run(args),
        Command::Verify(args) => cli::verify::run(args),
        Command::Bench(args) => rt.block_on(cli::bench::run(args)),
    }
}
