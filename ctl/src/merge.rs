//! `userfluxctl merge`: the run directories of a sharded run joined into
//! one, losslessly (`userflux_engine::merge`).

use crate::{Cli, Fail, Out, print_json};
use std::path::{Path, PathBuf};
use userflux_engine::report::human_summary;
use userflux_engine::summary::EXIT_THRESHOLDS;

pub(crate) fn merge(cli: &Cli, dirs: &[PathBuf], out: Option<&Path>, partial: bool) -> Out {
    use userflux_engine::merge;
    let runs = dirs
        .iter()
        .map(|d| merge::ShardRun::read(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Fail(2, e))?;
    let (_, missing) = merge::check(&runs, partial).map_err(|e| Fail(2, e))?;
    let out = match out {
        Some(p) => p.to_path_buf(),
        None => {
            userflux_engine::rundir::RunDir::create_in(Path::new("runs"))
                .map_err(|e| Fail(1, format!("cannot create a run directory in runs/: {e}")))?
                .path
        }
    };
    let summary = merge::merge(&runs, &missing, &out).map_err(|e| Fail(1, e))?;
    // An endpoint or flow step no shard sent a request to ran nowhere: say
    // so (issue #27: endpoints vanished from sharded runs without a word).
    for (name, e) in &summary.endpoints {
        if e.requests == 0 {
            eprintln!("warning: {name} ran nowhere: no shard sent it a request");
        }
    }
    if cli.json {
        print_json(&serde_json::to_value(&summary).unwrap_or_default());
    } else {
        put!("{}", human_summary(&summary));
        out!("Merged {} shard(s) into {}", runs.len(), out.display());
    }
    Ok(if summary.failed_thresholds() > 0 {
        EXIT_THRESHOLDS as u8
    } else {
        0
    })
}
