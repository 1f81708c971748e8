//! Bad input gets a typed error that says what to do, never a panic, and no
//! error or `Debug` output ever carries a plaintext value or a secret key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::jiff::Timestamp;
use quayside::seal::{self, Identity, Recipient, SealError};
use secrecy::{ExposeSecret, SecretString};

const TOKEN: &str = "S3CR3T-T0KEN-9f8e7d6c5b4a";

fn manifest() -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\nstringData:\n  token: {TOKEN}\n  user: robot\ndata:\n  b64: {}\n",
        STANDARD.encode(TOKEN)
    )
}

fn sealed_for(id: &Identity) -> String {
    seal::seal(
        &SecretString::from(manifest()),
        &[id.to_recipient()],
        None,
        None,
        "2026-01-01T00:00:00Z".parse::<Timestamp>().unwrap(),
    )
    .unwrap()
}

/// Fail if the formatted error (Display and Debug) holds any secret form.
fn assert_clean(e: &SealError, id: &Identity) {
    let text = format!("{e} {e:?}");
    for needle in [
        TOKEN.to_string(),
        STANDARD.encode(TOKEN),
        id.to_secret_string().expose_secret().to_string(),
    ] {
        assert!(!text.contains(&needle), "secret leaked in error: {text}");
    }
}

fn replace_line(text: &str, starts: &str, with: impl Fn(&str) -> String) -> String {
    let mut done = false;
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if !done && l.trim_start().starts_with(starts) {
                done = true;
                with(l)
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(done, "no line starting with {starts}");
    out.join("\n") + "\n"
}

/// Flip one base64 character of the `data:` part of an ENC value on the line.
fn flip_data(line: &str) -> String {
    let at = line.find("data:").unwrap() + 5;
    let mut b = line.as_bytes().to_vec();
    b[at] = if b[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(b).unwrap()
}

#[test]
fn invalid_recipients_are_rejected_with_the_reason() {
    for bad in [
        "",
        "   ",
        "age1",
        "age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG",
        "AGE-SECRET-KEY-1QQQQ",
        "not a key",
    ] {
        match bad.parse::<Recipient>() {
            Err(SealError::InvalidRecipient { .. }) => {}
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    let e = "".parse::<Recipient>().unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
    let id = Identity::generate();
    let r = id.to_recipient();
    assert_eq!(r.to_string().parse::<Recipient>().unwrap(), r);
    assert!(matches!(
        seal::seal(
            &SecretString::from(manifest()),
            &[],
            None,
            None,
            Timestamp::UNIX_EPOCH
        ),
        Err(SealError::NoRecipients)
    ));
}

#[test]
fn identities_parse_from_a_line_or_a_keygen_file_and_never_show_the_secret() {
    let id = Identity::generate();
    let line = id.to_secret_string().expose_secret().to_string();
    assert!(line.starts_with("AGE-SECRET-KEY-1"));
    let file = format!(
        "# created: 2026-01-01T00:00:00Z\n# public key: {}\n{line}\n",
        id.to_recipient()
    );
    for text in [line.as_str(), file.as_str()] {
        assert_eq!(
            Identity::parse(text).unwrap().to_recipient(),
            id.to_recipient()
        );
    }
    let debug = format!("{id:?}");
    assert!(
        !debug.contains(&line) && !debug.contains(&line[16..]),
        "{debug}"
    );
    // A damaged key: the error never echoes it.
    let damaged = format!("{}x", &line[..line.len() - 1]);
    for bad in [
        "",
        "# only a comment\n",
        damaged.as_str(),
        "AGE-SECRET-KEY-1",
        "hello",
    ] {
        let e = Identity::parse(bad).unwrap_err();
        assert!(matches!(e, SealError::InvalidIdentity { .. }), "{e:?}");
        assert!(!format!("{e} {e:?}").contains(&line[20..]), "{e}");
    }
    let two = format!(
        "{line}\n{}\n",
        Identity::generate().to_secret_string().expose_secret()
    );
    assert!(matches!(
        Identity::parse(&two),
        Err(SealError::InvalidIdentity { .. })
    ));
}

#[test]
fn an_unknown_key_in_the_sops_block_is_named() {
    let id = Identity::generate();
    let sealed = sealed_for(&id).replace(
        "    version: 3.11.0\n",
        "    version: 3.11.0\n    shamir_threshold: 2\n",
    );
    for r in [
        seal::open(&sealed, &id).map(|_| ()),
        seal::inspect(&sealed).map(|_| ()),
    ] {
        match r {
            Err(SealError::UnknownSopsKey { key }) => assert_eq!(key, "shamir_threshold"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn truncated_armor_is_an_armor_error() {
    let id = Identity::generate();
    let sealed = sealed_for(&id);
    // Drop the last body line and the END line of the armored data key.
    let lines: Vec<&str> = sealed.lines().collect();
    let end = lines
        .iter()
        .position(|l| l.contains("-----END AGE"))
        .unwrap();
    let cut: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != end && *i != end - 1)
        .map(|(_, l)| *l)
        .collect();
    let e = seal::open(&(cut.join("\n") + "\n"), &id).unwrap_err();
    assert!(matches!(e, SealError::Armor { .. }), "{e:?}");
    assert_clean(&e, &id);
}

#[test]
fn the_wrong_identity_is_told_which_recipients_would_do() {
    let (id, other) = (Identity::generate(), Identity::generate());
    let e = seal::open(&sealed_for(&id), &other).unwrap_err();
    match &e {
        SealError::NoMatchingIdentity { recipients } => {
            assert!(recipients.contains(&id.to_recipient().to_string()))
        }
        other => panic!("{other:?}"),
    }
    assert_clean(&e, &id);
}

#[test]
fn a_tampered_value_is_rejected_with_its_path_and_no_plaintext() {
    let id = Identity::generate();
    let sealed = sealed_for(&id);
    let tampered = replace_line(&sealed, "token:", flip_data);
    let e = seal::open(&tampered, &id).unwrap_err();
    match &e {
        SealError::ValueTampered { path } => assert_eq!(path, "stringData:token"),
        other => panic!("{other:?}"),
    }
    assert_clean(&e, &id);

    // A value moved to another key fails too: the path is authenticated.
    let token_enc = sealed
        .lines()
        .find(|l| l.trim_start().starts_with("token:"))
        .unwrap();
    let moved = replace_line(&sealed, "user:", |_| token_enc.replace("token:", "user:"));
    let e = seal::open(&moved, &id).unwrap_err();
    assert!(
        matches!(e, SealError::ValueTampered { ref path } if path == "stringData:user"),
        "{e:?}"
    );
}

#[test]
fn a_tampered_or_mismatched_mac_is_rejected() {
    let id = Identity::generate();
    let sealed = sealed_for(&id);
    let cases = [
        replace_line(&sealed, "mac:", flip_data),
        replace_line(&sealed, "lastmodified:", |_| {
            "    lastmodified: \"2030-01-01T00:00:00Z\"".into()
        }),
        // A readable field changed: values still decrypt, the MAC does not match.
        sealed.replace("name: x", "name: y"),
        // A leaf removed.
        sealed
            .lines()
            .filter(|l| !l.trim_start().starts_with("user:"))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n",
    ];
    for (i, case) in cases.iter().enumerate() {
        let e = seal::open(case, &id).unwrap_err();
        assert!(matches!(e, SealError::MacMismatch), "case {i}: {e:?}");
        assert_clean(&e, &id);
    }
}

#[test]
fn malformed_files_and_manifests_are_typed_errors_without_plaintext() {
    let id = Identity::generate();
    let e = seal::open(&manifest(), &id).unwrap_err();
    assert!(matches!(e, SealError::NotSealed { .. }), "{e:?}");
    assert_clean(&e, &id);
    let e = seal::inspect("- a\n- list\n").unwrap_err();
    assert!(matches!(e, SealError::Yaml { .. }), "{e:?}");

    // A broken manifest whose bad line holds the token.
    let broken = format!("kind: Secret\nstringData:\n  token: {TOKEN}\n  - {TOKEN}: [\n");
    let e = seal::seal(
        &SecretString::from(broken),
        &[id.to_recipient()],
        None,
        None,
        Timestamp::UNIX_EPOCH,
    )
    .unwrap_err();
    assert!(matches!(e, SealError::Yaml { .. }), "{e:?}");
    assert_clean(&e, &id);

    // Plaintext where a value must be encrypted.
    let sealed = sealed_for(&id);
    let plain = replace_line(&sealed, "user:", |_| "    user: robot".into());
    let e = seal::open(&plain, &id).unwrap_err();
    assert!(
        matches!(e, SealError::MalformedValue { ref path, .. } if path == "stringData:user"),
        "{e:?}"
    );
    assert!(!seal::inspect(&plain).unwrap().all_sealed());
    // Garbage in an ENC value.
    let garbage = replace_line(&sealed, "user:", |_| {
        "    user: ENC[AES256_GCM,data:%%%]".into()
    });
    let e = seal::open(&garbage, &id).unwrap_err();
    assert!(matches!(e, SealError::MalformedValue { .. }), "{e:?}");
}

#[test]
fn sealed_output_and_info_hold_no_plaintext() {
    let id = Identity::generate();
    let sealed = sealed_for(&id);
    assert!(!sealed.contains(TOKEN) && !sealed.contains(&STANDARD.encode(TOKEN)));
    let info = seal::inspect(&sealed).unwrap();
    let text = format!("{info:?}");
    assert!(!text.contains(TOKEN) && !text.contains(&STANDARD.encode(TOKEN)));
    assert!(info.all_sealed());
    assert_eq!(
        info.encrypted,
        vec!["stringData:token", "stringData:user", "data:b64"]
    );
    assert_eq!(info.recipients, vec![id.to_recipient()]);
    assert!(
        seal::open(&sealed, &id)
            .unwrap()
            .expose_secret()
            .contains(TOKEN)
    );
}

#[test]
fn no_damage_to_a_sealed_file_makes_open_or_inspect_panic() {
    let id = Identity::generate();
    let sealed = sealed_for(&id);
    let mut outcomes = (0, 0);
    // Every truncation point, and every line dropped or doubled.
    let mut cases: Vec<String> = (0..sealed.len())
        .filter(|i| sealed.is_char_boundary(*i))
        .map(|i| sealed[..i].to_string())
        .collect();
    let lines: Vec<&str> = sealed.lines().collect();
    for i in 0..lines.len() {
        let mut dropped = lines.clone();
        dropped.remove(i);
        cases.push(dropped.join("\n"));
        let mut doubled = lines.clone();
        doubled.insert(i, lines[i]);
        cases.push(doubled.join("\n"));
    }
    for case in &cases {
        let _ = seal::inspect(case);
        match seal::open(case, &id) {
            Ok(_) => {
                // Only cuts inside the (unauthenticated, as in sops) version number.
                let keep = sealed.find("version: 3").unwrap() + "version: 3".len();
                assert!(case.starts_with(&sealed[..keep]), "opened: {case}");
                outcomes.0 += 1
            }
            Err(e) => {
                outcomes.1 += 1;
                assert_clean(&e, &id);
            }
        }
    }
    assert!(outcomes.1 > 1000, "{outcomes:?}");
}
