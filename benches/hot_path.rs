//! Criterion micro-benches of the per-request path: response framing,
//! histogram recording, sample encode + append, timer wheel, and the
//! autoscale controller, HTTP/2 (HPACK decoding, one response through a
//! session). `cargo bench --bench hot_path`.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};
use userflux_engine::autoscale::{EndpointInput, Observation, decide};
use userflux_engine::config::{Autoscale, Priority};
use userflux_engine::framing::{Framed, Framer};
use userflux_engine::samples::{Sample, SampleFile, SampleWriter};
use userflux_engine::stats::new_histogram;
use userflux_engine::timer::TimerWheel;

const SMALL: &[u8] = b"HTTP/1.1 200 OK\r\nServer: floor\r\nContent-Length: 2\r\n\r\nok";
const TYPICAL: &[u8] = b"HTTP/1.1 200 OK\r\nDate: Sun, 22 Nov 2026 05:37:37 GMT\r\nServer: nginx\r\nContent-Type: application/json\r\nContent-Length: 63\r\nConnection: keep-alive\r\nCache-Control: no-cache\r\nX-Request-Id: 0f1e2d3c4b5a69788796a5b4c3d2e1f0\r\n\r\n{\"id\":42,\"name\":\"userflux\",\"items\":[1,2,3,4,5,6,7,8],\"ok\":true}";
const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n";

fn framing(c: &mut Criterion) {
    let mut g = c.benchmark_group("framing");
    for (name, wire) in [("small", SMALL), ("typical", TYPICAL), ("chunked", CHUNKED)] {
        g.throughput(Throughput::Bytes(wire.len() as u64));
        g.bench_function(name, |b| {
            let mut f = Framer::new();
            b.iter(|| {
                f.start(false);
                let (n, done) = f.feed(black_box(wire)).unwrap();
                assert!(matches!(done, Framed::Complete(_)) && n == wire.len());
            })
        });
    }
    g.finish();
}

/// A response with the gateway's three-entry Server-Timing header: framed
/// with collection on, then its metrics recorded — what the header costs
/// an endpoint per response, against `framing/small` without it.
fn server_timing(c: &mut Criterion) {
    const TIMED: &[u8] = b"HTTP/1.1 200 OK\r\nServer: floor\r\nContent-Length: 2\r\nServer-Timing: payments;dur=8.312, inventory;dur=2.904, gateway;dur=11.530\r\n\r\nok";
    let mut g = c.benchmark_group("server_timing");
    g.bench_function("frame_and_record_3", |b| {
        let mut f = Framer::new();
        f.collect_timing(true);
        let mut t = userflux_engine::server_timing::Timings::default();
        b.iter(|| {
            f.start(false);
            let (_, done) = f.feed(black_box(TIMED)).unwrap();
            assert!(matches!(done, Framed::Complete(_)));
            t.record(f.timing());
        })
    });
    g.bench_function("record_3", |b| {
        let mut t = userflux_engine::server_timing::Timings::default();
        let value: &[u8] = b"payments;dur=8.312, inventory;dur=2.904, gateway;dur=11.530";
        b.iter(|| t.record(black_box(value)))
    });
    g.bench_function("parse_3", |b| {
        let value: &[u8] = b"payments;dur=8.312, inventory;dur=2.904, gateway;dur=11.530";
        b.iter(|| {
            let mut n = 0.0;
            userflux_engine::server_timing::parse(black_box(value), |_, d| n += d.unwrap_or(0.0));
            n
        })
    });
    g.finish();
}

fn histogram(c: &mut Criterion) {
    let mut h = new_histogram();
    let mut v = 1u64;
    c.bench_function("histogram_record", |b| {
        b.iter(|| {
            v = v.wrapping_mul(6364136223846793005).wrapping_add(1);
            userflux_engine::stats::record(&mut h, black_box(500 + (v >> 50)));
        })
    });
}

fn samples(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let file = SampleFile::create(&dir.path().join("samples.ndjson"), 1.0).unwrap();
    let mut w = SampleWriter::new(file, 1);
    let mut t = 0u64;
    let mut g = c.benchmark_group("samples");
    g.throughput(Throughput::Elements(1));
    // Bounded so the bench file stays small: a new writer every 1M lines.
    g.bench_function("encode_append", |b| {
        b.iter(|| {
            t += 1;
            if w.written >= 1_000_000 {
                let f = SampleFile::create(&dir.path().join(format!("s{t}")), 1.0).unwrap();
                w = SampleWriter::new(f, 1);
            }
            w.write(black_box(&Sample {
                t_us: t,
                endpoint: "users",
                status: Some(200),
                error: None,
                latency_us: Some(1834),
                corrected_us: None,
                bytes: 512,
                worker: 0,
                vu: 0,
                grpc_status: None,
            }));
        })
    });
    g.finish();
}

fn timer_wheel(c: &mut Criterion) {
    let t0 = Instant::now();
    c.bench_function("timer_insert_advance", |b| {
        b.iter_batched(
            || TimerWheel::new(t0),
            |mut w| {
                let mut fired = Vec::with_capacity(1024);
                for k in 0..1024u64 {
                    w.insert(t0 + Duration::from_micros(k * 977), k);
                }
                w.advance(t0 + Duration::from_secs(2), &mut fired);
                assert_eq!(fired.len(), 1024);
            },
            BatchSize::SmallInput,
        )
    });
}

fn controller(c: &mut Criterion) {
    let settings = Autoscale {
        target_rps: 1000.0,
        min_workers: 1,
        max_workers: 100,
        interval: Duration::from_secs(2),
        cooldown: Duration::from_secs(2),
        scale_up_threshold: 0.9,
        scale_down_threshold: 1.1,
        scale_up_factor: 0.25,
        scale_down_factor: 0.25,
        max_error_rate: Some(0.05),
        max_p99_ms: Some(500.0),
    };
    let eps: Vec<EndpointInput> = (0..16)
        .map(|i| EndpointInput {
            settings,
            priority: [Priority::High, Priority::Medium, Priority::Low][i % 3],
            workers: 10 + i as u32,
            last_change: None,
            observed: Some(Observation {
                rps: 100.0 * i as f64,
                p99_ms: Some(12.0),
                error_rate: 0.0,
                requests: 1000,
            }),
        })
        .collect();
    c.bench_function("autoscale_decide_16_endpoints", |b| {
        b.iter(|| decide(Duration::from_secs(10), black_box(&eps), Some(300), 20))
    });
}

/// HTTP/2: an RFC 7541 C.6.1 response block (Huffman strings, four
/// table insertions with eviction once warm) decoded, and one request and
/// its TYPICAL-like response (HEADERS + DATA) through a warm session —
/// the h2 counterpart of `framing/typical`.
fn h2(c: &mut Criterion) {
    use userflux_engine::load::protocol::h2::{Config, Event, Keep, RequestHead, Session};
    use userflux_engine::load::protocol::h2::{encode::write_field, frame, hpack::Decoder};
    let hex = |s: &str| -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    let c61 = hex(
        "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
    );
    let mut g = c.benchmark_group("h2");
    g.throughput(Throughput::Bytes(c61.len() as u64));
    g.bench_function("hpack_decode_c61", |b| {
        let mut d = Decoder::new();
        b.iter(|| {
            let mut n = 0;
            d.decode(black_box(&c61), |k, v| n += k.len() + v.len())
                .unwrap();
            n
        })
    });
    // A response as nginx would send TYPICAL's: status indexed, the rest
    // literal; then the 63-byte body.
    let mut block = Vec::new();
    for (k, v) in [
        (":status", "200"),
        ("date", "Sun, 22 Nov 2026 05:37:37 GMT"),
        ("server", "nginx"),
        ("content-type", "application/json"),
        ("content-length", "63"),
        ("cache-control", "no-cache"),
        ("x-request-id", "0f1e2d3c4b5a69788796a5b4c3d2e1f0"),
    ] {
        write_field(&mut block, k.as_bytes(), v.as_bytes());
    }
    let body = br#"{"id":42,"name":"userflux","items":[1,2,3,4,5,6,7,8],"ok":true}"#;
    let mut wire = Vec::new();
    frame::write_headers(&mut wire, 1, &block, false, 16_384);
    let data_at = wire.len();
    frame::write_data(&mut wire, 1, body, true);
    let head = RequestHead::new("GET", "http", "127.0.0.1:8080", "/api/items", []);
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("session_typical", |b| {
        let now = Instant::now();
        let mut s = Session::new(Config::default(), now);
        let mut hello = Vec::new();
        frame::write_settings(&mut hello, &[(3, 1000)]);
        s.recv(&hello, now, &mut |_| {}).unwrap();
        let mut out = Vec::new();
        let mut wire = wire.clone();
        b.iter(|| {
            let id = s.open(head.block(), None, Keep::default(), 0, now).unwrap();
            wire[5..9].copy_from_slice(&id.to_be_bytes());
            wire[data_at + 5..data_at + 9].copy_from_slice(&id.to_be_bytes());
            let mut done = 0;
            s.recv(black_box(&wire), now, &mut |e| {
                if let Event::Response(r) = e {
                    done += r.body_bytes;
                }
            })
            .unwrap();
            out.clear();
            s.write_into(&mut out);
            assert_eq!(done, 63);
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    framing,
    h2,
    server_timing,
    histogram,
    samples,
    timer_wheel,
    controller
);
criterion_main!(benches);
