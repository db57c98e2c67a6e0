//! The session against a real HTTP/2 server: nginx (Debian's `nginx-light`
//! has http_v2; `listen … http2` without TLS is h2c with prior knowledge)
//! started on a free 127.0.0.1 port, driven by a test-only blocking loop
//! over a std `TcpStream`. nginx ends a connection after
//! `keepalive_requests` with a GOAWAY, so 1,000 requests cross several
//! connections and the streams above each GOAWAY's last-stream-id are
//! retried on the next, as the worker will. Skipped, saying so, when
//! `nginx` is not installed.

use super::{Config, Event, Keep, RequestHead, Session};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nginx_binary() -> Option<&'static str> {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

fn start_nginx(keepalive_requests: u32) -> Option<Nginx> {
    let bin = nginx_binary()?;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let d = dir.path().display();
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\nevents {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           keepalive_requests {keepalive_requests};\n  client_max_body_size 1m;\n\
           server {{\n    listen 127.0.0.1:{port} http2;\n\
             location / {{ return 200 \"hello\"; }}\n\
             location /upload {{ return 200 \"up\"; }}\n\
             location /missing {{ return 404 \"no\"; }}\n\
             location /timing {{ add_header Server-Timing \"app;dur=1.5\"; return 200 \"t\"; }}\n\
           }}\n}}\n"
    );
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, conf).expect("write nginx.conf");
    let child = Command::new(bin)
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx starts");
    let until = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "nginx did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(Nginx {
        child,
        port,
        _dir: dir,
    })
}

/// What request `i` asks and what must come back.
fn request(i: u64) -> (&'static str, u16, u64) {
    match i % 10 {
        0 => ("/missing", 404, 2),
        5 => ("/timing", 200, 1),
        _ => ("/", 200, 5),
    }
}

#[derive(Default, Debug)]
struct Tally {
    done: Vec<u32>,
    connections: u32,
    goaways: u32,
    /// Streams above a GOAWAY's last-stream-id, sent again.
    retried: u32,
    /// Streams still open when the server closed (each would be an
    /// `h2_goaway` error), sent again.
    cut_off: u32,
    rtts: u32,
}

/// Runs `total` requests, at most `streams` at a time per connection,
/// reconnecting after each GOAWAY; every request must end exactly once
/// with its status.
fn drive(port: u16, total: u64, streams: usize) -> Tally {
    let authority = format!("127.0.0.1:{port}");
    let heads: Vec<RequestHead> = (0..10)
        .map(|i| {
            RequestHead::new(
                "GET",
                "http",
                &authority,
                request(i).0,
                [("user-agent", "userflux-test")],
            )
        })
        .collect();
    let mut todo: VecDeque<u64> = (0..total).collect();
    let mut t = Tally {
        done: vec![0; total as usize],
        ..Tally::default()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut rbuf = vec![0u8; 64 * 1024];
    let mut wbuf = Vec::new();
    while !todo.is_empty() {
        assert!(Instant::now() < deadline, "not done in time: {t:?}");
        t.connections += 1;
        let mut sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut s = Session::new(Config::default(), Instant::now());
        s.send_ping(Instant::now());
        loop {
            let now = Instant::now();
            while s.open_streams() < streams
                && s.can_open()
                && let Some(i) = todo.pop_front()
            {
                let keep = Keep {
                    timing: true,
                    ..Keep::default()
                };
                s.open(heads[(i % 10) as usize].block(), None, keep, i, now)
                    .expect("can_open said yes");
            }
            s.write_into(&mut wbuf);
            sock.write_all(&wbuf).expect("write");
            wbuf.clear();
            if s.open_streams() == 0 && (todo.is_empty() || s.goaway().is_some()) {
                break;
            }
            let n = sock.read(&mut rbuf).expect("read");
            if n == 0 {
                // Closed after its GOAWAY: what is still open goes again.
                assert!(s.goaway().is_some(), "closed without GOAWAY: {t:?}");
                s.drain_open(|_, tag| {
                    t.cut_off += 1;
                    todo.push_back(tag)
                });
                break;
            }
            let mut retry = Vec::new();
            s.recv(&rbuf[..n], Instant::now(), &mut |e| match e {
                Event::Response(r) => {
                    let (_, status, body) = request(r.tag);
                    assert_eq!(
                        (r.status, r.body_bytes),
                        (status, body),
                        "request {}",
                        r.tag
                    );
                    if r.tag % 10 == 5 {
                        assert_eq!(r.timing, b"app;dur=1.5");
                    }
                    assert!(r.first_byte >= r.opened);
                    t.done[r.tag as usize] += 1;
                }
                Event::Unprocessed { tag, .. } => retry.push(tag),
                Event::GoAway { .. } => t.goaways += 1,
                Event::PingRtt(_) => t.rtts += 1,
                Event::Settings { .. } => {}
                Event::Failed { error, .. } => panic!("a stream failed: {error}"),
            })
            .unwrap_or_else(|e: super::ProtocolError| panic!("connection error: {e}"));
            t.retried += retry.len() as u32;
            todo.extend(retry);
        }
        s.close();
        s.write_into(&mut wbuf);
        let _ = sock.write_all(&wbuf);
        wbuf.clear();
    }
    t
}

#[test]
fn a_thousand_requests_on_ten_streams_against_nginx() {
    let Some(nginx) = start_nginx(300) else {
        eprintln!("SKIPPED: nginx is not installed (apt-get install nginx-light)");
        return;
    };
    let t = drive(nginx.port, 1000, 10);
    assert!(
        t.done.iter().all(|&n| n == 1),
        "each request ends once: {t:?}"
    );
    // 300 requests per connection: 4 connections, a GOAWAY on each of
    // the first 3 at least.
    assert!(t.connections >= 4 && t.goaways >= 3, "{t:?}");
    assert!(t.rtts >= 1, "{t:?}");
    // nginx finishes every stream up to its GOAWAY's last-stream-id
    assert_eq!(t.cut_off, 0, "{t:?}");
    eprintln!(
        "nginx: {} connections, {} GOAWAYs, {} retried",
        t.connections, t.goaways, t.retried
    );
}

#[test]
fn request_bodies_larger_than_the_windows_reach_nginx() {
    let Some(nginx) = start_nginx(1000) else {
        eprintln!("SKIPPED: nginx is not installed (apt-get install nginx-light)");
        return;
    };
    let authority = format!("127.0.0.1:{}", nginx.port);
    let head = RequestHead::new(
        "POST",
        "http",
        &authority,
        "/upload",
        [("content-type", "application/octet-stream")],
    );
    let body = vec![b'u'; 200_000];
    let mut sock = TcpStream::connect(("127.0.0.1", nginx.port)).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut s = Session::new(Config::default(), Instant::now());
    for i in 0..8 {
        s.open(
            head.block(),
            Some(&body),
            Keep::default(),
            i,
            Instant::now(),
        )
        .unwrap();
    }
    let (mut rbuf, mut wbuf) = (vec![0u8; 64 * 1024], Vec::new());
    let mut done = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while done < 8 {
        assert!(Instant::now() < deadline, "{done} of 8 done");
        s.write_into(&mut wbuf);
        sock.write_all(&wbuf).expect("write");
        wbuf.clear();
        let n = sock.read(&mut rbuf).expect("read");
        assert!(n > 0, "nginx closed; {done} of 8 done");
        s.recv(&rbuf[..n], Instant::now(), &mut |e| match e {
            Event::Response(r) => {
                assert_eq!((r.status, r.body_bytes), (200, 2));
                done += 1;
            }
            Event::Failed { error, .. } => panic!("{error}"),
            _ => {}
        })
        .unwrap_or_else(|e| panic!("connection error: {e}"));
    }
}
