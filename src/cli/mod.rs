//! Subcommands of the `quayside` binary, one module each.

pub mod render;
pub mod run;
pub mod verify;
