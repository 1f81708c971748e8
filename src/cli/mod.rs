//! Subcommands of the `quayside` binary, one module each.

pub mod bench;
pub mod bench_controller;
pub mod emulator;
mod procfs;
pub mod render;
pub mod run;
pub mod verify;
