//! A small Chrome DevTools Protocol client for the dashboard's browser
//! tests: headless Chromium started with `--remote-debugging-pipe` (the
//! protocol's JSON messages, each ended by a NUL byte, on file descriptors
//! 3 (to the browser) and 4 (from it)), so no WebSocket library and no
//! debugging port another process could reach. Enough to open a page,
//! evaluate JavaScript in it and read the answer.
//!
//! The browser cannot resolve any host name (`--host-resolver-rules`) and
//! does no background networking: a page that needs anything but the
//! daemon's loopback address fails to load it.

use serde_json::{Value, json};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// How long one protocol call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The Chromium binary, if one is installed (`.ci/run` installs it).
pub fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "chromium-headless-shell"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH")?
                .to_str()?
                .split(':')
                .map(|d| PathBuf::from(d).join(name))
                .find(|p| p.is_file())
        })
}

pub struct Browser {
    child: Child,
    to: File,
    from: Receiver<Value>,
    next: u64,
    _profile: tempfile::TempDir,
}

/// A tab: the session its commands go to.
pub struct Page {
    session: String,
}

fn pipe() -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
    (fds[0], fds[1])
}

impl Browser {
    /// Starts headless Chromium; `None` when it is not installed.
    pub fn launch() -> Option<Browser> {
        let exe = chromium()?;
        let profile = tempfile::tempdir().unwrap();
        let (to_read, to_write) = pipe(); // test → browser (its fd 3)
        let (from_read, from_write) = pipe(); // browser → test (its fd 4)
        let mut cmd = Command::new(exe);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--window-size=1280,1600",
            "--remote-debugging-pipe",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: between fork and exec only async-signal-safe calls
        // (dup2) on descriptors this process owns.
        unsafe {
            cmd.pre_exec(move || {
                // Above 3 and 4 first: one of them may be 3 or 4 already.
                let a = libc::fcntl(to_read, libc::F_DUPFD, 10);
                let b = libc::fcntl(from_write, libc::F_DUPFD, 10);
                if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start chromium");
        // SAFETY: each descriptor came from pipe2 above and is owned once here.
        let (to, from, _a, _b) = unsafe {
            (
                File::from_raw_fd(to_write),
                File::from_raw_fd(from_read),
                File::from_raw_fd(to_read),
                File::from_raw_fd(from_write),
            )
        };
        drop((_a, _b)); // the child has its copies; ours would keep the pipes open
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(from);
            let mut buf = Vec::new();
            while r.read_until(0, &mut buf).is_ok_and(|n| n > 0) {
                buf.pop_if(|b| *b == 0);
                if let Ok(v) = serde_json::from_slice::<Value>(&buf)
                    && tx.send(v).is_err()
                {
                    return;
                }
                buf.clear();
            }
        });
        Some(Browser {
            child,
            to,
            from: rx,
            next: 1,
            _profile: profile,
        })
    }

    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).expect("write to chromium");
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.from.recv_timeout(left) {
                Ok(v) if v["id"] == json!(id) => {
                    assert!(v.get("error").is_none(), "{method}: {}", v["error"]);
                    return v["result"].clone();
                }
                Ok(_) => {} // an event
                Err(RecvTimeoutError::Timeout) => panic!("{method}: no answer in {CALL_TIMEOUT:?}"),
                Err(RecvTimeoutError::Disconnected) => panic!("{method}: chromium went away"),
            }
        }
    }

    /// Opens `url` in a new tab.
    pub fn open(&mut self, url: &str) -> Page {
        let t = self.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let target = t["targetId"].as_str().unwrap().to_string();
        let s = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        );
        let page = Page {
            session: s["sessionId"].as_str().unwrap().to_string(),
        };
        self.call(Some(&page.session), "Page.navigate", json!({"url": url}));
        page
    }

    /// Evaluates `expr` in the page (awaiting a promise) and returns its value.
    pub fn eval(&mut self, page: &Page, expr: &str) -> Value {
        let r = self.call(
            Some(&page.session),
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(
            r.get("exceptionDetails").is_none(),
            "{expr}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// A PNG of the page at `width` × `height` CSS pixels, base64.
    pub fn screenshot(&mut self, page: &Page, width: u32, height: u32) -> String {
        self.call(
            Some(&page.session),
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        );
        std::thread::sleep(Duration::from_millis(1500)); // the charts redraw at the new width
        let r = self.call(
            Some(&page.session),
            "Page.captureScreenshot",
            json!({"format": "png"}),
        );
        r["data"].as_str().unwrap().to_string()
    }

    /// Evaluates `expr` until it is true, or panics after `within`.
    pub fn wait_for(&mut self, page: &Page, expr: &str, within: Duration) {
        let t0 = Instant::now();
        loop {
            // false while the page is still loading (its elements not there yet)
            let guarded = format!(
                "(() => {{ try {{ return !!({expr}); }} catch (e) {{ return false; }} }})()"
            );
            if self.eval(page, &guarded) == json!(true) {
                return;
            }
            if t0.elapsed() >= within {
                let at = self.eval(page, "location.href + ' ' + document.readyState + ' ' + document.body.innerText.slice(0, 300)");
                panic!("not true within {within:?}: {expr}\n(the page: {at})");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
