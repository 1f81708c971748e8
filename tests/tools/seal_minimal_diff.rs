//! Re-sealing makes minimal diffs: nothing for an unchanged Secret, one line
//! (plus `lastmodified`/`mac`) for one changed value, a new age entry for a new
//! recipient, and a fresh seal when `previous` cannot be trusted.

use std::process::Command;

use k8s_openapi::jiff::Timestamp;
use quayside::seal::{self, Identity, Recipient, SealError};
use quayside_testkit::tools;
use secrecy::{ExposeSecret, SecretString};

const MANIFEST: &str = r#"apiVersion: v1
kind: Secret
metadata:
  name: web-pull
  namespace: team-a
  labels:
    app: web
type: Opaque
stringData:
  username: org+web_pull
  password: TOKEN-ONE-abc123
  other: unchanged-value
data:
  blob: aGVsbG8=
"#;

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_string())
}

fn first_seal(id: &Identity) -> String {
    seal::seal(
        &secret(MANIFEST),
        &[id.to_recipient()],
        None,
        None,
        at("2026-01-01T00:00:00Z"),
    )
    .unwrap()
}

/// Line numbers (0-based) where two texts differ; they must have as many lines.
fn changed_lines(a: &str, b: &str) -> Vec<String> {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    assert_eq!(a.len(), b.len(), "line count changed");
    a.iter()
        .zip(&b)
        .filter(|(x, y)| x != y)
        .map(|(x, _)| x.trim_start().split(':').next().unwrap().to_string())
        .collect()
}

fn enc_values(sealed: &str) -> Vec<String> {
    sealed
        .lines()
        .filter(|l| l.contains("ENC[") && !l.trim_start().starts_with("mac:"))
        .map(str::to_string)
        .collect()
}

#[test]
fn unchanged_secret_and_recipients_reseal_byte_for_byte() {
    let id = Identity::generate();
    let first = first_seal(&id);
    // Recipients given in another order, with a duplicate: still the same set.
    let other = Identity::generate();
    let two = seal::seal(
        &secret(MANIFEST),
        &[other.to_recipient(), id.to_recipient()],
        None,
        None,
        at("2026-01-01T00:00:00Z"),
    )
    .unwrap();
    let again = seal::seal(
        &secret(MANIFEST),
        &[id.to_recipient(), other.to_recipient(), id.to_recipient()],
        Some(&two),
        Some(&id),
        at("2026-06-01T00:00:00Z"),
    )
    .unwrap();
    assert_eq!(again, two);
    let again = seal::seal(
        &secret(MANIFEST),
        &[id.to_recipient()],
        Some(&first),
        Some(&id),
        at("2027-01-01T00:00:00Z"),
    )
    .unwrap();
    assert_eq!(again, first);
}

#[test]
fn one_changed_value_changes_only_its_line_and_mac_and_lastmodified() {
    let id = Identity::generate();
    let first = first_seal(&id);
    let changed = MANIFEST.replace("TOKEN-ONE-abc123", "TOKEN-TWO-def456");
    let second = seal::seal(
        &secret(&changed),
        &[id.to_recipient()],
        Some(&first),
        Some(&id),
        at("2026-02-02T00:00:00Z"),
    )
    .unwrap();
    assert_eq!(
        changed_lines(&first, &second),
        vec!["password", "lastmodified", "mac"]
    );
    assert!(second.contains("lastmodified: \"2026-02-02T00:00:00Z\""));
    assert!(
        seal::open(&second, &id)
            .unwrap()
            .expose_secret()
            .contains("TOKEN-TWO-def456")
    );
}

#[test]
fn a_changed_readable_field_keeps_every_ciphertext() {
    let id = Identity::generate();
    let first = first_seal(&id);
    let relabelled = MANIFEST.replace("app: web", "app: website");
    let second = seal::seal(
        &secret(&relabelled),
        &[id.to_recipient()],
        Some(&first),
        Some(&id),
        at("2026-02-02T00:00:00Z"),
    )
    .unwrap();
    assert_eq!(
        changed_lines(&first, &second),
        vec!["app", "lastmodified", "mac"]
    );
}

#[test]
fn an_added_recipient_rewraps_the_key_and_touches_no_value() {
    let (a, b) = (Identity::generate(), Identity::generate());
    let first = first_seal(&a);
    let second = seal::seal(
        &secret(MANIFEST),
        &[a.to_recipient(), b.to_recipient()],
        Some(&first),
        Some(&a),
        at("2026-03-03T00:00:00Z"),
    )
    .unwrap();
    assert_eq!(enc_values(&first), enc_values(&second));
    // The existing recipient's wrapped key is kept verbatim.
    let enc_of = |s: &str, r: &Recipient| -> String {
        let v: serde_norway::Value = serde_norway::from_str(s).unwrap();
        v["sops"]["age"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|e| e["recipient"].as_str() == Some(&r.to_string()))
            .map(|e| e["enc"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(
        enc_of(&first, &a.to_recipient()),
        enc_of(&second, &a.to_recipient())
    );
    for id in [&a, &b] {
        assert_eq!(
            seal::open(&second, id).unwrap().expose_secret(),
            seal::open(&first, &a).unwrap().expose_secret()
        );
    }
    // And the real sops agrees, with the new recipient's key.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.sops.yaml");
    let key = dir.path().join("b.txt");
    std::fs::write(&file, &second).unwrap();
    std::fs::write(&key, b.to_secret_string().expose_secret()).unwrap();
    let out = Command::new(tools::bin("sops"))
        .args(["--decrypt"])
        .arg(&file)
        .env("SOPS_AGE_KEY_FILE", &key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("TOKEN-ONE-abc123")
    );
}

#[test]
fn a_removed_recipient_gets_a_fresh_data_key_it_never_had() {
    let (a, b) = (Identity::generate(), Identity::generate());
    let both = seal::seal(
        &secret(MANIFEST),
        &[a.to_recipient(), b.to_recipient()],
        None,
        None,
        at("2026-01-01T00:00:00Z"),
    )
    .unwrap();
    let only_a = seal::seal(
        &secret(MANIFEST),
        &[a.to_recipient()],
        Some(&both),
        Some(&a),
        at("2026-01-02T00:00:00Z"),
    )
    .unwrap();
    let shared: Vec<_> = enc_values(&only_a)
        .into_iter()
        .filter(|l| enc_values(&both).contains(l))
        .collect();
    assert!(
        shared.is_empty(),
        "values reused under the old key: {shared:?}"
    );
    assert!(matches!(
        seal::open(&only_a, &b),
        Err(SealError::NoMatchingIdentity { .. })
    ));
    assert!(seal::open(&only_a, &a).is_ok());
}

#[test]
fn an_unusable_previous_file_is_ignored_and_nothing_of_it_reused() {
    let id = Identity::generate();
    let stranger = Identity::generate();
    let theirs = first_seal(&stranger);
    let mut tampered = first_seal(&id);
    tampered = tampered.replacen("lastmodified: \"2026", "lastmodified: \"2025", 1);
    for previous in [
        "not: [valid yaml",
        "just: a map\n",
        theirs.as_str(),
        tampered.as_str(),
        "",
    ] {
        let out = seal::seal(
            &secret(MANIFEST),
            &[id.to_recipient()],
            Some(previous),
            Some(&id),
            at("2026-05-05T00:00:00Z"),
        )
        .unwrap();
        assert!(seal::open(&out, &id).is_ok());
        for line in enc_values(&out) {
            assert!(!previous.contains(&line), "reused {line}");
        }
    }
    // Without an identity the previous file cannot be checked: sealed afresh.
    let first = first_seal(&id);
    let out = seal::seal(
        &secret(MANIFEST),
        &[id.to_recipient()],
        Some(&first),
        None,
        at("2026-05-05T00:00:00Z"),
    )
    .unwrap();
    assert_ne!(out, first);
}
