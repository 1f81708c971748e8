//! Subcommands of the `quayside` binary, one module each.

pub mod configuration;
pub mod connect;
pub mod doctor;
pub mod render;
pub mod rotate;
pub mod run;
pub mod status;
pub mod verify;
pub mod version;
