//! Data sets: rows of values from a CSV, JSON or NDJSON file, loaded once
//! before the run and shared read-only by every worker
//! (`{{data.SET.COLUMN}}` in templates).
//!
//! A set is kept as one string of every cell's text and an offset per
//! cell, so a million rows cost about the file's size, not a `String` per
//! cell. Each row remembers its line in the file, so a bad value found
//! later (a column used in a path holding a space) still names `file:line`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Largest data file: 1 GiB. A data set is held in memory for the whole
/// run (its text, plus 4 bytes per cell and per row), and a `.json` or
/// `.ndjson` file is read whole before it is parsed, so a set costs one to
/// two times its file; 1 GiB is ten million rows of 100 bytes, far past the
/// accounts a test logs in with, and leaves the machine's memory to the
/// load. (Offsets are 32-bit, so 4 GiB is the hard limit.)
pub const MAX_DATA_BYTES: u64 = 1 << 30;
/// Most columns in one data set.
pub const MAX_COLUMNS: usize = 1024;

/// How requests take rows.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Row after row over the whole run (all workers), wrapping at the end.
    #[default]
    Sequential,
    /// A row drawn at random for each request (or flow iteration).
    Random,
    /// VU k always gets row k mod rows: one account per VU.
    PerVu,
}

/// A loaded data set.
#[derive(Debug)]
pub struct DataSet {
    pub name: String,
    /// The file, absolute.
    pub path: PathBuf,
    pub order: Order,
    pub columns: Vec<String>,
    pub rows: usize,
    pub sha256: String,
    text: String,
    /// `rows × columns + 1` offsets into `text`.
    offsets: Vec<u32>,
    /// Each row's line in the file (1-based).
    lines: Vec<u32>,
}

impl DataSet {
    /// Cell `col` of row `row`.
    #[inline]
    pub fn cell(&self, row: usize, col: usize) -> &str {
        let i = row * self.columns.len() + col;
        &self.text[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    /// Row `row`'s line in the file (1-based), for errors.
    pub fn line(&self, row: usize) -> u32 {
        self.lines[row]
    }

    /// Loads `path` (format by its extension).
    pub fn load(name: &str, path: &Path, order: Order) -> Result<DataSet, String> {
        let shown = path.display();
        // a regular file under the cap: a FIFO or /dev/zero is refused at once
        let file =
            crate::files::open_capped(path, MAX_DATA_BYTES).map_err(|e| format!("{shown}: {e}"))?;
        let len = file.metadata().map_err(|e| format!("{shown}: {e}"))?.len();
        // and read through a take, so a file growing meanwhile stays bounded
        let mut input = std::io::Read::take(file, MAX_DATA_BYTES + 1);
        let too_big = || {
            format!(
                "{shown}: larger than {}",
                crate::files::show_size(MAX_DATA_BYTES)
            )
        };
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let mut b = Builder::new(name, path, order, String::new());
        // Cells take about the file's size: reserve it once, no regrowth.
        b.set.text.reserve(len as usize);
        match ext.as_str() {
            "csv" => {
                // streamed through the hash: the file is never held whole
                let mut hashing = Hashing {
                    inner: std::io::BufReader::with_capacity(1 << 16, input),
                    sha: Sha256::new(),
                    read: 0,
                };
                let parsed = b.csv(&mut hashing);
                std::io::copy(&mut hashing, &mut std::io::sink())
                    .map_err(|e| format!("{shown}: {e}"))?;
                if hashing.read > MAX_DATA_BYTES {
                    return Err(too_big());
                }
                parsed?;
                b.set.sha256 = hex(&hashing.sha.finalize());
            }
            "json" | "ndjson" | "jsonl" => {
                let mut bytes = Vec::with_capacity(len as usize);
                std::io::Read::read_to_end(&mut input, &mut bytes)
                    .map_err(|e| format!("{shown}: cannot read: {e}"))?;
                if bytes.len() as u64 > MAX_DATA_BYTES {
                    return Err(too_big());
                }
                b.set.sha256 = hex(&Sha256::digest(&bytes));
                if ext == "json" {
                    b.json(&bytes)?
                } else {
                    b.ndjson(&bytes)?
                }
            }
            _ => {
                return Err(format!(
                    "{shown}: unknown data format \"{ext}\" (use .csv, .json or .ndjson)"
                ));
            }
        }
        b.finish()
    }

    /// A set from literal rows (tests).
    pub fn from_rows(name: &str, columns: &[&str], rows: &[&[&str]]) -> DataSet {
        let mut b = Builder::new(name, Path::new("inline"), Order::Sequential, String::new());
        b.columns = columns.iter().map(|c| c.to_string()).collect();
        for (i, r) in rows.iter().enumerate() {
            for c in *r {
                b.push_cell(c);
            }
            b.lines.push(i as u32 + 2);
        }
        b.finish().expect("valid rows")
    }

    /// The first row whose column `col` has a byte `bad` says, as
    /// `file:line: …`.
    pub fn check_column(&self, col: usize, bad: fn(u8) -> bool, why: &str) -> Result<(), String> {
        for row in 0..self.rows {
            if self.cell(row, col).bytes().any(bad) {
                return Err(format!(
                    "{}:{}: column \"{}\" {why}",
                    self.path.display(),
                    self.lines[row],
                    self.columns[col]
                ));
            }
        }
        Ok(())
    }
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    sha: Sha256,
    /// Bytes read so far.
    read: u64,
}

impl<R: std::io::Read> std::io::Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

struct Builder {
    set: DataSet,
    columns: Vec<String>,
    lines: Vec<u32>,
}

impl Builder {
    fn new(name: &str, path: &Path, order: Order, sha256: String) -> Builder {
        Builder {
            set: DataSet {
                name: name.into(),
                path: path.into(),
                order,
                columns: Vec::new(),
                rows: 0,
                sha256,
                text: String::new(),
                offsets: vec![0],
                lines: Vec::new(),
            },
            columns: Vec::new(),
            lines: Vec::new(),
        }
    }

    fn shown(&self) -> String {
        self.set.path.display().to_string()
    }

    fn push_cell(&mut self, s: &str) {
        self.set.text.push_str(s);
        self.set.offsets.push(self.set.text.len() as u32);
    }

    fn set_columns(&mut self, cols: Vec<String>, line: u64) -> Result<(), String> {
        let shown = self.shown();
        if cols.is_empty() {
            return Err(format!("{shown}:{line}: no columns"));
        }
        if cols.len() > MAX_COLUMNS {
            return Err(format!("{shown}:{line}: more than {MAX_COLUMNS} columns"));
        }
        for (i, c) in cols.iter().enumerate() {
            if c.is_empty() {
                return Err(format!("{shown}:{line}: column {} has no name", i + 1));
            }
            if cols[..i].contains(c) {
                return Err(format!("{shown}:{line}: column \"{c}\" appears twice"));
            }
        }
        self.columns = cols;
        Ok(())
    }

    fn csv(&mut self, input: &mut impl std::io::Read) -> Result<(), String> {
        let shown = self.shown();
        // the csv crate skips a UTF-8 byte-order mark itself
        let mut r = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(input);
        let at = |e: &csv::Error| {
            e.position()
                .map_or(String::new(), |p| format!(":{}", p.line()))
        };
        let header = r
            .headers()
            .map_err(|e| format!("{shown}{}: {}", at(&e), csv_reason(&e)))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        self.set_columns(header, 1)?;
        let mut rec = csv::StringRecord::new();
        loop {
            match r.read_record(&mut rec) {
                Ok(false) => break,
                Ok(true) => {
                    let line = rec.position().map_or(0, |p| p.line());
                    for f in rec.iter() {
                        self.push_cell(f);
                    }
                    self.lines.push(line as u32);
                    self.check_size(line)?;
                }
                Err(e) => return Err(format!("{shown}{}: {}", at(&e), csv_reason(&e))),
            }
        }
        Ok(())
    }

    fn json(&mut self, bytes: &[u8]) -> Result<(), String> {
        let shown = self.shown();
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("{shown}:{}: {e}", e.line()))?;
        let serde_json::Value::Array(items) = v else {
            return Err(format!(
                "{shown}:1: a .json data file is an array of objects"
            ));
        };
        for (i, item) in items.iter().enumerate() {
            // a JSON array's rows have no line of their own: name the row
            self.object(item, i as u64 + 1, &format!("{shown}: row {}", i + 1))?;
        }
        Ok(())
    }

    fn ndjson(&mut self, bytes: &[u8]) -> Result<(), String> {
        let shown = self.shown();
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            format!("{shown}:{line}: not UTF-8")
        })?;
        for (i, line) in text.lines().enumerate() {
            let n = i as u64 + 1;
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| format!("{shown}:{n}: {e}"))?;
            self.object(&v, n, &format!("{shown}:{n}"))?;
        }
        Ok(())
    }

    /// One row from a JSON object; `at` names it in errors.
    fn object(&mut self, v: &serde_json::Value, line: u64, at: &str) -> Result<(), String> {
        let serde_json::Value::Object(m) = v else {
            return Err(format!("{at}: a row must be a JSON object"));
        };
        if self.columns.is_empty() {
            self.set_columns(m.keys().cloned().collect(), line)?;
        }
        if m.len() != self.columns.len() || !self.columns.iter().all(|c| m.contains_key(c)) {
            let keys: Vec<&str> = m.keys().map(String::as_str).collect();
            return Err(format!(
                "{at}: has keys {} where the first row has {}",
                keys.join(", "),
                self.columns.join(", ")
            ));
        }
        for i in 0..self.columns.len() {
            match &m[&self.columns[i]] {
                serde_json::Value::String(s) => self.push_cell(s),
                other => self.push_cell(&other.to_string()),
            }
        }
        self.lines.push(line as u32);
        self.check_size(line)
    }

    fn check_size(&self, line: u64) -> Result<(), String> {
        if self.set.text.len() as u64 > MAX_DATA_BYTES {
            return Err(format!(
                "{}:{line}: more than {} of values",
                self.shown(),
                crate::files::show_size(MAX_DATA_BYTES)
            ));
        }
        Ok(())
    }

    fn finish(mut self) -> Result<DataSet, String> {
        if self.lines.is_empty() {
            return Err(format!("{}: no rows", self.shown()));
        }
        self.set.rows = self.lines.len();
        self.set.columns = self.columns;
        self.set.lines = self.lines;
        Ok(self.set)
    }
}

fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("has {len} fields where the header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "not UTF-8".into(),
        _ => e.to_string(),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(ext: &str, text: &str) -> Result<DataSet, String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(format!("d.{ext}"));
        std::fs::write(&p, text).unwrap();
        DataSet::load("d", &p, Order::Sequential)
            .map_err(|e| e.replace(&p.display().to_string(), "FILE"))
    }

    #[test]
    fn reads_each_format() {
        for (ext, text) in [
            ("csv", "name,id\nann,1\n\"b,ob\",2\n"),
            ("csv", "\u{feff}name,id\r\nann,1\r\n\"b,ob\",2"),
            ("json", r#"[{"name":"ann","id":1},{"name":"b,ob","id":2}]"#),
            (
                "ndjson",
                "{\"name\":\"ann\",\"id\":1}\n\n{\"name\":\"b,ob\",\"id\":2}\n",
            ),
        ] {
            let d = load(ext, text).unwrap();
            let col = |n: &str| d.columns.iter().position(|c| c == n).unwrap();
            assert_eq!(d.columns.len(), 2, "{ext}");
            assert_eq!(d.rows, 2);
            assert_eq!(d.cell(0, col("name")), "ann");
            assert_eq!(d.cell(1, col("name")), "b,ob");
            assert_eq!(d.cell(1, col("id")), "2");
            assert_eq!(
                d.sha256,
                hex(&Sha256::digest(text.as_bytes())),
                "{ext}: the whole file"
            );
        }
    }

    #[test]
    fn bad_files_name_file_and_line() {
        for (ext, text, want) in [
            (
                "csv",
                "a,b\n1,2\n3\n",
                "FILE:3: has 1 fields where the header has 2",
            ),
            ("csv", "a,a\n1,2\n", "FILE:1: column \"a\" appears twice"),
            ("csv", "a,b\n", "FILE: no rows"),
            ("csv", "", "FILE"),
            ("json", "{\"a\":1}", "FILE:1: a .json data file is an array"),
            (
                "json",
                "[{\"a\":1},{\"b\":2}]",
                "FILE: row 2: has keys b where the first row has a",
            ),
            ("json", "[1]", "FILE: row 1: a row must be a JSON object"),
            ("ndjson", "{\"a\":1}\n{\"a\":\n", "FILE:2:"),
            ("txt", "a\n1\n", "unknown data format \"txt\""),
        ] {
            let e = load(ext, text).unwrap_err();
            assert!(e.contains(want), "{ext} {text:?}: {e}");
        }
        let e = DataSet::load("d", Path::new("/nonexistent/u.csv"), Order::Random).unwrap_err();
        assert!(e.starts_with("/nonexistent/u.csv: "), "{e}");
    }

    /// Issue #27: `/dev/zero` as a `.csv` aborted on a 4 GiB allocation and
    /// as a `.json` grew to 2 GB; a FIFO with no writer blocked. Each is now
    /// refused at once, naming the file.
    #[test]
    fn devices_fifos_and_files_over_the_cap_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str| dir.path().join(name);
        for ext in ["csv", "json", "ndjson"] {
            std::os::unix::fs::symlink("/dev/zero", p(&format!("zero.{ext}"))).unwrap();
        }
        let made = std::process::Command::new("mkfifo")
            .arg(p("fifo.csv"))
            .status();
        assert!(made.unwrap().success());
        std::fs::File::create(p("big.json"))
            .unwrap()
            .set_len(MAX_DATA_BYTES + 1)
            .unwrap();
        for (name, want) in [
            ("zero.csv", "is a device, not a regular file"),
            ("zero.json", "is a device, not a regular file"),
            ("zero.ndjson", "is a device, not a regular file"),
            ("fifo.csv", "is a FIFO (named pipe), not a regular file"),
            ("big.json", "larger than 1 GiB"),
        ] {
            let e = DataSet::load("d", &p(name), Order::Sequential).unwrap_err();
            let named = format!("{}: {want}", p(name).display());
            assert!(e.starts_with(&named), "{name}: {e}");
        }
    }

    #[test]
    fn a_bad_cell_is_found_by_line() {
        let d = load("csv", "p\nok\nalso-ok\nhas space\n").unwrap();
        let e = d.check_column(0, |b| b == b' ', "has a space").unwrap_err();
        assert_eq!(
            e,
            format!("{}:4: column \"p\" has a space", d.path.display())
        );
        assert!(d.check_column(0, |b| b == b'\n', "x").is_ok());
    }
}
