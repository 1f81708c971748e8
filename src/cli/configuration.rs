//! docs/configuration.md, generated from the clap definitions of
//! `quayside run` (`quayside configuration`), so the page cannot drift
//! from the flags: `tests/offline/configuration_drift.rs` fails when the
//! committed page is stale.

use clap::{Args as _, Command};

use super::run;

/// The page: every flag of `quayside run`, its variable, default and help.
pub fn markdown() -> String {
    let command = run::Args::augment_args(Command::new("run"));
    let mut out = String::from(
        "# Configuration\n\n\
         Generated from the flags of `quayside run` by `quayside configuration`; \
         `tests/offline/configuration_drift.rs` fails when it is stale.\n\n\
         Every flag is also an environment variable: the Deployment reads the \
         non-secret ones from the ConfigMap in `deploy/controller/config.yaml` and \
         mounts the files (Quay token, side-repo password, age key) from the Secret \
         `quayside-credentials`. A flag given on the command line wins over its \
         variable. Durations are written `30s`, `5m`, `24h` or `90d`; `quayside \
         doctor` takes the same flags and variables.\n\n\
         | flag | variable | default | description |\n|---|---|---|---|\n",
    );
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else {
            continue;
        };
        if matches!(long, "help" | "version") {
            continue;
        }
        let env = arg
            .get_env()
            .map(|e| format!("`{}`", e.to_string_lossy()))
            .unwrap_or_else(|| "—".into());
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| format!("`{}`", v.to_string_lossy()))
            .collect();
        let default = if defaults.is_empty() {
            if arg.is_required_set() {
                "required".to_string()
            } else {
                "unset".to_string()
            }
        } else {
            defaults.join(", ")
        };
        let mut help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        let values: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| format!("`{}`", v.get_name()))
            .collect();
        // clap drops the full stop of a one-sentence help.
        if !help.is_empty() && !help.ends_with('.') {
            help.push('.');
        }
        if !values.is_empty()
            && !matches!(values.as_slice(), [a, b] if a == "`true`" && b == "`false`")
        {
            help.push_str(&format!(" One of {}.", values.join(", ")));
        }
        let help = help
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace('|', "\\|");
        out.push_str(&format!("| `--{long}` | {env} | {default} | {help} |\n"));
    }
    out
}
