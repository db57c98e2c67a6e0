//! Cluster mode: a shard run as a pod of a Kubernetes Indexed Job
//! (`userfluxctl cluster manifest`, issue #29). The pod's command is the
//! engine itself (PID 1, so SIGTERM reaches it and ends in a summary), and
//! the Job reads only exit codes, so two things differ from a run at a
//! terminal:
//!
//! - A shard judges its thresholds on its share only; the run's verdict is
//!   the merge's. A shard whose run completed therefore exits 0 whatever
//!   its thresholds (its summary still records them), and only a real
//!   failure — a bad config, a late start, a crash — fails its Job index.
//!   Exiting 99 here used to fail the Job and take the other pods (and
//!   their logs, the results) with it.
//! - The results leave the pod on stdout, framed: the per-second
//!   histograms, then the summary (last, so a log the kubelet rotates
//!   loses the histograms first), each between two marker lines that
//!   `userfluxctl cluster collect` looks for.

use std::io::Write;
use std::path::Path;

/// Set to `1` (by the manifest) for cluster mode.
pub const CLUSTER_ENV: &str = "USERFLUX_CLUSTER";
/// The lines a pod prints around its summary.
pub const BEGIN: &str = "USERFLUX-SUMMARY-BEGIN";
pub const END: &str = "USERFLUX-SUMMARY-END";
/// The lines a pod prints around its timeline's histograms (before the summary).
pub const TIMELINE_BEGIN: &str = "USERFLUX-TIMELINE-BEGIN";
pub const TIMELINE_END: &str = "USERFLUX-TIMELINE-END";

/// Whether `USERFLUX_CLUSTER` asks for cluster mode: `1` or `true`; `0`,
/// `false` or unset do not; anything else is an error naming the variable.
pub fn from_env() -> Result<bool, String> {
    match std::env::var(CLUSTER_ENV) {
        Err(_) => Ok(false),
        Ok(v) => match v.trim() {
            "1" | "true" => Ok(true),
            "0" | "false" | "" => Ok(false),
            other => Err(format!("{CLUSTER_ENV}={other}: 1 or 0")),
        },
    }
}

/// The exit code of a shard in cluster mode whose run produced a summary:
/// a failed threshold (99) is the merge's business, so it is 0; a failed
/// run (1) or a second signal (130) stays what it is.
pub fn exit_code(code: i32) -> i32 {
    if code == crate::summary::EXIT_THRESHOLDS {
        0
    } else {
        code
    }
}

/// Writes the framed histograms (the run directory's
/// `timeline-histograms.ndjson`, empty if there is none) and the framed
/// summary JSON to `out`.
pub fn write_frames(out: &mut impl Write, dir: &Path, summary_json: &str) -> std::io::Result<()> {
    let timeline =
        std::fs::read_to_string(dir.join(super::TIMELINE_HISTOGRAMS_FILE)).unwrap_or_default();
    writeln!(out, "{TIMELINE_BEGIN}")?;
    if !timeline.trim().is_empty() {
        writeln!(out, "{}", timeline.trim_end())?;
    }
    writeln!(out, "{TIMELINE_END}")?;
    writeln!(out, "{BEGIN}")?;
    writeln!(out, "{}", summary_json.trim_end())?;
    writeln!(out, "{END}")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_threshold_verdict_becomes_success() {
        assert_eq!(exit_code(99), 0);
        assert_eq!(exit_code(0), 0);
        assert_eq!(exit_code(1), 1);
        assert_eq!(exit_code(130), 130);
    }

    #[test]
    fn frames_put_the_summary_last() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(super::super::TIMELINE_HISTOGRAMS_FILE),
            "{\"t\":0}\n",
        )
        .unwrap();
        let mut out = Vec::new();
        write_frames(&mut out, dir.path(), "{\"a\": 1}\n").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                "{TIMELINE_BEGIN}\n{{\"t\":0}}\n{TIMELINE_END}\n{BEGIN}\n{{\"a\": 1}}\n{END}\n"
            )
        );
    }
}
