//! `userfluxctl dashboard`: where the running daemon's dashboard is and the
//! token that lets a browser steer from it. It prints the URL (with the
//! token after `#`, which a browser never sends to a server: the page keeps
//! it for the session) and opens a browser only with `--open`.

use crate::client::Client;
use crate::{Fail, Out, expect, print_json};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct DashboardArgs {
    /// Open the URL in a browser (xdg-open).
    #[arg(long)]
    pub open: bool,
}

pub fn run(json: bool, client: &Client, args: &DashboardArgs) -> Out {
    let h = expect(client.get("/v1/health")?, 200)?.json();
    let Some(url) = h["dashboard"].as_str() else {
        return Err(Fail(
            1,
            "userfluxd serves no dashboard: start it with --http, e.g. `userfluxctl daemon stop && userfluxctl daemon start --http 127.0.0.1:8090`".into(),
        ));
    };
    let runs = PathBuf::from(h["runs_dir"].as_str().unwrap_or("runs"));
    let token_file = runs.join("dashboard.token");
    let token = std::fs::read_to_string(&token_file)
        .map_err(|e| Fail(1, format!("cannot read {}: {e}", token_file.display())))?;
    let token = token.trim();
    let with_token = format!("{url}#token={token}");
    if json {
        print_json(&serde_json::json!({
            "url": url,
            "token": token,
            "token_file": token_file.display().to_string(),
            "open": with_token,
        }));
    } else {
        out!(
            "dashboard: {url}\ntoken:     {token} (in {})\nopen:      {with_token}",
            token_file.display()
        );
    }
    if args.open
        && std::process::Command::new("xdg-open")
            .arg(&with_token)
            .status()
            .is_err()
    {
        out!("open {with_token} in a browser");
    }
    Ok(0)
}
