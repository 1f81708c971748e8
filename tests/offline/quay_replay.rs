//! Every answer recorded from a real Quay server
//! (`fixtures/quay-recorded/real-quay-api.json`, see its README) replayed
//! against the emulator in order: the same status, content type, JSON key
//! set (nested too) and message text; volatile values (tokens, timestamps,
//! status tokens, avatar hashes) compared by shape. What is not compared is
//! listed in docs/quay.md ("The emulator against the recording").

use std::path::Path;
use std::time::Duration;

use quay_emulator::{Emulator, EmulatorConfig, TokenAccess};
use serde_json::Value;

const ORG: &str = "buynlarge";
const ADMIN: &str = "replay-org-admin-token";
const READ_SCOPE: &str = "replay-repo-read-scope-token";
const NON_ADMIN: &str = "replay-creator-token";
const READER: &str = "replay-reader-token";

/// One recorded request and Quay's answer.
struct Pair {
    label: String,
    method: String,
    path: String,
    req: Value,
    status: u16,
    content_type: Option<String>,
    json: Value,
    text: Option<String>,
}

fn pairs() -> Vec<Pair> {
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/quay-recorded/real-quay-api.json");
    let all: Vec<Value> = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    all.into_iter()
        .map(|p| Pair {
            label: p["label"].as_str().unwrap().to_string(),
            method: p["method"].as_str().unwrap().to_string(),
            path: p["path"].as_str().unwrap().to_string(),
            req: p["req"].clone(),
            status: p["status"].as_u64().unwrap() as u16,
            content_type: p["headers"]["Content-Type"].as_str().map(str::to_string),
            json: p["json"].clone(),
            text: p["text"].as_str().map(str::to_string),
        })
        .collect()
}

/// The bearer token the README's table gives each label prefix.
fn token_for(label: &str) -> Option<&'static str> {
    match label.split('.').take(2).collect::<Vec<_>>().as_slice() {
        ["auth", "none"] => None,
        ["auth", "bad"] => Some("a-token-quay-never-issued"),
        ["auth", "scope"] => Some(READ_SCOPE),
        ["auth", "nonadmin"] => Some(NON_ADMIN),
        ["auth", "reader"] => Some(READER),
        _ => Some(ADMIN),
    }
}

fn config() -> EmulatorConfig {
    EmulatorConfig::new(ORG, ADMIN)
        .with_token(READ_SCOPE, TokenAccess::read_scope_only())
        .with_token(NON_ADMIN, TokenAccess::creator())
        .with_token(READER, TokenAccess::reader())
}

/// What the emulator answered.
struct Got {
    status: u16,
    content_type: Option<String>,
    body: String,
}

async fn send(http: &reqwest::Client, api: &str, p: &Pair) -> Got {
    let method = reqwest::Method::from_bytes(p.method.as_bytes()).unwrap();
    let url = format!("{api}{}", p.path.trim_start_matches("/api/v1"));
    let mut req = http.request(method, url);
    if let Some(t) = token_for(&p.label) {
        req = req.bearer_auth(t);
    }
    if !p.req.is_null() {
        req = req.json(&p.req);
    }
    let r = req.send().await.unwrap();
    Got {
        status: r.status().as_u16(),
        content_type: r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string()),
        body: r.text().await.unwrap(),
    }
}

/// Values that differ on every run: compared by their shape.
fn volatile(path: &str, want: &str, got: &str) -> Option<bool> {
    let shape = |re: &str| regex::Regex::new(re).unwrap().is_match(got);
    let key = path.rsplit('.').next().unwrap_or_default();
    Some(match key {
        "token" => shape("^[A-Z0-9]{64}$"),
        "created" => shape(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} -0000$"),
        "status_token" if want.is_empty() => got.is_empty(),
        "status_token" => shape("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
        "hash" => shape("^[0-9a-f]{64}$"),
        "color" => shape("^#[0-9a-f]{6}$"),
        _ => return None,
    })
}

/// Differences between the recorded JSON and the emulator's, by path.
fn compare(path: &str, want: &Value, got: &Value, host: &str, out: &mut Vec<String>) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            let wk: Vec<_> = w.keys().collect();
            let gk: Vec<_> = g.keys().collect();
            if wk != gk {
                out.push(format!("{path}: keys {wk:?} recorded, {gk:?} served"));
            }
            for (k, wv) in w {
                if let Some(gv) = g.get(k) {
                    compare(&format!("{path}.{k}"), wv, gv, host, out);
                }
            }
        }
        (Value::String(w), Value::String(g)) => {
            let w = w.replace("{quay-host}", host);
            match volatile(path, &w, g) {
                Some(true) => {}
                Some(false) => out.push(format!("{path}: {g:?} is not shaped like {w:?}")),
                None if &w != g => out.push(format!("{path}: {w:?} recorded, {g:?} served")),
                None => {}
            }
        }
        (w, g) if w != g => out.push(format!("{path}: {w} recorded, {g} served")),
        _ => {}
    }
}

fn differences(p: &Pair, got: &Got, host: &str) -> Vec<String> {
    let mut out = Vec::new();
    if got.status != p.status {
        out.push(format!(
            "status {} recorded, {} served",
            p.status, got.status
        ));
    }
    if got.content_type != p.content_type {
        out.push(format!(
            "content type {:?} recorded, {:?} served",
            p.content_type, got.content_type
        ));
    }
    match (&p.json, &p.text) {
        // A JSON body (`null` included: recorded as text "null\n").
        (Value::Null, Some(text)) if text.trim() == "null" => {
            if got.body.trim() != "null" {
                out.push(format!("body {text:?} recorded, {:?} served", got.body));
            }
        }
        (Value::Null, Some(text)) if text.is_empty() => {
            if !got.body.is_empty() {
                out.push(format!("an empty body recorded, {:?} served", got.body));
            }
        }
        // Text (an HTML page): the recording keeps its first 300 bytes.
        (Value::Null, Some(text)) => {
            if got.body.get(..text.len()) != Some(text.as_str()) {
                out.push(format!("body {text:?} recorded, {:?} served", got.body));
            }
        }
        (want, _) => match serde_json::from_str::<Value>(&got.body) {
            Ok(g) => compare("$", want, &g, host, &mut out),
            Err(_) => out.push(format!("JSON recorded, {:?} served", got.body)),
        },
    }
    out
}

#[tokio::test]
async fn the_emulator_answers_every_recorded_request_as_quay_did() {
    let e = Emulator::start("127.0.0.1:0".parse().unwrap(), config())
        .await
        .unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let pairs = pairs();
    assert_eq!(pairs.len(), 67, "the recording holds 67 pairs");
    let mut failures = Vec::new();
    for p in &pairs {
        let got = send(&http, &e.api_url(), p).await;
        for d in differences(p, &got, &e.registry_host()) {
            failures.push(format!("{} ({} {}): {d}", p.label, p.method, p.path));
        }
    }
    assert!(
        failures.is_empty(),
        "{} difference(s) from the real Quay:\n{}",
        failures.len(),
        failures.join("\n")
    );
    e.shutdown().await;
}
