//! The worker: StepRuns created against `stepbox dev-cluster` (in this
//! process, over HTTPS on loopback) and run by one worker (in this process
//! too, as `stepbox worker` runs it), the step pulled by digest from a real
//! registry (Debian's docker-registry on loopback) and compiled once.
//!
//! Prints the latency from a StepRun's creation to the client seeing it
//! `Succeeded` (p50, p99), one StepRun at a time, and the throughput of a
//! burst of StepRuns created at once.
//!
//! ```sh
//! cargo run --release -p stepbox-bench --bin worker -- [--sequential N] [--burst N] [--max-concurrent-runs N]
//! ```

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{CustomResourceExt, ResourceExt};
use stepbox::cluster::MemoryCluster;
use stepbox::policy::Policy;
use stepbox::{Runtime, RuntimeConfig};
use stepbox_oci::artifact::{Artifact, ComponentDescription};
use stepbox_oci::{BlobCache, Distribution, Reference, RegistryOptions};
use stepbox_tests::registry::{Mode, Registry};
use stepbox_worker::crd::{Phase, StepRun, StepRunSpec};
use stepbox_worker::{PolicySet, Worker, WorkerConfig};
use tokio_util::sync::CancellationToken;

const NS: &str = "bench";

struct Args {
    sequential: usize,
    burst: usize,
    max_concurrent_runs: usize,
}

fn parse() -> anyhow::Result<Args> {
    let mut a = Args {
        sequential: 200,
        burst: 500,
        max_concurrent_runs: 16,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> anyhow::Result<usize> {
            it.next()
                .with_context(|| format!("{name} takes a number"))?
                .parse()
                .with_context(|| format!("{name} takes a number"))
        };
        match arg.as_str() {
            "--sequential" => a.sequential = number("--sequential")?,
            "--burst" => a.burst = number("--burst")?,
            "--max-concurrent-runs" => a.max_concurrent_runs = number("--max-concurrent-runs")?,
            "-h" | "--help" => {
                println!(
                    "usage: worker [--sequential N (200)] [--burst N (500)] [--max-concurrent-runs N (16)]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    Ok(a)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn steprun(name: &str, step: &str) -> StepRun {
    StepRun::new(
        name,
        StepRunSpec {
            step: step.to_string(),
            ..StepRunSpec::default()
        },
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse()?;
    let tmp = tempfile::tempdir()?;

    // The registry, with the hello guest pushed.
    let registry = Registry::start(Mode::Plain);
    let distribution = |dir: &str| {
        Distribution::new(
            RegistryOptions::default(),
            BlobCache::new(tmp.path().join(dir)),
        )
    };
    let wasm_path = stepbox_bench::guest("hello");
    let wasm = std::fs::read(&wasm_path)?;
    let info = Runtime::new(RuntimeConfig::default())?
        .load_file(&wasm_path)?
        .info
        .clone();
    let description = ComponentDescription {
        imports: info.imports.iter().map(|i| i.name.clone()).collect(),
        exports: info.exports.iter().map(|e| e.name.clone()).collect(),
        target: Some("stepbox:step/step@0.1.0".into()),
    };
    let reference = Reference::parse(&registry.reference("steps/hello:1"))?;
    let pinned = distribution("push")
        .push(
            &reference,
            &Artifact::step(wasm, &description, "hello", BTreeMap::new()),
            None,
        )
        .await?
        .to_string();

    // The dev cluster and the CRD.
    let server = stepbox::apiserver::DevCluster::new(MemoryCluster::new())
        .namespace(NS)
        .start()
        .await?;
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig_yaml(NS))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    let client = kube::Client::try_from(config)?;
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &StepRun::crd())
        .await?;
    let api: Api<StepRun> = Api::namespaced(client.clone(), NS);

    // One worker.
    let policies = PolicySet::new(
        BTreeMap::from([("default".into(), Policy::default())]),
        "default",
    )?;
    let mut wc = WorkerConfig::new(NS, "bench-worker", policies);
    wc.max_concurrent_runs = args.max_concurrent_runs;
    wc.distribution = distribution("worker");
    wc.cache_dir = Some(tmp.path().join("components"));
    let worker = Worker::new(client.clone(), wc)?;
    let stop = CancellationToken::new();
    let worker_task = tokio::spawn(worker.run(None, stop.clone()));

    // Every StepRun the client sees Succeeded (or Failed), as it happens.
    let (tx, _) = tokio::sync::broadcast::channel::<(String, bool)>(1 << 16);
    let watch_tx = tx.clone();
    let watch_api = api.clone();
    tokio::spawn(async move {
        let mut seen = HashSet::new();
        let mut stream = std::pin::pin!(
            watcher(watch_api, watcher::Config::default())
                .applied_objects()
                .default_backoff()
        );
        while let Some(Ok(run)) = stream.next().await {
            let phase = run.status.as_ref().and_then(|s| s.phase);
            if let Some(p) = phase.filter(|p| p.is_finished())
                && seen.insert(run.name_any())
            {
                let _ = watch_tx.send((run.name_any(), p == Phase::Succeeded));
            }
        }
    });

    // Warm up: the first run pulls and compiles.
    let mut rx = tx.subscribe();
    let t = Instant::now();
    api.create(&PostParams::default(), &steprun("warm-up", &pinned))
        .await?;
    wait_for(&mut rx, &["warm-up".to_string()]).await?;
    println!("first run (pull + compile): {}", ms(t.elapsed()));

    // One at a time.
    let mut latencies = Vec::with_capacity(args.sequential);
    for i in 0..args.sequential {
        let name = format!("seq-{i}");
        let t = Instant::now();
        api.create(&PostParams::default(), &steprun(&name, &pinned))
            .await?;
        wait_for(&mut rx, std::slice::from_ref(&name)).await?;
        latencies.push(t.elapsed());
    }
    latencies.sort();
    println!(
        "sequential: {} StepRuns, create -> Succeeded p50 {}, p99 {}, max {}",
        args.sequential,
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default())
    );

    // A burst, created by 32 clients at once.
    let names: Vec<String> = (0..args.burst).map(|i| format!("burst-{i}")).collect();
    let t = Instant::now();
    let created = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    futures::stream::iter(names.clone())
        .for_each_concurrent(32, |name| {
            let api = api.clone();
            let pinned = pinned.clone();
            let created = created.clone();
            async move {
                let at = Instant::now();
                if api
                    .create(&PostParams::default(), &steprun(&name, &pinned))
                    .await
                    .is_ok()
                {
                    created.lock().unwrap().insert(name, at);
                }
            }
        })
        .await;
    let done = wait_for(&mut rx, &names).await?;
    let elapsed = t.elapsed();
    let mut burst: Vec<Duration> = {
        let created = created.lock().unwrap();
        done.iter()
            .filter_map(|(n, at)| Some(at.duration_since(*created.get(n)?)))
            .collect()
    };
    burst.sort();
    println!(
        "burst: {} StepRuns in {:.2} s = {:.0} runs/s; create -> Succeeded p50 {}, p99 {}",
        args.burst,
        elapsed.as_secs_f64(),
        args.burst as f64 / elapsed.as_secs_f64(),
        ms(percentile(&burst, 0.5)),
        ms(percentile(&burst, 0.99))
    );
    stop.cancel();
    worker_task.await??;
    server.shutdown().await;
    Ok(())
}

/// Waits until every one of `names` finished; when each did.
async fn wait_for(
    rx: &mut tokio::sync::broadcast::Receiver<(String, bool)>,
    names: &[String],
) -> anyhow::Result<BTreeMap<String, Instant>> {
    let want: HashSet<&String> = names.iter().collect();
    let mut done = BTreeMap::new();
    while done.len() < want.len() {
        let (name, ok) = tokio::time::timeout(Duration::from_secs(120), rx.recv())
            .await
            .context("no StepRun finished within 120 s")??;
        if want.contains(&name) {
            if !ok {
                bail!("StepRun {name} failed");
            }
            done.insert(name, Instant::now());
        }
    }
    Ok(done)
}
