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
    /// Render and seal Environment folders offline (previews in pull requests).
    Render(cli::render::Args),
    /// Check a side-repo folder or repository: every Secret sealed and decryptable.
    Verify(cli::verify::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
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
        Command::Render(args) => cli::render::run(args),
        Command::Verify(args) => cli::verify::run(args),
    }
}
