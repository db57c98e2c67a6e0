//! Entry points for the fuzz targets in `fuzz/` and for the test that
//! replays their corpus (`tests/fuzz_corpus.rs`): the same code runs under
//! libFuzzer and under `cargo test`. Each must never panic, whatever the
//! input, and must keep its own invariants.

use crate::framing::{Framed, Framer};

/// Response framing: the input's first byte chooses HEAD or not and where
/// to cut the rest into two reads; everything after is the server's bytes,
/// framed response after response until it runs out, then an EOF.
pub fn framing(data: &[u8]) {
    let Some((&ctl, wire)) = data.split_first() else {
        return;
    };
    let head_request = ctl & 1 == 1;
    let cut = if wire.is_empty() {
        0
    } else {
        ctl as usize % (wire.len() + 1)
    };
    let mut f = Framer::new();
    f.start(head_request);
    for mut piece in [&wire[..cut], &wire[cut..]] {
        while !piece.is_empty() {
            match f.feed(piece) {
                Err(_) => return, // a counted parse error; the connection would close
                Ok((n, framed)) => {
                    assert!(n <= piece.len(), "consumed more than it was given");
                    if let Framed::Partial = framed {
                        assert_eq!(n, piece.len(), "a partial feed uses all its input");
                    } else {
                        f.start(head_request);
                    }
                    piece = &piece[n..];
                }
            }
        }
    }
    let _ = f.eof();
}

/// Config parsing: any bytes, in any accepted form, are either a config or
/// errors with messages — never a panic.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match crate::config::Config::parse_migrating(text).and_then(|(c, _)| c.resolve()) {
        Ok(c) => {
            // A resolved config survives the round trip it makes through config.json.
            let again =
                crate::config::Config::from_json(&serde_json::to_string(&c).expect("serializes"));
            assert!(
                again.is_ok(),
                "a resolved config must re-validate: {again:?}"
            );
        }
        Err(e) => assert!(!e.problems.is_empty()),
    }
}
