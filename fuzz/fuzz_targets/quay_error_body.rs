//! Fuzz the Quay client's reading of error answers, end to end: a local HTTP
//! server answers with the fuzzed status and body, and the real `QuayClient`
//! turns it into a `QuayError`. Its message goes into status conditions and
//! events, so it must be short whatever Quay sends, and it must never carry the
//! OAuth token even when the server echoes it back.
//!
//! Input: byte 0 picks the status, byte 1 where to splice the OAuth token into
//! the body (255: nowhere), the rest is the body.

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
    let token_file =
        std::env::temp_dir().join(format!("quayside-fuzz-token-{}", std::process::id()));
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

fuzz_target!(|data: &[u8]| {
    let [status, splice, body @ ..] = data else {
        return;
    };
    let status = STATUSES[usize::from(*status) % STATUSES.len()];
    let mut body = body.to_vec();
    if *splice != 255 {
        let at = usize::from(*splice).min(body.len());
        body.splice(at..at, TOKEN.bytes());
    }
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
