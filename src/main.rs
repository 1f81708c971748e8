//! The `quayside` command: the controller and its tools. Installed as
//! `kubectl-quayside` it is a kubectl plugin (`kubectl quayside status`),
//! told apart by the name it was started as.

mod cli;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "quayside",
    version = long_version(),
    about = "Quay image repositories and pull credentials for every Environment, delivered through GitOps"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

fn long_version() -> &'static str {
    concat!(
        env!("CARGO_PKG_VERSION"),
        " (commit ",
        env!("QUAYSIDE_GIT_COMMIT"),
        ")"
    )
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller.
    Run(Box<cli::run::Args>),
    /// Show a workspace at a glance: each Component and Environment, the
    /// credentials generation each Environment holds, Ready and why.
    Status(cli::status::Args),
    /// Rotate a Component's robot tokens now (sets quayside.dev/rotate).
    Rotate(cli::rotate::Args),
    /// Check a set-up with harmless calls: age key, Quay token, side
    /// repository, CRDs, RBAC. Takes `run`'s flags; exit status 1 on a failure.
    Doctor(Box<cli::doctor::Args>),
    /// Print the version and the git commit it was built from.
    Version,
    /// Print the CustomResourceDefinitions as YAML (or, with --reference, as Markdown).
    Crd {
        /// Print the field reference in Markdown instead (docs/crd-reference.md).
        #[arg(long)]
        reference: bool,
    },
    /// Print docs/configuration.md: every `quayside run` flag, its variable and default.
    Configuration,
    /// Render and seal Environment folders offline (previews in pull requests).
    Render(cli::render::Args),
    /// Check a side-repo folder or repository: every Secret sealed and decryptable.
    Verify(cli::verify::Args),
}

/// Whether this process was started as the kubectl plugin.
fn as_kubectl_plugin() -> bool {
    std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .is_some_and(|name| name == "kubectl-quayside")
}

fn main() -> anyhow::Result<()> {
    let mut command = Cli::command();
    if as_kubectl_plugin() {
        // Usage and errors then read `kubectl quayside status`.
        command = command.bin_name("kubectl quayside");
    }
    let cli = Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit());
    if matches!(cli.command, Command::Run(_)) {
        // Before the runtime's threads take their malloc arenas.
        quayside::memory::configure();
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
        Command::Configuration => {
            print!("{}", cli::configuration::markdown());
            Ok(())
        }
        Command::Run(args) => rt.block_on(cli::run::run(*args)),
        Command::Status(args) => rt.block_on(cli::status::run(args)),
        Command::Rotate(args) => rt.block_on(cli::rotate::run(args)),
        Command::Doctor(args) => {
            let healthy = rt.block_on(cli::doctor::run(*args))?;
            std::process::exit(if healthy { 0 } else { 1 })
        }
        Command::Version => cli::version::run(),
        Command::Render(args) => cli::render::run(args),
        Command::Verify(args) => cli::verify::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definitions_are_consistent() {
        // clap's own checks (unique names and groups), which otherwise
        // fire only when a subcommand is first used.
        Cli::command().debug_assert();
    }
}
