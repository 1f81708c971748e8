//! Requests counted by the API server itself (`apiserver_request_total` on
//! its `/metrics`) over a measured window, next to the bench's own requests
//! (counted as its client sends them) and the machine's load, so a window's
//! figures can be told apart: the API server has no per-client label.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use hyper::http::{Method, Request, Uri};
use kube::Client;
use serde_json::{Value, json};

/// The resources quayside touches, reported one by one.
pub const WATCHED: [&str; 6] = [
    "secrets",
    "serviceaccounts",
    "components",
    "environments",
    "namespaces",
    "leases",
];

/// The verbs that change something (server-side apply is `APPLY`).
const WRITES: [&str; 6] = [
    "POST",
    "PUT",
    "PATCH",
    "APPLY",
    "DELETE",
    "DELETECOLLECTION",
];

/// Requests by (verb, resource); resource "" is a non-resource request
/// (discovery, `/metrics`, `/readyz`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts(pub BTreeMap<(String, String), f64>);

impl Counts {
    /// `apiserver_request_total` from the text of the API server's `/metrics`.
    pub fn parse(text: &str) -> Counts {
        let mut out = Counts::default();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
                continue;
            };
            let Some((labels, value)) = rest.rsplit_once("} ") else {
                continue;
            };
            let Ok(value) = value.trim().parse::<f64>() else {
                continue;
            };
            let (mut verb, mut resource) = (String::new(), String::new());
            // Label values here never hold commas or quotes.
            for kv in labels.split(',') {
                match kv.split_once('=') {
                    Some(("verb", v)) => verb = v.trim_matches('"').to_string(),
                    Some(("resource", v)) => resource = v.trim_matches('"').to_string(),
                    _ => {}
                }
            }
            *out.0.entry((verb, resource)).or_default() += value;
        }
        out
    }

    /// What happened between `before` and `self`.
    pub fn minus(&self, before: &Counts) -> Counts {
        let mut out = Counts::default();
        for (k, v) in &self.0 {
            let d = v - before.0.get(k).copied().unwrap_or(0.0);
            if d != 0.0 {
                out.0.insert(k.clone(), d);
            }
        }
        out
    }

    fn add(&mut self, verb: &str, resource: &str, n: f64) {
        *self
            .0
            .entry((verb.to_string(), resource.to_string()))
            .or_default() += n;
    }

    /// Requests of `verb` on `resource` (`None`: every resource, without
    /// non-resource requests).
    pub fn get(&self, verb: &str, resource: Option<&str>) -> f64 {
        self.0
            .iter()
            .filter(|((v, r), _)| {
                v == verb && resource.map_or(!r.is_empty(), |want| r == want)
            })
            .map(|(_, n)| n)
            .sum::<f64>()
            // An empty f64 sum is -0.0; print it as 0.
            + 0.0
    }

    /// Writes (every changing verb) on `resource` (`None`: every resource).
    pub fn writes(&self, resource: Option<&str>) -> f64 {
        WRITES.iter().map(|v| self.get(v, resource)).sum::<f64>() + 0.0
    }

    /// LIST, WATCH, GET and writes, overall and per resource quayside
    /// touches, and every (verb, resource) pair as counted.
    pub fn to_json(&self) -> Value {
        let row = |r: Option<&str>| {
            json!({
                "LIST": self.get("LIST", r), "WATCH": self.get("WATCH", r),
                "GET": self.get("GET", r), "writes": self.writes(r),
            })
        };
        let mut by_resource = serde_json::Map::new();
        for r in WATCHED {
            by_resource.insert(r.to_string(), row(Some(r)));
        }
        let all: BTreeMap<String, f64> = self
            .0
            .iter()
            .map(|((v, r), n)| {
                let r = if r.is_empty() { "(non-resource)" } else { r };
                (format!("{v} {r}"), *n)
            })
            .collect();
        json!({"overall": row(None), "by_resource": by_resource, "all": all})
    }
}

/// The bench's own requests, counted as its client sends them.
#[derive(Clone, Default)]
pub struct Own(Arc<Mutex<Counts>>);

impl Own {
    pub fn snapshot(&self) -> Counts {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn record<B>(&self, req: &Request<B>) {
        let (verb, resource) = classify(req.method(), req.uri());
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(verb, &resource, 1.0);
    }
}

/// A client for `config` whose every request is counted in the returned [`Own`].
pub fn counting_client(config: kube::Config) -> anyhow::Result<(Client, Own)> {
    let own = Own::default();
    let counter = own.clone();
    let layer = tower::util::MapRequestLayer::new(move |req: Request<kube::client::Body>| {
        counter.record(&req);
        req
    });
    let client = kube::client::ClientBuilder::try_from(config)?
        .with_layer(&layer)
        .build();
    Ok((client, own))
}

/// The verb and resource the API server's metric gives a request: GET on
/// a collection is LIST, with `watch=true` WATCH; PATCH with the apply
/// content type would be APPLY (the bench sends none).
fn classify(method: &Method, uri: &Uri) -> (&'static str, String) {
    let segs: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let rest: &[&str] = match segs.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => return (method_verb(method), String::new()),
    };
    // namespaces/{ns}/<resource>…: the namespace is a scope, not the resource.
    let rest = match rest {
        ["namespaces", _ns, r, more @ ..] => {
            let mut v = vec![*r];
            v.extend_from_slice(more);
            v
        }
        _ => rest.to_vec(),
    };
    let resource = rest.first().copied().unwrap_or_default().to_string();
    let query = uri.query().unwrap_or_default();
    let verb = if *method == Method::GET && query.split('&').any(|kv| kv == "watch=true") {
        "WATCH"
    } else if *method == Method::GET && rest.len() == 1 {
        "LIST"
    } else if *method == Method::DELETE && rest.len() == 1 {
        "DELETECOLLECTION"
    } else {
        method_verb(method)
    };
    (verb, resource)
}

fn method_verb(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "OTHER",
    }
}

/// The API server's request counters now, read with the bench's admin client.
pub async fn scrape(client: &Client) -> anyhow::Result<Counts> {
    let req = Request::get("/metrics").body(Vec::new())?;
    Ok(Counts::parse(&client.request_text(req).await?))
}

/// `/proc/loadavg`: the 1, 5 and 15 minute load averages.
pub fn loadavg() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = text
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(f64::NAN));
    [
        it.next().unwrap_or(f64::NAN),
        it.next().unwrap_or(f64::NAN),
        it.next().unwrap_or(f64::NAN),
    ]
}

/// A measured window opened: the API server's counters, the bench's own
/// and the load at its start.
pub struct Window {
    server: Counts,
    own: Counts,
    load: [f64; 3],
}

impl Window {
    pub async fn open(client: &Client, own: &Own) -> anyhow::Result<Window> {
        let load = loadavg();
        let server = scrape(client).await?;
        Ok(Window {
            server,
            own: own.snapshot(),
            load,
        })
    }

    /// Close the window: what the API server counted, the bench's own
    /// share, and the rest (the controller, plus the API server's own
    /// loopback requests). The `/metrics` reads are non-resource requests
    /// and stay out of every resource figure.
    ///
    /// The API server counts a WATCH when it ends, the bench when it
    /// starts: so the window stays open (up to 10 s, re-reading `/metrics`)
    /// until the API server has counted as many WATCHes per resource as
    /// the bench started, for watches the bench has just dropped.
    pub async fn close(self, client: &Client, own: &Own) -> anyhow::Result<Closed> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let server = scrape(client).await?.minus(&self.server);
            let bench = own.snapshot().minus(&self.own);
            let ended = bench
                .0
                .iter()
                .all(|((v, r), n)| v != "WATCH" || server.get("WATCH", Some(r)) >= *n);
            if ended || std::time::Instant::now() > deadline {
                return Ok(Closed {
                    server,
                    bench,
                    load: [self.load, loadavg()],
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

/// The counts of one closed window.
#[derive(Clone, Debug, Default)]
pub struct Closed {
    /// Everything the API server counted.
    pub server: Counts,
    /// The bench's own requests.
    pub bench: Counts,
    /// Load averages at the start and the end.
    pub load: [[f64; 3]; 2],
}

impl Closed {
    /// The API server's count less the bench's own.
    pub fn others(&self) -> Counts {
        self.server.minus(&self.bench)
    }

    /// Sum of several windows (the rotations).
    pub fn sum(windows: &[Closed]) -> Closed {
        let mut out = Closed::default();
        for w in windows {
            for ((v, r), n) in &w.server.0 {
                out.server.add(v, r, *n);
            }
            for ((v, r), n) in &w.bench.0 {
                out.bench.add(v, r, *n);
            }
        }
        if let (Some(first), Some(last)) = (windows.first(), windows.last()) {
            out.load = [first.load[0], last.load[1]];
        }
        out
    }

    pub fn to_json(&self) -> Value {
        json!({
            "apiserver": self.server.to_json(),
            "bench_own": self.bench.to_json(),
            "apiserver_less_bench": self.others().to_json(),
            "loadavg_start": self.load[0], "loadavg_end": self.load[1],
        })
    }

    /// One line: LIST / WATCH / GET / writes, less the bench's own.
    pub fn line(&self) -> String {
        let o = self.others();
        let per: Vec<String> = WATCHED
            .iter()
            .filter_map(|r| {
                let (l, w, g, x) = (
                    o.get("LIST", Some(r)),
                    o.get("WATCH", Some(r)),
                    o.get("GET", Some(r)),
                    o.writes(Some(r)),
                );
                (l + w + g + x != 0.0).then(|| format!("{r} {l}/{w}/{g}/{x}"))
            })
            .collect();
        format!(
            "API server requests less the bench's own (LIST/WATCH/GET/writes): all {}/{}/{}/{}; {}; bench's own {}/{}/{}/{}; load {:.1} → {:.1}",
            o.get("LIST", None),
            o.get("WATCH", None),
            o.get("GET", None),
            o.writes(None),
            if per.is_empty() {
                "none on quayside's resources".to_string()
            } else {
                per.join(", ")
            },
            self.bench.get("LIST", None),
            self.bench.get("WATCH", None),
            self.bench.get("GET", None),
            self.bench.writes(None),
            self.load[0][0],
            self.load[1][0],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_request_totals_by_verb_and_resource() {
        let text = "# HELP apiserver_request_total x\n\
            apiserver_request_total{code=\"200\",component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"secrets\",scope=\"cluster\",subresource=\"\",verb=\"LIST\",version=\"v1\"} 3\n\
            apiserver_request_total{code=\"200\",component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"secrets\",scope=\"namespace\",subresource=\"\",verb=\"LIST\",version=\"v1\"} 2\n\
            apiserver_request_total{code=\"201\",component=\"apiserver\",dry_run=\"\",group=\"quayside.dev\",resource=\"components\",scope=\"resource\",subresource=\"status\",verb=\"PATCH\",version=\"v1alpha1\"} 4\n\
            apiserver_request_total{code=\"200\",component=\"\",dry_run=\"\",group=\"\",resource=\"\",scope=\"\",subresource=\"/metrics\",verb=\"GET\",version=\"\"} 9\n\
            apiserver_request_duration_seconds_bucket{verb=\"LIST\",le=\"1\"} 100\n";
        let c = Counts::parse(text);
        assert_eq!(c.get("LIST", Some("secrets")), 5.0);
        assert_eq!(c.get("LIST", None), 5.0);
        assert_eq!(c.writes(Some("components")), 4.0);
        // Non-resource requests (the bench's /metrics reads) stay out of "all".
        assert_eq!(c.get("GET", None), 0.0);
        assert_eq!(c.get("GET", Some("")), 9.0);
        let later = Counts::parse(&text.replace("} 3\n", "} 7\n"));
        let d = later.minus(&c);
        assert_eq!(d.get("LIST", None), 4.0);
        assert_eq!(d.writes(None), 0.0);
        assert!(d.get("WATCH", None).is_sign_positive(), "0, not -0");
    }

    #[test]
    fn classifies_requests_as_the_api_server_does() {
        let c = |m: Method, u: &str| {
            let (v, r) = classify(&m, &u.parse().unwrap());
            format!("{v} {r}")
        };
        assert_eq!(
            c(Method::GET, "/api/v1/secrets?labelSelector=a"),
            "LIST secrets"
        );
        assert_eq!(
            c(Method::GET, "/api/v1/namespaces/ws/secrets"),
            "LIST secrets"
        );
        assert_eq!(
            c(Method::GET, "/api/v1/namespaces/ws/secrets/x"),
            "GET secrets"
        );
        assert_eq!(
            c(Method::GET, "/api/v1/secrets?watch=true&resourceVersion=5"),
            "WATCH secrets"
        );
        assert_eq!(c(Method::GET, "/api/v1/namespaces"), "LIST namespaces");
        assert_eq!(c(Method::GET, "/api/v1/namespaces/ws"), "GET namespaces");
        assert_eq!(c(Method::POST, "/api/v1/namespaces"), "POST namespaces");
        assert_eq!(
            c(
                Method::PATCH,
                "/apis/quayside.dev/v1alpha1/namespaces/ws/components/c/status"
            ),
            "PATCH components"
        );
        assert_eq!(c(Method::GET, "/metrics"), "GET ");
    }
}
