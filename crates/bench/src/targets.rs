//! The targets of issue 17 judged on a `quayside-bench controller` report:
//! for each measure the figure, the target, their ratio and whether it is
//! met, as JSON rows and as the summary table printed at the end.

use serde_json::{Value, json};

/// The scale runs of a report, in the order they ran.
pub const SCALE_KEYS: [&str; 2] = ["scale_workspaces", "scale"];

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// "1,000 × 10, one workspace" or "10,000 in 2,000 workspaces × 3".
pub fn shape_label(shape: &Value) -> String {
    let (c, w, e) = (
        shape["components"].as_u64().unwrap_or(0),
        shape["workspaces"].as_u64().unwrap_or(1),
        shape["environments_per_workspace"].as_u64().unwrap_or(0),
    );
    if w <= 1 {
        format!("{c} × {e}, one workspace")
    } else {
        format!("{c} in {w} workspaces × {e}")
    }
}

/// A row whose target is an upper bound.
fn at_most(measure: String, figure: f64, unit: &str, target: f64) -> Value {
    json!({
        "measure": measure, "figure": figure, "unit": unit, "target": target,
        "ratio": figure / target, "met": figure <= target,
    })
}

/// Every target row the report can judge.
pub fn rows(r: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for key in SCALE_KEYS {
        let s = &r[key];
        if !s.is_object() {
            continue;
        }
        let multi = s["shape"]["workspaces"].as_u64().unwrap_or(1) > 1;
        let label = shape_label(&s["shape"]);
        if let Some(steps) = s["steps"].as_array() {
            let worst = steps
                .iter()
                .map(|st| f(&st["quay_calls_per_component"]))
                .fold(f64::NAN, f64::max);
            out.push(at_most(
                format!("Quay calls per new Component ({label}, worst step)"),
                worst,
                "calls",
                5.0,
            ));
            if let Some(last) = steps.last() {
                let n = &last["components"];
                out.push(at_most(
                    format!("RSS at rest ({label}; at {n} Components)"),
                    f(&last["rss_mb"]),
                    "MB",
                    if multi { 250.0 } else { 100.0 },
                ));
                out.push(at_most(
                    format!("start-up to all re-verified ({label}; at {n} Components)"),
                    f(&last["reverified_s"]),
                    "s",
                    if multi { 60.0 } else { 10.0 },
                ));
            }
        }
        let h = &s["heartbeat"];
        if h.is_object() {
            let counts = [
                f(&h["kube_writes"]),
                f(&h["quay_calls"]),
                f(&h["git_commits"]),
                f(&h["list_requests"]),
            ];
            out.push(json!({
                "measure": format!("no-op heartbeat: writes / Quay calls / commits / LIST requests ({label})"),
                "figure": counts, "unit": "", "target": [0, 0, 0, 0], "ratio": null,
                "met": counts.iter().all(|c| *c == 0.0),
            }));
            out.push(at_most(
                format!("no-op heartbeat CPU ({label})"),
                f(&h["cpu_s"]),
                "s",
                if multi { 5.0 } else { 1.0 },
            ));
        }
    }
    for run in r["rotation"]["runs"].as_array().into_iter().flatten() {
        if run["latency_ms"].as_u64() != Some(0) {
            continue;
        }
        let envs = &r["rotation"]["environments"];
        out.push(at_most(
            format!("rotation of one Component to {envs} Environments: p50"),
            f(&run["p50_s"]),
            "s",
            1.0,
        ));
        out.push(at_most(
            format!("rotation of one Component to {envs} Environments: p95"),
            f(&run["p95_s"]),
            "s",
            2.0,
        ));
    }
    let t = &r["throttled"];
    if t.is_object() {
        let n = &t["components"];
        out.push(at_most(
            format!("provisioning {n} Components behind 5 req/s burst 25: time / bound"),
            f(&t["ratio"]),
            "×",
            1.05,
        ));
        let share = f(&t["throttled_answers"]) / f(&t["calls_passed"]).max(1.0) * 100.0;
        out.push(at_most(
            format!(
                "…429s answered, share of calls ({} answered)",
                cell(&t["throttled_answers"], "")
            ),
            share,
            "%",
            2.0,
        ));
    }
    out
}

fn cell(v: &Value, unit: &str) -> String {
    match v {
        Value::Array(xs) => xs
            .iter()
            .map(|x| cell(x, ""))
            .collect::<Vec<_>>()
            .join(" / "),
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            let s = if x.fract() == 0.0 {
                format!("{x:.0}")
            } else {
                format!("{x:.2}")
            };
            if unit.is_empty() {
                s
            } else {
                format!("{s} {unit}")
            }
        }
        Value::Null => "NaN".into(),
        other => other.to_string(),
    }
}

/// The summary: the targets table, then what else was measured.
pub fn print(r: &Value, rows: &[Value]) {
    let quick = r["quick"].as_bool().unwrap_or(false);
    println!();
    println!("| measure | figure | target | ratio | met |");
    println!("|---|---:|---:|---:|---|");
    for row in rows {
        let unit = row["unit"].as_str().unwrap_or_default();
        let ratio = row["ratio"]
            .as_f64()
            .map_or("–".into(), |x| format!("{x:.2}×"));
        let met = if quick {
            "(quick: not judged)"
        } else if row["met"].as_bool().unwrap_or(false) {
            "yes"
        } else {
            "no"
        };
        println!(
            "| {} | {} | ≤ {} | {ratio} | {met} |",
            row["measure"].as_str().unwrap_or_default(),
            cell(&row["figure"], unit),
            cell(&row["target"], unit),
        );
    }
    println!();
    for key in SCALE_KEYS {
        let s = &r[key];
        if !s.is_object() {
            continue;
        }
        let label = shape_label(&s["shape"]);
        for st in s["steps"].as_array().into_iter().flatten() {
            println!(
                "- {label}, step to {} Components: provisioning {} new {:.1} s; start-up /readyz {:.2} s, re-verified {:.1} s; RSS {:.1} MB (peak {:.1} MB)",
                st["components"],
                st["new_components"],
                f(&st["provision_s"]),
                f(&st["readyz_s"]),
                f(&st["reverified_s"]),
                f(&st["rss_mb"]),
                f(&st["peak_rss_mb"]),
            );
            for (what, w) in [
                ("provisioning", &st["provisioning_window"]),
                ("start-up", &st["startup_window"]),
            ] {
                println!("    {what}: {}", window_line(w));
            }
        }
        let h = &s["heartbeat"];
        if h.is_object() {
            println!(
                "- {label}, no-op heartbeat ({} Component + {} Environment passes{}, --quay-verify-interval {}): {}",
                h["component_passes"],
                h["environment_passes"],
                if h["went_quiet"].as_bool().unwrap_or(true) {
                    ""
                } else {
                    ", never went quiet: cut at twice the heartbeat"
                },
                h["quay_verify_interval"].as_str().unwrap_or("not offered"),
                window_line(&h["window"]),
            );
        }
        if s["idle"].is_object() {
            println!(
                "- {label}, API server alone (no controller, bench idle) for {:.0} s: {}",
                f(&s["idle"]["seconds"]),
                window_line(&s["idle"]["window"])
            );
        }
    }
    for run in r["rotation"]["runs"].as_array().into_iter().flatten() {
        println!(
            "- rotation, Quay latency {} ms: p50 {:.2} s, p95 {:.2} s ({} rotations); summed: {}",
            run["latency_ms"],
            f(&run["p50_s"]),
            f(&run["p95_s"]),
            run["rotations"],
            window_line(&run["window"]),
        );
    }
    if r["throttled"].is_object() {
        let t = &r["throttled"];
        println!(
            "- throttled: {:.1} s / bound {:.1} s; passes failed on Quay {}; all Ready {}; {}",
            f(&t["total_s"]),
            f(&t["bound_s"]),
            t["quay_error_passes"],
            t["all_ready"],
            window_line(&t["window"]),
        );
    }
}

/// LIST/WATCH/GET/writes the API server counted, less the bench's own, and the load.
fn window_line(w: &Value) -> String {
    let four = |v: &Value| {
        ["LIST", "WATCH", "GET", "writes"]
            .iter()
            .map(|k| cell(&v[k], ""))
            .collect::<Vec<_>>()
            .join("/")
    };
    let per: Vec<String> = w["apiserver_less_bench"]["by_resource"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| {
            ["LIST", "WATCH", "GET", "writes"]
                .iter()
                .any(|k| f(&v[k]) != 0.0)
        })
        .map(|(k, v)| format!("{k} {}", four(v)))
        .collect();
    format!(
        "API server LIST/WATCH/GET/writes less the bench's own: all {} ({}); bench's own {}; load (1 min) {} → {}",
        four(&w["apiserver_less_bench"]["overall"]),
        if per.is_empty() {
            "none on quayside's resources".into()
        } else {
            per.join(", ")
        },
        four(&w["bench_own"]["overall"]),
        cell(&w["loadavg_start"][0], ""),
        cell(&w["loadavg_end"][0], ""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judges_each_shape_against_its_own_targets() {
        let r = json!({
            "scale_workspaces": {
                "shape": {"components": 10000, "workspaces": 2000, "environments_per_workspace": 3},
                "steps": [{"components": 10000, "quay_calls_per_component": 5.0,
                           "rss_mb": 200.0, "reverified_s": 61.0}],
                "heartbeat": {"kube_writes": 0, "quay_calls": 0, "git_commits": 0,
                              "list_requests": 2, "cpu_s": 4.0},
            },
            "throttled": {"components": 100, "ratio": 1.0, "throttled_answers": 1, "calls_passed": 500},
        });
        let rows = rows(&r);
        let get = |m: &str| {
            rows.iter()
                .find(|r| r["measure"].as_str().unwrap().starts_with(m))
                .unwrap_or_else(|| panic!("{m}: {rows:?}"))
                .clone()
        };
        let rss = get("RSS at rest (10000 in 2000 workspaces × 3");
        assert_eq!(
            (rss["target"].as_f64(), rss["met"].as_bool()),
            (Some(250.0), Some(true))
        );
        assert_eq!(rss["ratio"].as_f64(), Some(0.8));
        assert_eq!(get("start-up")["met"], false);
        // One LIST in the heartbeat is a miss, however few.
        assert_eq!(get("no-op heartbeat: writes")["met"], false);
        assert_eq!(get("no-op heartbeat CPU")["met"], true);
        assert_eq!(get("…429s")["figure"].as_f64(), Some(0.2));
    }
}
