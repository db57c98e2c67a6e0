//! Every input in the fuzz corpora (fuzz/corpus/<target>/) through the same
//! entry points the fuzz targets use, as an ordinary test: seeds and any
//! input a fuzzer once found (a regression test named after it) keep passing.

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| f(&data));
        assert!(result.is_ok(), "{} panicked", path.display());
        n += 1;
    }
    n
}

#[test]
fn the_framing_corpus_never_panics() {
    assert!(replay("framing", userflux_engine::fuzzing::framing) >= 5);
}

#[test]
fn the_config_corpus_never_panics() {
    assert!(replay("config", userflux_engine::fuzzing::config) >= 5);
}

#[test]
fn the_template_corpus_never_panics() {
    assert!(replay("template", userflux_engine::fuzzing::template) >= 5);
}

#[test]
fn the_hpack_decode_corpus_never_panics() {
    assert!(
        replay(
            "hpack_decode",
            userflux_engine::load::protocol::h2::fuzzing::hpack_decode
        ) >= 5
    );
}

#[test]
fn the_h2_session_corpus_never_panics() {
    assert!(
        replay(
            "h2_session",
            userflux_engine::load::protocol::h2::fuzzing::h2_session
        ) >= 5
    );
}

#[test]
fn the_grpc_response_corpus_never_panics() {
    assert!(
        replay(
            "grpc_response",
            userflux_engine::load::grpc::fuzzing::grpc_response
        ) >= 5
    );
}

#[test]
fn the_grpc_reflection_corpus_never_panics() {
    assert!(
        replay(
            "grpc_reflection",
            userflux_engine::load::grpc::fuzzing::grpc_reflection
        ) >= 5
    );
}

#[test]
fn the_plan_corpus_builds_plans_and_runs_that_end() {
    assert!(replay("plan", userflux_engine::fuzzing::plan) >= 5);
}

/// A bounded, deterministic mutation pass over each corpus: flips, inserts,
/// deletions and splices, 20,000 inputs per target. Cheaper than libFuzzer
/// and run on every `make test`; the coverage-guided runs are in fuzz/.
fn mutate_corpus(target: &str, f: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for i in 0..20_000 {
        let mut data = seeds[i % seeds.len()].clone();
        for _ in 0..1 + next() % 4 {
            let at = if data.is_empty() {
                0
            } else {
                (next() as usize) % data.len()
            };
            match next() % 5 {
                0 if !data.is_empty() => data[at] ^= 1 << (next() % 8),
                1 => data.insert(at, next() as u8),
                2 if !data.is_empty() => {
                    data.remove(at);
                }
                3 => {
                    let tail = data[at..].to_vec();
                    data.extend_from_slice(&tail);
                }
                _ => data.insert(at, b"\r\n0123456789abcdef:;{}\",[]"[(next() % 24) as usize]),
            }
        }
        let result = std::panic::catch_unwind(|| f(&data));
        assert!(
            result.is_ok(),
            "{target} panicked on {:?}",
            String::from_utf8_lossy(&data)
        );
    }
}

#[test]
fn mutations_of_the_framing_corpus_never_panic() {
    mutate_corpus("framing", userflux_engine::fuzzing::framing);
}

#[test]
fn mutations_of_the_config_corpus_never_panic() {
    mutate_corpus("config", userflux_engine::fuzzing::config);
}

#[test]
fn mutations_of_the_template_corpus_never_panic() {
    mutate_corpus("template", userflux_engine::fuzzing::template);
}

#[test]
fn mutations_of_the_hpack_decode_corpus_never_panic() {
    mutate_corpus(
        "hpack_decode",
        userflux_engine::load::protocol::h2::fuzzing::hpack_decode,
    );
}

#[test]
fn mutations_of_the_h2_session_corpus_never_panic() {
    mutate_corpus(
        "h2_session",
        userflux_engine::load::protocol::h2::fuzzing::h2_session,
    );
}

#[test]
fn mutations_of_the_grpc_response_corpus_never_panic() {
    mutate_corpus(
        "grpc_response",
        userflux_engine::load::grpc::fuzzing::grpc_response,
    );
}

#[test]
fn mutations_of_the_grpc_reflection_corpus_never_panic() {
    mutate_corpus(
        "grpc_reflection",
        userflux_engine::load::grpc::fuzzing::grpc_reflection,
    );
}
