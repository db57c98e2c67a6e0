//! `userfluxctl config validate|schema|migrate`: configs, no daemon needed.

use crate::{Cli, Fail, Out, print_json};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use userflux_engine::config::Config;

#[derive(Subcommand)]
pub(crate) enum ConfigCmd {
    /// Check a config; print it resolved, or the errors with their field paths.
    Validate { file: PathBuf },
    /// Print the JSON Schema of the config.
    Schema,
    /// Convert an older Userflux or Tressi config to the current form.
    Migrate { file: PathBuf },
}

pub(crate) fn config(cli: &Cli, cmd: &ConfigCmd) -> Out {
    match cmd {
        ConfigCmd::Schema => {
            print_json(&userflux_engine::schema::by_name("config").unwrap_or_default());
            Ok(0)
        }
        ConfigCmd::Validate { file } => {
            let (config, warnings) = read(file)?;
            let config = config.resolve().map_err(|e| invalid(file, &e.problems))?;
            for w in &warnings {
                eprintln!("userfluxctl: {}: converted: {w}", file.display());
            }
            for w in userflux_engine::run::host_warnings(&config) {
                eprintln!("userfluxctl: {}: warning: {w}", file.display());
            }
            if cli.json {
                print_json(&serde_json::to_value(&config).unwrap_or_default());
            } else {
                let flows = match config.flows.len() {
                    0 => String::new(),
                    n => format!(", {n} flow(s)"),
                };
                out!(
                    "{}: valid ({} endpoint(s){flows}, {:.0} s)",
                    file.display(),
                    config.endpoints.len(),
                    config.duration().as_secs_f64()
                );
            }
            Ok(0)
        }
        ConfigCmd::Migrate { file } => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| Fail(2, format!("{}: cannot read: {e}", file.display())))?;
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| Fail(2, format!("{}: invalid JSON: {e}", file.display())))?;
            let (migrated, warnings) = userflux_engine::migrate::migrate(value)
                .map_err(|e| Fail(2, format!("{}: {e}", file.display())))?;
            for w in &warnings {
                eprintln!("userfluxctl: {}: converted: {w}", file.display());
            }
            if warnings.is_empty() {
                eprintln!(
                    "userfluxctl: {}: already in the current form",
                    file.display()
                );
            }
            // What it converted to must itself be a valid config.
            Config::from_value(migrated.clone())
                .and_then(Config::resolve)
                .map_err(|e| invalid(file, &e.problems))?;
            print_json(&migrated);
            Ok(0)
        }
    }
}

pub(crate) fn read(file: &Path) -> Result<(Config, Vec<String>), Fail> {
    Config::read(file)
        .map_err(|e| Fail(2, format!("invalid config:\n  {}", e.problems.join("\n  "))))
}

pub(crate) fn invalid(file: &Path, problems: &[String]) -> Fail {
    let lines: Vec<String> = problems
        .iter()
        .map(|p| format!("  {}: {p}", file.display()))
        .collect();
    Fail(2, format!("invalid config:\n{}", lines.join("\n")))
}
