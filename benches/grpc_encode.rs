//! Criterion benches of a gRPC request message's encoding per request
//! (issue #31's "templated message ≥ 0.9× a fixed message"): the same
//! `echo.SayRequest` (tests/grpc/echo.proto) written with its gRPC prefix
//! as `fixed` (encoded once, copied), `patched` (fixed part copied, two
//! templated fields — `text` and `user.id` from `{{seq}}` — rendered and
//! appended) and `full` (the same template rendered as JSON text and fully
//! encoded through prost-reflect, what a message without the patch path
//! costs). `cargo bench --bench grpc_encode`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use userflux_engine::load::grpc::{MessageScratch, MessageTemplate, compile};
use userflux_engine::template::{Ctx, Scope, Template};

fn encode(c: &mut Criterion) {
    let proto = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/grpc/echo.proto");
    let method = compile(&[proto], &[], "echo.Echo/Say", false).unwrap();
    let desc = method.input();
    let scope = Scope {
        data: &[],
        vars: None,
        env: &|_| None,
    };
    let fixed_msg = json!({
        "text": "user-1234567", "count": 3, "loud": true, "mood": "HAPPY",
        "user": {"id": 1234567, "name": "ann", "roles": ["admin", "ops"]},
        "labels": {"region": "eu", "tier": "gold"},
    });
    let templated_msg = json!({
        "text": "user-{{seq}}", "count": 3, "loud": true, "mood": "HAPPY",
        "user": {"id": "{{seq}}", "name": "ann", "roles": ["admin", "ops"]},
        "labels": {"region": "eu", "tier": "gold"},
    });
    let fixed = MessageTemplate::new(&desc, &fixed_msg, &scope).unwrap();
    let patched = MessageTemplate::new(&desc, &templated_msg, &scope).unwrap();
    assert!(matches!(fixed, MessageTemplate::Fixed(_)));
    assert!(matches!(patched, MessageTemplate::Patched { .. }));
    let full = MessageTemplate::Full {
        desc: desc.clone(),
        template: Template::parse(&templated_msg.to_string(), &scope).unwrap(),
        why: "bench".to_string(),
    };
    let mut g = c.benchmark_group("grpc_encode");
    g.throughput(Throughput::Elements(1));
    for (name, t) in [("fixed", &fixed), ("patched", &patched), ("full", &full)] {
        g.bench_function(name, |b| {
            let seq = AtomicU64::new(1_000_000);
            let mut rng = fastrand::Rng::with_seed(1);
            let mut scratch = MessageScratch::default();
            let mut out = Vec::with_capacity(256);
            b.iter(|| {
                out.clear();
                let mut ctx = Ctx::new(&seq, &mut rng);
                t.write(&mut out, &mut ctx, &mut scratch).unwrap();
                black_box(&out);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
