//! Fuzz the sealed-file reader: `inspect` and `open` take whatever is in the
//! side repository, so any bytes must give a value or a typed error, never a
//! panic. When a file does open, sealing its plaintext again (with the file as
//! `previous`) must give a file that opens to the same plaintext.
//!
//! Seeds: `fixtures/sops/*.sops.yaml`, written by the real `sops` for the
//! committed test key used here, so mutations start from files that open.

#![no_main]

use std::sync::LazyLock;

use k8s_openapi::jiff::Timestamp;
use libfuzzer_sys::fuzz_target;
use quayside::seal::{self, Identity};
use secrecy::ExposeSecret;

static IDENTITY: LazyLock<Identity> = LazyLock::new(|| {
    Identity::parse(include_str!("../../fixtures/sops/test-key.txt"))
        .expect("the committed test key parses")
});

fuzz_target!(|data: &[u8]| {
    // The side repository's files are read as UTF-8 text; other bytes never reach the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    if let Ok(info) = seal::inspect(text) {
        // Every reported path is either sealed or not, never both.
        for p in &info.encrypted {
            assert!(
                !info.unsealed.contains(p),
                "path {p:?} both sealed and unsealed"
            );
        }
    }

    let Ok(plain) = seal::open(text, &IDENTITY) else {
        return;
    };
    let now: Timestamp = "2026-06-01T00:00:00Z".parse().expect("fixed timestamp");
    let recipient = IDENTITY.to_recipient();
    let resealed = seal::seal(
        &plain,
        std::slice::from_ref(&recipient),
        Some(text),
        Some(&IDENTITY),
        now,
    )
    .unwrap_or_else(|e| panic!("the plaintext of a file that opened does not seal again: {e}"));
    let reopened = seal::open(&resealed, &IDENTITY)
        .unwrap_or_else(|e| panic!("a file we just sealed does not open: {e}\n{resealed}"));
    assert_eq!(
        plain.expose_secret(),
        reopened.expose_secret(),
        "seal/open round trip changed the plaintext"
    );
    let info = seal::inspect(&resealed).expect("a file we just sealed inspects");
    assert_eq!(
        info.recipients,
        vec![recipient],
        "resealed for exactly our recipient"
    );
    assert!(
        info.all_sealed(),
        "resealed file has plaintext leaves: {:?}",
        info.unsealed
    );
});
