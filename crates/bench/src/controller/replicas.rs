//! `--replicas N`: the scale run's settled platform served by N `quayside
//! run --shards` processes at once, and what each one costs — its RSS at
//! rest, its cache (`quayside_cached_objects`) and its share of a no-op
//! heartbeat (CPU, passes, writes) — to set beside the one replica's.

use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{Value, json};

use quay_emulator::Emulator;
use quayside_testkit::cluster;

use super::{Bench, Launch, Proc, QUIET, Scrape, rss_mb};
use crate::tenancy::Tenancy;

impl Bench {
    /// `replicas` processes with `shards` shards over `t` (settled at
    /// `last`): start-up until every object had its pass, then a window
    /// over the next heartbeat, per replica.
    pub(super) async fn sharded(
        &self,
        emu: &Emulator,
        t: &Tenancy,
        last: &Value,
        (replicas, shards): (usize, u32),
    ) -> anyhow::Result<Value> {
        let settle = last["reverified_s"].as_f64().unwrap_or(10.0);
        let heartbeat = Duration::from_secs_f64((3.0 * settle + 5.0).max(15.0));
        let n = last["components"].as_f64().unwrap_or_default();
        let envs = t.environments() as f64;
        println!(
            "\n## {replicas} replicas, --shards {shards}: {n} Components, {envs} Environments"
        );
        let lease_ns = format!("bench-shards-{replicas}");
        cluster::ensure_namespace(&self.client, &lease_ns).await?;
        let mut extra: Vec<String> = ["--shards", &shards.to_string()]
            .into_iter()
            .chain(["--leader-election-namespace", &lease_ns])
            .map(str::to_string)
            .collect();
        if self.offers_verify_interval() {
            extra.extend(["--quay-verify-interval".to_string(), "24h".to_string()]);
        }
        let mut procs = Vec::new();
        for _ in 0..replicas {
            let launch = Launch {
                heartbeat: Some(heartbeat),
                extra: extra.clone(),
                ..Launch::default()
            };
            procs.push(self.spawn(emu, t, launch)?);
        }
        let started = Instant::now();
        for p in &mut procs {
            self.wait_readyz(p).await?;
        }
        let zero = vec![Scrape::default(); replicas];
        let (s1, _) = self.wait_all(&mut procs, &zero, (n, envs), None).await?;
        let startup_s = started.elapsed().as_secs_f64();
        let cpu1 = cpu_of(&procs)?;
        let t1 = Instant::now();
        let cap = started + 2 * heartbeat;
        let (s2, quiet) = self
            .wait_all(&mut procs, &s1, (n, envs), Some(cap))
            .await?;
        let window_s = t1.elapsed().as_secs_f64();
        let cpu2 = cpu_of(&procs)?;
        let mut each = Vec::new();
        for (i, p) in procs.iter().enumerate() {
            let (rss, hwm) = rss_mb(p.pid())?;
            let (a, b) = (&s1[i], &s2[i]);
            let row = json!({
                "replica": i,
                "rss_mb": rss, "peak_rss_mb": hwm,
                "startup_cpu_s": cpu1[i],
                "heartbeat_cpu_s": cpu2[i] - cpu1[i],
                "cached": b.cached,
                "component_passes": b.ok("component") - a.ok("component"),
                "environment_passes": b.ok("environment") - a.ok("environment"),
                "kube_writes": b.kube_writes - a.kube_writes,
                "git_commits": b.git_commits - a.git_commits,
            });
            println!(
                "  replica {i}: RSS at rest {rss:.1} MB (peak {hwm:.1} MB); no-op heartbeat CPU {:.2} s ({} Component + {} Environment passes, kube writes {}); caches {:?}",
                cpu2[i] - cpu1[i],
                row["component_passes"],
                row["environment_passes"],
                row["kube_writes"],
                b.cached
            );
            each.push(row);
        }
        println!(
            "  all passes done {startup_s:.1} s after start; heartbeat window {window_s:.1} s{}",
            if quiet { "" } else { " (never went quiet)" }
        );
        for p in procs {
            p.stop();
        }
        Ok(json!({
            "replicas": replicas, "shards": shards, "heartbeat_s": heartbeat.as_secs_f64(),
            "startup_s": startup_s, "window_s": window_s, "went_quiet": quiet,
            "each": each,
        }))
    }

    /// Wait until the replicas together ran at least `c` Component and `e`
    /// Environment passes more than `base`, then until their counters stay
    /// still for [`QUIET`] (or, past `cap`, at once). Each one's scrape
    /// then, and whether they went quiet.
    async fn wait_all(
        &self,
        procs: &mut [Proc],
        base: &[Scrape],
        (c, e): (f64, f64),
        cap: Option<Instant>,
    ) -> anyhow::Result<(Vec<Scrape>, bool)> {
        let deadline = Instant::now() + self.timeout;
        let sum = |s: &[Scrape], f: &dyn Fn(&Scrape) -> f64| s.iter().map(f).sum::<f64>();
        let key = |s: &[Scrape]| {
            (
                sum(s, &|x| x.ok("component")),
                sum(s, &|x| x.ok("environment")),
                sum(s, &|x| x.kube_writes),
            )
        };
        let (c0, e0, _) = key(base);
        let mut last: Option<((f64, f64, f64), Instant)> = None;
        loop {
            let mut now = Vec::new();
            for p in procs.iter() {
                now.push(self.scrape(p).await.unwrap_or_default());
            }
            let k = key(&now);
            let reached = k.0 - c0 >= c && k.1 - e0 >= e;
            if reached && cap.is_some_and(|cap| Instant::now() >= cap) {
                return Ok((now, false));
            }
            match &last {
                Some((l, at)) if *l == k => {
                    if reached && at.elapsed() >= QUIET {
                        return Ok((now, true));
                    }
                }
                _ => last = Some((k, Instant::now())),
            }
            for p in procs.iter_mut() {
                p.check_alive()?;
            }
            if Instant::now() > deadline {
                bail!("the replicas did not finish their passes within {:?}", self.timeout);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// Each process's CPU seconds so far.
fn cpu_of(procs: &[Proc]) -> anyhow::Result<Vec<f64>> {
    procs
        .iter()
        .map(|p| crate::procfs::cpu_seconds(&p.pid().to_string()))
        .collect()
}
