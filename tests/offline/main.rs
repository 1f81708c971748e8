//! Tests that need no server and no tool from `scripts/setup`: the sealed
//! format, golden rendering, generated files, the docs' examples, and the
//! Quay client and emulator in-process over real HTTP. The fastest binary:
//! `cargo test --test offline`.

mod command_line;
mod configuration_drift;
mod controller_shutdown;
mod crd_drift;
mod docs_examples;
mod quay_client;
mod quay_emulator;
mod quay_recorded;
mod quay_replay;
mod quay_tls;
mod release;
mod render_golden;
mod render_safety;
mod seal_errors;
mod seal_verify;
