//! Shared test support: real servers on loopback (control plane, git) and
//! the paths of the external tools the set-up script installs.
#![allow(dead_code)]

pub mod cluster;
pub mod git_server;
pub mod harness;
pub mod registry;
pub mod tools;
pub mod wait;
