//! The documentation, run: every command in README.md and docs/ (their
//! ledger and three scenarios), and the README's `scripts/demo` end to
//! end. Needs everything: `scripts/setup`'s tools and the workspace's
//! binaries (`cargo test --workspace` builds them). `cargo test --test docs`.

mod commands;
mod demo;
