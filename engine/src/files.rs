//! Input files a config or a flag names (data sets, `--body-file`, TLS
//! certificates and keys): regular files only, read up to a cap.
//!
//! A FIFO with no writer blocks `open(2)` forever, and `/dev/zero` never
//! ends (issue #27: as a `.csv` data set it aborted the engine on a 4 GiB
//! allocation; as `--body-file` on a FIFO it hung). So a file is opened
//! with `O_NONBLOCK` (which cannot block on a FIFO and changes nothing for
//! a regular file), refused unless it is a regular file, and read through
//! a `take` of its cap, so a file that grows while read is bounded too.
//! Errors are reasons without the file's name: each caller prefixes its
//! field or flag and the file.

use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::Path;

/// Opens `path` for reading if it is a regular file (after symlinks);
/// a FIFO, device, socket or directory is refused, without blocking.
pub fn open_regular(path: &Path) -> Result<File, String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("cannot read: {e}"))?;
    let kind = file
        .metadata()
        .map_err(|e| format!("cannot read: {e}"))?
        .file_type();
    let what = if kind.is_file() {
        return Ok(file);
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_dir() {
        "a directory"
    } else {
        "not a file"
    };
    Err(format!(
        "is {what}, not a regular file; give a file (a pipe or a device may block or never end)"
    ))
}

/// `n` bytes as the largest whole unit: `16 MiB`, `1 GiB`.
pub fn show_size(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{} GiB", n >> 30),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

/// The reason a file of `len` bytes is refused under `cap`, if it is.
pub fn over_cap(len: u64, cap: u64) -> Option<String> {
    (len > cap).then(|| format!("larger than {}", show_size(cap)))
}

/// A regular file opened by [`open_regular`] and refused when its size is
/// over `cap`; read it through [`File::take`] of `cap + 1` and check again.
pub fn open_capped(path: &Path, cap: u64) -> Result<File, String> {
    let file = open_regular(path)?;
    let len = file
        .metadata()
        .map_err(|e| format!("cannot read: {e}"))?
        .len();
    match over_cap(len, cap) {
        Some(why) => Err(why),
        None => Ok(file),
    }
}

/// The whole of a regular file of at most `cap` bytes.
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, String> {
    let file = open_capped(path, cap)?;
    let mut bytes = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    match over_cap(bytes.len() as u64, cap) {
        Some(why) => Err(why),
        None => Ok(bytes),
    }
}

/// Makes the file names a config's JSON holds (data sets, TLS certificates
/// and key) absolute from `base`, the directory of the config file: a
/// config sent to the daemon or to a shard process is read from elsewhere.
pub fn absolute_names(config: &mut serde_json::Value, base: &Path) {
    let absolute = |file: &mut serde_json::Value| {
        if let Some(f) = file.as_str()
            && Path::new(f).is_relative()
        {
            *file = serde_json::Value::String(base.join(f).display().to_string());
        }
    };
    if let Some(data) = config.get_mut("data").and_then(|d| d.as_object_mut()) {
        for spec in data.values_mut() {
            if let Some(file) = spec.get_mut("file") {
                absolute(file);
            }
        }
    }
    if let Some(tls) = config.get_mut("tls").and_then(|t| t.as_object_mut()) {
        for k in ["ca_file", "client_cert", "client_key"] {
            if let Some(file) = tls.get_mut(k) {
                absolute(file);
            }
        }
    }
    // gRPC: the .proto files and import paths of endpoints and flow steps
    let mut units: Vec<&mut serde_json::Value> = Vec::new();
    for (k, v) in config.as_object_mut().into_iter().flatten() {
        match (k.as_str(), v) {
            ("endpoints", serde_json::Value::Array(eps)) => units.extend(eps.iter_mut()),
            ("flows", serde_json::Value::Array(flows)) => {
                for f in flows {
                    if let Some(serde_json::Value::Array(steps)) = f.get_mut("steps") {
                        units.extend(steps.iter_mut());
                    }
                }
            }
            _ => {}
        }
    }
    for u in units {
        let Some(g) = u.get_mut("grpc").and_then(|g| g.as_object_mut()) else {
            continue;
        };
        for k in ["proto", "import_paths"] {
            match g.get_mut(k) {
                Some(serde_json::Value::Array(files)) => files.iter_mut().for_each(absolute),
                Some(file) => absolute(file),
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config sent elsewhere (daemon, shard) keeps finding its .proto files.
    #[test]
    fn grpc_files_are_made_absolute() {
        let mut v: serde_json::Value = serde_json::from_str(
            r#"{"endpoints": [{"name": "a", "grpc": {"proto": "a.proto", "import_paths": ["inc", "/abs"]}}],
                "flows": [{"name": "f", "steps": [{"name": "s", "grpc": {"proto": ["b.proto", "/c.proto"]}}]}]}"#,
        )
        .unwrap();
        absolute_names(&mut v, Path::new("/base"));
        assert_eq!(v["endpoints"][0]["grpc"]["proto"], "/base/a.proto");
        assert_eq!(
            v["endpoints"][0]["grpc"]["import_paths"],
            serde_json::json!(["/base/inc", "/abs"])
        );
        assert_eq!(
            v["flows"][0]["steps"][0]["grpc"]["proto"],
            serde_json::json!(["/base/b.proto", "/c.proto"])
        );
    }

    #[test]
    fn only_regular_files_are_read_and_only_up_to_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "12345").unwrap();
        assert_eq!(read_capped(&file, 5).unwrap(), b"12345");
        assert_eq!(read_capped(&file, 4).unwrap_err(), "larger than 4 bytes");
        let e = read_capped(Path::new("/dev/zero"), 1 << 30).unwrap_err();
        assert!(e.starts_with("is a device, not a regular file"), "{e}");
        let e = read_capped(dir.path(), 1).unwrap_err();
        assert!(e.starts_with("is a directory"), "{e}");
        // a FIFO with no writer: refused at once, not waited on
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        let e = read_capped(&fifo, 1).unwrap_err();
        assert!(e.starts_with("is a FIFO (named pipe)"), "{e}");
        let e = read_capped(&dir.path().join("none"), 1).unwrap_err();
        assert!(e.starts_with("cannot read: No such file"), "{e}");
        assert_eq!(show_size(16 << 20), "16 MiB");
        assert_eq!(show_size(1 << 30), "1 GiB");
    }
}
