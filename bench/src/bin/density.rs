//! Density: N concurrent runs of `deploy-manifests` in one host process.
//!
//! Each run deploys `steps/deploy-manifests/example` (a ConfigMap, two
//! Deployments, a Job) into a namespace of its own on one embedded
//! cluster, then waits for its workloads to roll out. Rollouts are held
//! back (see [`stepbox_bench::gate`]) until all N runs are parked in
//! `kube.wait`, so all N are alive at once, mid-run, with their memories,
//! stacks and stores. Then the gate opens and every run must succeed.
//!
//! Prints, per N: the resident set before, at the peak, and per run; the
//! start latency (from asking for the run to the step's first log line)
//! percentiles under that load; and the wall time.
//!
//! ```sh
//! cargo run --release -p stepbox-bench --bin density -- [N...] [--allocator on-demand|pooling]
//! ```

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use stepbox::cluster::{ClusterBackend, MemoryCluster};
use stepbox::report::Status;
use stepbox::target::Target;
use stepbox::{Allocator, RunOptions};
use stepbox_bench::gate::GatedCluster;
use stepbox_bench::{deploy_example, options, runtime_with, step, with_inputs};

fn main() -> anyhow::Result<()> {
    let mut counts = Vec::new();
    let mut pooling = true;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!(
                    "usage: density [N...] [--allocator pooling|on-demand]   (default: 100 500 1000, pooling)"
                );
                return Ok(());
            }
            "--allocator" => match args.next().as_deref() {
                Some("pooling") => pooling = true,
                Some("on-demand") => pooling = false,
                other => bail!("--allocator takes pooling or on-demand, not {other:?}"),
            },
            n => counts.push(
                n.parse::<usize>()
                    .with_context(|| format!("{n:?} is not a number of runs"))?,
            ),
        }
    }
    if counts.is_empty() {
        counts = vec![100, 500, 1000];
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let cache = tempfile::tempdir()?;
    let max = counts.iter().copied().max().unwrap_or(1);
    let allocator = if pooling {
        Allocator::Pooling {
            max_runs: u32::try_from(max)?,
        }
    } else {
        Allocator::OnDemand
    };
    println!("allocator: {allocator:?}");
    let runtime = Arc::new(runtime_with(Some(cache.path()), allocator));
    let step = runtime.load_file(&step("deploy-manifests"))?;
    let example = deploy_example();

    // One ordinary run first, so the baseline includes what every run
    // shares (the compiled code, the engine, tokio's threads).
    let warm = rt.block_on(runtime.run(
        &step,
        with_inputs(
            options(Arc::new(MemoryCluster::new()), Some(&example)),
            &[("image", "nginx:1.27")],
        ),
    ));
    if warm.status != Status::Succeeded {
        bail!("the warm-up run failed: {:?}", warm.error);
    }

    println!(
        "{:>6} {:>12} {:>12} {:>12} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "runs", "rss before", "rss peak", "per run", "start p50", "p90", "p99", "max", "wall"
    );
    for n in counts {
        let before = rss_kib()?;
        reset_peak();
        let cluster: Arc<dyn ClusterBackend> = Arc::new(MemoryCluster::new());
        let (gated, gate) = GatedCluster::new(cluster);
        let backend: Arc<dyn ClusterBackend> = Arc::new(gated);
        let started = Instant::now();
        let latencies = Arc::new(Mutex::new(Vec::with_capacity(n)));
        let mut runs = Vec::with_capacity(n);
        for i in 0..n {
            let asked = Instant::now();
            let first = Arc::new(std::sync::Once::new());
            let latencies = latencies.clone();
            let opts = RunOptions::new(
                format!("density-{i}"),
                Target::backend(backend.clone(), true),
            )
            .packages(&example)
            .input("image", "nginx:1.27")
            .log_sink(Arc::new(move |_| {
                first.call_once(|| latencies.lock().unwrap().push(asked.elapsed()));
            }));
            let runtime = runtime.clone();
            let step = step.clone();
            runs.push(rt.spawn(async move { runtime.run(&step, opts).await }));
        }
        // Every run parks in kube.wait on its first workload.
        let deadline = Instant::now() + Duration::from_secs(600);
        while gate.waiting() < n {
            if Instant::now() > deadline {
                bail!(
                    "only {} of {n} runs reached kube.wait in 10 minutes",
                    gate.waiting()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let all_parked = rss_kib()?;
        gate.open();
        let mut failed = 0;
        for run in runs {
            let report = rt.block_on(run)?;
            stepbox_bench::discard_artifacts(&report);
            if report.status != Status::Succeeded {
                failed += 1;
                if failed == 1 {
                    eprintln!("run failed: {:?} {:?}", report.status, report.error);
                }
            }
        }
        let wall = started.elapsed();
        let peak = peak_kib()?.max(all_parked);
        if failed > 0 {
            bail!("{failed} of {n} runs did not succeed");
        }
        let mut lat = latencies.lock().unwrap().clone();
        lat.sort();
        let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
        println!(
            "{n:>6} {:>9} MiB {:>9} MiB {:>8} KiB {:>10} {:>10} {:>10} {:>10} {:>10}",
            before / 1024,
            peak / 1024,
            peak.saturating_sub(before) / n as u64,
            fmt(pct(0.50)),
            fmt(pct(0.90)),
            fmt(pct(0.99)),
            fmt(*lat.last().unwrap()),
            fmt(wall),
        );
    }
    Ok(())
}

fn fmt(d: Duration) -> String {
    if d < Duration::from_millis(10) {
        format!("{:.0} µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    }
}

/// A field of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")
        .context("reading /proc/self/status (density needs Linux)")?;
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .with_context(|| format!("no {field} in /proc/self/status"))
}

fn rss_kib() -> anyhow::Result<u64> {
    status_kib("VmRSS:")
}

fn peak_kib() -> anyhow::Result<u64> {
    status_kib("VmHWM:")
}

/// Resets the peak resident set (VmHWM) to the current one.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
