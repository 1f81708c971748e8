//! The sealed format against the real tools, both ways: files we write open
//! with `sops` and their data key with `age`; files `sops` wrote (kept under
//! `fixtures/sops/`, made with the committed test key) open with ours.

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::jiff::Timestamp;
use quayside::seal::{self, Identity, Recipient};
use quayside_testkit::tools;
use secrecy::{ExposeSecret, SecretString};

const SHAPES: [&str; 4] = ["dockerconfigjson", "data", "multi", "nested"];

fn fixtures() -> PathBuf {
    tools::root().join("fixtures/sops")
}

fn key_file(n: u8) -> PathBuf {
    fixtures().join(if n == 1 {
        "test-key.txt"
    } else {
        "test-key-2.txt"
    })
}

fn identity(n: u8) -> Identity {
    Identity::parse(&std::fs::read_to_string(key_file(n)).unwrap()).unwrap()
}

fn plain(shape: &str) -> String {
    std::fs::read_to_string(fixtures().join("plain").join(format!("{shape}.yaml"))).unwrap()
}

fn yaml(s: &str) -> serde_norway::Value {
    serde_norway::from_str(s).unwrap()
}

fn now() -> Timestamp {
    "2026-11-27T12:00:00Z".parse().unwrap()
}

/// `sops --decrypt` of `file` with `key`; panics with sops's stderr on failure.
fn sops_decrypt(file: &Path, key: &Path) -> String {
    let out = Command::new(tools::bin("sops"))
        .args(["--decrypt", "--input-type", "yaml", "--output-type", "yaml"])
        .arg(file)
        .env("SOPS_AGE_KEY_FILE", key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sops --decrypt failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn write_tmp(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn files_sops_wrote_open_with_ours_mac_verified() {
    for shape in SHAPES {
        let sealed =
            std::fs::read_to_string(fixtures().join(format!("{shape}.sops.yaml"))).unwrap();
        let opened = seal::open(&sealed, &identity(1)).unwrap_or_else(|e| panic!("{shape}: {e}"));
        assert_eq!(yaml(opened.expose_secret()), yaml(&plain(shape)), "{shape}");
        // And the same as what sops itself decrypts to.
        let by_sops = sops_decrypt(&fixtures().join(format!("{shape}.sops.yaml")), &key_file(1));
        assert_eq!(yaml(opened.expose_secret()), yaml(&by_sops), "{shape}");
    }
}

#[test]
fn a_second_recipient_of_a_sops_file_opens_it_too() {
    let sealed = std::fs::read_to_string(fixtures().join("nested.sops.yaml")).unwrap();
    let opened = seal::open(&sealed, &identity(2)).unwrap();
    assert_eq!(yaml(opened.expose_secret()), yaml(&plain("nested")));
    let info = seal::inspect(&sealed).unwrap();
    assert_eq!(
        info.recipients,
        vec![identity(1).to_recipient(), identity(2).to_recipient()]
    );
}

#[test]
fn files_we_write_decrypt_with_sops() {
    let dir = tempfile::tempdir().unwrap();
    for shape in SHAPES {
        let sealed = seal::seal(
            &SecretString::from(plain(shape)),
            &[identity(1).to_recipient(), identity(2).to_recipient()],
            None,
            None,
            now(),
        )
        .unwrap();
        let file = write_tmp(&dir, &format!("{shape}.sops.yaml"), &sealed);
        for n in [1, 2] {
            let by_sops = sops_decrypt(&file, &key_file(n));
            assert_eq!(yaml(&by_sops), yaml(&plain(shape)), "{shape} with key {n}");
        }
    }
}

#[test]
fn files_sealed_in_one_batch_share_a_data_key_and_each_decrypts_with_sops() {
    let dir = tempfile::tempdir().unwrap();
    let recipients = [identity(1).to_recipient(), identity(2).to_recipient()];
    let mut batch = seal::SealBatch::default();
    let mut stanzas = Vec::new();
    for shape in SHAPES {
        let sealed = batch
            .seal(
                &SecretString::from(plain(shape)),
                &recipients,
                None,
                None,
                now(),
            )
            .unwrap();
        let sops_block = sealed.split("\nsops:\n").nth(1).unwrap();
        stanzas.push(sops_block.split("lastmodified").next().unwrap().to_string());
        let file = write_tmp(&dir, &format!("batch-{shape}.sops.yaml"), &sealed);
        for n in [1, 2] {
            let by_sops = sops_decrypt(&file, &key_file(n));
            assert_eq!(yaml(&by_sops), yaml(&plain(shape)), "{shape} with key {n}");
        }
    }
    stanzas.dedup();
    assert_eq!(stanzas.len(), 1, "one set of age stanzas for the batch");
}

#[test]
fn our_data_key_decrypts_with_the_age_cli_to_32_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let sealed = seal::seal(
        &SecretString::from(plain("dockerconfigjson")),
        &[identity(1).to_recipient()],
        None,
        None,
        now(),
    )
    .unwrap();
    let enc = yaml(&sealed)["sops"]["age"][0]["enc"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(enc.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"));
    let file = write_tmp(&dir, "key.age", &enc);
    let out = Command::new(tools::bin("age"))
        .arg("--decrypt")
        .arg("-i")
        .arg(key_file(1))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), 32);
}

#[test]
fn our_layout_is_sops_layout_so_resealing_a_sops_file_changes_nothing() {
    // Resealing what sops wrote, for the same recipient and plaintext, must
    // give sops's bytes back: same key order, quoting, indentation and blocks.
    for shape in ["dockerconfigjson", "data", "multi"] {
        let sealed =
            std::fs::read_to_string(fixtures().join(format!("{shape}.sops.yaml"))).unwrap();
        let again = seal::seal(
            &SecretString::from(plain(shape)),
            &[identity(1).to_recipient()],
            Some(&sealed),
            Some(&identity(1)),
            now(),
        )
        .unwrap();
        assert_eq!(again, sealed, "{shape}");
    }
}

#[test]
fn sops_files_keep_values_readable_for_review_and_secrets_sealed() {
    for shape in SHAPES {
        let sealed =
            std::fs::read_to_string(fixtures().join(format!("{shape}.sops.yaml"))).unwrap();
        let info = seal::inspect(&sealed).unwrap();
        assert!(info.all_sealed(), "{shape}: {:?}", info.unsealed);
        assert!(!info.encrypted.is_empty());
        assert!(info.lastmodified.ends_with('Z'));
        assert!(
            info.lastmodified_at()
                .is_some_and(|t| t.as_second() > 1_700_000_000)
        );
        assert!(sealed.contains("kind: Secret"));
    }
}

#[test]
fn a_value_changed_by_us_still_decrypts_with_sops_and_age_after_a_recipient_is_added() {
    let dir = tempfile::tempdir().unwrap();
    let r1: Recipient = identity(1).to_recipient();
    let first = std::fs::read_to_string(fixtures().join("data.sops.yaml")).unwrap();
    let changed = plain("data").replace("YWRtaW4=", "cm9vdA==");
    let second = seal::seal(
        &SecretString::from(changed.clone()),
        &[r1.clone(), identity(2).to_recipient()],
        Some(&first),
        Some(&identity(1)),
        now(),
    )
    .unwrap();
    let file = write_tmp(&dir, "s.sops.yaml", &second);
    for n in [1, 2] {
        assert_eq!(yaml(&sops_decrypt(&file, &key_file(n))), yaml(&changed));
    }
}

#[test]
fn awkward_values_survive_our_seal_and_sops_decrypt() {
    let awkward = [
        "",
        "yes",
        "0777",
        "1e3",
        "null",
        " leading and trailing ",
        "multi\nline\n",
        "no final newline\nsecond",
        "two trailing\n\n",
        "tab\tand \"quotes\" and 'single'",
        "{\"json\": [1, 2]}",
        "- not a list",
        "# not a comment",
        "ünïcødé ✓ 🚀",
        "back\\slash",
        "ctrl\u{7}bell",
        "key: value",
        "~",
        "on",
        "3.11.0",
        "1:20",
        ".5",
        "+1",
        "0x1F",
        "-",
        "a:",
        "@x",
        "x #y",
        "&a",
        "tab\tin\nblock\n",
    ];
    let mut manifest =
        String::from("apiVersion: v1\nkind: Secret\nmetadata:\n  name: awkward\n  annotations:\n");
    for (i, v) in awkward.iter().enumerate() {
        manifest.push_str(&format!(
            "    a{i}: {}\n",
            serde_json::to_string(v).unwrap()
        ));
    }
    manifest.push_str("stringData:\n");
    for (i, v) in awkward.iter().enumerate() {
        manifest.push_str(&format!("  k{i}: {}\n", serde_json::to_string(v).unwrap()));
    }
    let sealed = seal::seal(
        &SecretString::from(manifest.clone()),
        &[identity(1).to_recipient()],
        None,
        None,
        now(),
    )
    .unwrap();
    let ours = seal::open(&sealed, &identity(1)).unwrap();
    assert_eq!(yaml(ours.expose_secret()), yaml(&manifest));
    let dir = tempfile::tempdir().unwrap();
    let file = write_tmp(&dir, "awkward.sops.yaml", &sealed);
    assert_eq!(yaml(&sops_decrypt(&file, &key_file(1))), yaml(&manifest));
    // And sops's own encryption of it opens with ours.
    let plain = write_tmp(&dir, "awkward.yaml", &manifest);
    let out = Command::new(tools::bin("sops"))
        .args([
            "--encrypt",
            "--encrypted-regex",
            "^(data|stringData)$",
            "--age",
        ])
        .arg(identity(1).to_recipient().to_string())
        .arg(&plain)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let by_sops = String::from_utf8(out.stdout).unwrap();
    let opened = seal::open(&by_sops, &identity(1)).unwrap();
    assert_eq!(yaml(opened.expose_secret()), yaml(&manifest));
    // Our writer quotes and blocks these exactly as sops does: re-sealing
    // sops's file gives its bytes back.
    let again = seal::seal(
        &SecretString::from(manifest),
        &[identity(1).to_recipient()],
        Some(&by_sops),
        Some(&identity(1)),
        now(),
    )
    .unwrap();
    assert_eq!(again, by_sops);
}

#[test]
fn files_sops_wrote_with_its_other_rules_open_with_ours() {
    // Not what quayside writes, but what a person running sops may commit.
    let dir = tempfile::tempdir().unwrap();
    let plain_file = fixtures().join("plain/nested.yaml");
    let r = identity(1).to_recipient().to_string();
    for rule in [
        vec![],
        vec!["--unencrypted-suffix", "_plain"],
        vec!["--encrypted-suffix", "Data"],
        vec!["--unencrypted-regex", "^(apiVersion|kind|metadata)$"],
        vec![
            "--encrypted-regex",
            "^(data|stringData)$",
            "--mac-only-encrypted",
        ],
    ] {
        let out = Command::new(tools::bin("sops"))
            .args(["--encrypt", "--age", &r])
            .args(&rule)
            .arg(&plain_file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{rule:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let by_sops = String::from_utf8(out.stdout).unwrap();
        let opened = seal::open(&by_sops, &identity(1)).unwrap_or_else(|e| panic!("{rule:?}: {e}"));
        assert_eq!(
            yaml(opened.expose_secret()),
            yaml(&plain("nested")),
            "{rule:?}"
        );
        // Resealing converts it to quayside's rule, and sops still reads it.
        let ours = seal::seal(
            &opened,
            &[identity(1).to_recipient()],
            Some(&by_sops),
            Some(&identity(1)),
            now(),
        )
        .unwrap();
        assert!(
            ours.contains("encrypted_regex: ^(data|stringData)$"),
            "{rule:?}"
        );
        let file = write_tmp(&dir, "converted.sops.yaml", &ours);
        assert_eq!(
            yaml(&sops_decrypt(&file, &key_file(1))),
            yaml(&plain("nested")),
            "{rule:?}"
        );
    }
}
