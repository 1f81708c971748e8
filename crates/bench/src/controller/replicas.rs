//! `--replicas N`: the scale run's settled platform served by N `quayside
//! run --shards` processes at once, and what each one costs — its RSS at
//! rest, its cache (`quayside_cached_objects`) and its share of a no-op
//! heartbeat period (CPU, passes, writes) — to set beside the one
//! replica's.

use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{Value, json};

use quay_emulator::Emulator;
use quayside_testkit::cluster;

use super::{Bench, Launch, Proc, QUIET, Scrape, rss_mb};
use crate::tenancy::Tenancy;

impl Bench {
    /// `replicas` processes with `shards` shards over `t` (settled at
    /// `last`): start-up until every object had its pass and the writes
    /// settled, then a window of one heartbeat period, per replica.
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
        let s1 = self.wait_settled(&mut procs, &zero, (n, envs)).await?;
        let startup_s = started.elapsed().as_secs_f64();
        // The restarts of a rebalance spread the objects' passes, so their
        // heartbeats never line up into one quiet burst as with one
        // replica: measure one whole heartbeat period instead, in which
        // every object has its one heartbeat pass.
        let cpu1 = cpu_of(&procs)?;
        let t1 = Instant::now();
        tokio::time::sleep(heartbeat).await;
        let mut s2 = Vec::new();
        for p in procs.iter_mut() {
            p.check_alive()?;
            s2.push(self.scrape(p).await?);
        }
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
            "  every object passed and the writes settled {startup_s:.1} s after start; window {window_s:.1} s = one heartbeat period"
        );
        for p in procs {
            p.stop();
        }
        Ok(json!({
            "replicas": replicas, "shards": shards, "heartbeat_s": heartbeat.as_secs_f64(),
            "startup_s": startup_s, "window_s": window_s,
            "each": each,
        }))
    }

    /// Wait until the replicas together ran at least `c` Component and `e`
    /// Environment passes more than `base`, and then their writes stayed
    /// still for [`QUIET`] (the shard labels stamped, the Secrets written
    /// before `--shards` written again, the shards settled). Their passes
    /// never do: each object's heartbeat comes at its own time. Each one's
    /// scrape then.
    async fn wait_settled(
        &self,
        procs: &mut [Proc],
        base: &[Scrape],
        (c, e): (f64, f64),
    ) -> anyhow::Result<Vec<Scrape>> {
        let deadline = Instant::now() + self.timeout;
        let sum = |s: &[Scrape], f: &dyn Fn(&Scrape) -> f64| s.iter().map(f).sum::<f64>();
        let c0 = sum(base, &|x| x.ok("component"));
        let e0 = sum(base, &|x| x.ok("environment"));
        let mut last: Option<(f64, Instant)> = None;
        loop {
            let mut now = Vec::new();
            for p in procs.iter() {
                now.push(self.scrape(p).await.unwrap_or_default());
            }
            let reached = sum(&now, &|x| x.ok("component")) - c0 >= c
                && sum(&now, &|x| x.ok("environment")) - e0 >= e;
            let writes = sum(&now, &|x| x.kube_writes);
            match &last {
                Some((w, at)) if *w == writes => {
                    if reached && at.elapsed() >= QUIET {
                        return Ok(now);
                    }
                }
                _ => last = Some((writes, Instant::now())),
            }
            for p in procs.iter_mut() {
                p.check_alive()?;
            }
            if Instant::now() > deadline {
                bail!("the replicas did not settle within {:?}", self.timeout);
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
