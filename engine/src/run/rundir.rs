//! The run directory, `runs/<run_id>/`: its id, its files, and how they are
//! written — JSON to a temporary name then renamed, so a reader never sees
//! half a file; `logs.txt` appended a line at a time.

use serde::Serialize;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A run id is `YYYYMMDD-HHMMSS-xxxx`: UTC time and 4 random hex digits.
pub fn new_run_id(now: SystemTime) -> String {
    let stamp = humantime::format_rfc3339_seconds(now).to_string(); // 2026-11-22T05:37:37Z
    let digits: String = stamp.chars().filter(char::is_ascii_digit).collect();
    // RandomState is seeded from the OS's randomness: enough for 16 bits.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        now.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!(
        "{}-{}-{:04x}",
        &digits[..8],
        &digits[8..14],
        h.finish() & 0xffff
    )
}

/// True for strings of the run-id form; anything else must not reach a path.
pub fn is_run_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b[8] == b'-'
        && b[15] == b'-'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
        && b[16..]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// An open run directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub path: PathBuf,
    pub run_id: String,
}

impl RunDir {
    /// Creates a new `runs_dir/<run_id>/`, never reusing an existing one.
    pub fn create_in(runs_dir: &Path) -> io::Result<RunDir> {
        if runs_dir.exists() && !runs_dir.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "it exists and is not a directory",
            ));
        }
        fs::create_dir_all(runs_dir)?;
        for _ in 0..16 {
            let run_id = new_run_id(SystemTime::now());
            let path = runs_dir.join(&run_id);
            match fs::create_dir(&path) {
                Ok(()) => return Ok(RunDir { path, run_id }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other("could not find an unused run id"))
    }

    /// Uses exactly `path` (created if missing); the id is its last component.
    pub fn at(path: &Path) -> io::Result<RunDir> {
        fs::create_dir_all(path)?;
        let run_id = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".into());
        Ok(RunDir {
            path: path.to_path_buf(),
            run_id,
        })
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `name` as pretty JSON through a temporary file and a rename.
    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> io::Result<()> {
        write_json_atomic(&self.file(name), value)
    }

    /// Appends one line to `logs.txt`, prefixed with the time.
    pub fn log(&self, line: &str) -> io::Result<()> {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.file("logs.txt"))?;
        // One write per line: O_APPEND keeps lines whole with other writers.
        f.write_all(format!("{} engine: {line}\n", now_rfc3339()).as_bytes())
    }
}

pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let mut text = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    text.push(b'\n');
    let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(&text)?;
        f.sync_data()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_have_the_documented_form() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_000_000);
        let id = new_run_id(t);
        assert!(is_run_id(&id), "{id}");
        assert!(id.starts_with("20261118-"), "{id}");
        for bad in [
            "../../etc",
            "20261118-123456-zzzz",
            "20261118-123456-abcd/",
            "",
            "20261118_123456-abcd",
        ] {
            assert!(!is_run_id(bad), "{bad}");
        }
    }

    #[test]
    fn creates_unique_dirs_and_writes_atomically() {
        let tmp = tempfile::tempdir().unwrap();
        let a = RunDir::create_in(tmp.path()).unwrap();
        let b = RunDir::create_in(tmp.path()).unwrap();
        assert_ne!(a.path, b.path);
        a.write_json("status.json", &serde_json::json!({"x": 1}))
            .unwrap();
        let names: Vec<_> = fs::read_dir(&a.path)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["status.json"], "no temporary file left");
        a.log("hello").unwrap();
        a.log("world").unwrap();
        let logs = fs::read_to_string(a.file("logs.txt")).unwrap();
        assert_eq!(logs.lines().count(), 2);
        assert!(logs.lines().all(|l| l.contains(" engine: ")));
    }
}
