//! deploy/monitoring with the real `promtool`: the alerting rules pass
//! `promtool check rules` and their unit tests (`promtool test rules`),
//! every alert has a test, the PrometheusRule carries the same groups, and
//! every metric the rules and the Grafana dashboard query is one quayside
//! registers (`quayside::controller::metrics::FAMILIES`, which a unit test
//! checks against the registry).

use std::collections::BTreeSet;
use std::process::Command;

use quayside::controller::metrics::FAMILIES;
use quayside_testkit::tools;
use serde_json::Value;

fn read(path: &str) -> String {
    std::fs::read_to_string(tools::root().join(path)).unwrap()
}

fn yaml(path: &str) -> Value {
    serde_norway::from_str(&read(path)).unwrap()
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new(tools::bin("promtool"))
        .args(args)
        .current_dir(tools::root().join("deploy/monitoring"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn promtool_checks_the_rules_and_runs_their_unit_tests() {
    let checked = promtool(&["check", "rules", "rules.yaml"]);
    let alerts = alerts();
    assert!(
        checked.contains(&format!("SUCCESS: {} rules found", alerts.len())),
        "{checked}"
    );
    let tested = promtool(&["test", "rules", "rules.test.yaml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

fn alerts() -> Vec<String> {
    let rules = yaml("deploy/monitoring/rules.yaml");
    rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .map(|r| r["alert"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_alert_has_a_unit_test_that_sees_it_fire() {
    let tests = yaml("deploy/monitoring/rules.test.yaml");
    let firing: BTreeSet<&str> = tests["tests"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_array().unwrap())
        .filter(|a| !a["exp_alerts"].as_array().unwrap().is_empty())
        .map(|a| a["alertname"].as_str().unwrap())
        .collect();
    let untested: Vec<_> = alerts()
        .into_iter()
        .filter(|a| !firing.contains(a.as_str()))
        .collect();
    assert!(untested.is_empty(), "no test sees these fire: {untested:?}");
}

#[test]
fn the_prometheus_rule_carries_the_rule_file_word_for_word() {
    let rule = yaml("deploy/monitoring/prometheusrule.yaml");
    assert_eq!(rule["spec"], yaml("deploy/monitoring/rules.yaml"));
}

/// Every `quayside_…` name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"quayside_[a-z_]+").unwrap();
    re.find_iter(text).map(|m| m.as_str().to_string()).collect()
}

/// Whether `name` is a series quayside exposes: a family, or a
/// histogram's `_bucket`, `_sum` or `_count`.
fn exposed(name: &str) -> bool {
    FAMILIES.contains(&name)
        || ["_bucket", "_sum", "_count"].iter().any(|s| {
            name.strip_suffix(s)
                .is_some_and(|f| FAMILIES.contains(&f) && f.ends_with("_seconds"))
        })
}

#[test]
fn every_query_names_a_metric_quayside_registers() {
    let dashboard: Value = serde_json::from_str(&read("deploy/monitoring/dashboard.json")).unwrap();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            exprs.push(target["expr"].as_str().unwrap().to_string());
        }
    }
    assert!(exprs.len() >= 10, "{} queries", exprs.len());
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(
            !names.is_empty(),
            "a dashboard query names no quayside metric: {expr}"
        );
        for name in names {
            assert!(
                exposed(&name),
                "dashboard: {name} is not a quayside metric ({expr})"
            );
        }
    }
    let rules = read("deploy/monitoring/rules.yaml");
    let rules: Value = serde_norway::from_str(&rules).unwrap();
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let expr = rule["expr"].as_str().unwrap();
            for name in metric_names(expr) {
                assert!(
                    exposed(&name),
                    "rules: {name} is not a quayside metric ({expr})"
                );
            }
        }
    }
    // And the test itself fails on a name that is not registered.
    assert!(!exposed("quay_api_requests_total") && !exposed("quayside_reconciles"));
}
