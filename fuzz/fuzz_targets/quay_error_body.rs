//! Fuzz the Quay client's reading of error answers, end to end: a local HTTP
//! server answers with the fuzzed status and body, and the real `QuayClient`
//! turns it into a `QuayError`. Its message goes into status conditions and
//! events, so it must be short whatever Quay sends, and it must never carry the
//! OAuth token even when the server echoes it back.
//!
//! Input (via `arbitrary`): a status, where to splice the OAuth token in
//! (if at all), and either raw body bytes or a JSON object whose error fields
//! (`error_message`, `message`, `error`, ...) hold the fuzzed text repeated:
//! libFuzzer grows raw inputs slowly, and long texts are what a length bound
//! is about.

#![no_main]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use quayside::quay::{QuayClient, QuayConfig, QuayError, RetryPolicy, Role};

/// Longest message we accept from the client: an Event's note is limited to
/// 1 KiB, and a condition message should be readable at a glance.
const MAX_MESSAGE_BYTES: usize = 1024;

/// Long, and not something a fuzzer will stumble on.
const TOKEN: &str = "oauth-token-8f3e1c0a9b7d45e2a6c4f1e0d9b8a7c6";

const STATUSES: [u16; 10] = [400, 401, 402, 403, 404, 409, 418, 429, 500, 503];

/// The answer the server gives next: status and body.
static ANSWER: Mutex<(u16, Vec<u8>)> = Mutex::new((400, Vec::new()));

struct Fixture {
    runtime: tokio::runtime::Runtime,
    client: QuayClient,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let addr = serve();
    // One fixed file (same content for every run) so runs leave no litter behind.
    let token_file = std::env::temp_dir().join("quayside-fuzz-oauth-token");
    std::fs::write(&token_file, TOKEN).expect("write the token file");
    let mut cfg = QuayConfig::new(&format!("http://{addr}/api/v1"), "fuzzorg", token_file);
    cfg.timeout = Duration::from_secs(10);
    // One attempt: 429 and 5xx come back as `Exhausted` at once, carrying the message.
    cfg.retry = RetryPolicy {
        max_attempts: 1,
        base: Duration::from_millis(1),
        max_delay: Duration::from_millis(1),
    };
    Fixture {
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime"),
        client: QuayClient::new(cfg).expect("client for the local server"),
    }
});

/// Fields Quay uses for error text, plus one it does not.
const FIELDS: [&str; 5] = [
    "error_message",
    "message",
    "error",
    "error_description",
    "detail",
];

type Input<'a> = (u8, Option<u16>, Option<(u8, u8)>, &'a [u8]);

fuzz_target!(|input: Input| {
    let (status, token_at, json, raw) = input;
    let status = STATUSES[usize::from(status) % STATUSES.len()];
    let splice = |bytes: &mut Vec<u8>| {
        if let Some(at) = token_at {
            let at = usize::from(at).min(bytes.len());
            bytes.splice(at..at, TOKEN.bytes());
        }
    };
    let body = match json {
        None => {
            let mut body = raw.to_vec();
            splice(&mut body);
            body
        }
        // `fields` picks which error fields are present (bit i: FIELDS[i]),
        // each holding the text `repeat + 1` times.
        Some((fields, repeat)) => {
            let mut text = String::from_utf8_lossy(raw).repeat(usize::from(repeat) + 1);
            // Splice on a character boundary so the token stays whole.
            if let Some(at) = token_at {
                let mut at = usize::from(at).min(text.len());
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text.insert_str(at, TOKEN);
            }
            let object: serde_json::Map<String, serde_json::Value> = FIELDS
                .iter()
                .enumerate()
                .filter(|(i, _)| fields & (1 << i) != 0)
                .map(|(_, k)| (k.to_string(), serde_json::Value::String(text.clone())))
                .collect();
            serde_json::to_vec(&object).expect("a JSON object serialises")
        }
    };
    *ANSWER.lock().unwrap() = (status, body);

    let f = &*FIXTURE;
    let result = f
        .runtime
        .block_on(f.client.grant("team/app", "team_app_pull", Role::Read));
    let err = match result {
        Ok(()) => panic!("a {status} answer was taken as success"),
        Err(e) => e,
    };
    let message = match &err {
        QuayError::Invalid { message }
        | QuayError::Unauthorized { message, .. }
        | QuayError::PlanLimit { message, .. }
        | QuayError::Forbidden { message, .. }
        | QuayError::NotFound { message, .. }
        | QuayError::Unexpected { message, .. } => message,
        QuayError::Exhausted { last, .. } => last,
        other => panic!("a {status} answer gave {other:?}"),
    };
    assert!(
        message.len() <= MAX_MESSAGE_BYTES,
        "a {status} answer gave a message of {} bytes",
        message.len()
    );
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains(TOKEN), "the OAuth token leaked: {text}");
    }
});

/// A minimal HTTP/1.1 server on a free port answering every request with [`ANSWER`].
fn serve() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
    let addr = listener.local_addr().expect("local address");
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = answer_requests(conn);
            });
        }
    });
    addr
}

fn answer_requests(conn: TcpStream) -> std::io::Result<()> {
    // One write per answer and no Nagle delay: otherwise each exchange waits
    // for a delayed ACK (~40 ms) and the fuzzer crawls.
    conn.set_nodelay(true)?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut writer = conn;
    loop {
        let mut content_length = 0usize;
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                content_length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut request_body = vec![0; content_length];
        reader.read_exact(&mut request_body)?;

        let (status, body) = ANSWER.lock().unwrap().clone();
        let mut answer = format!(
            "HTTP/1.1 {status} Fuzz\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        answer.extend_from_slice(&body);
        writer.write_all(&answer)?;
    }
}
