//! Criterion benches of the host (`cargo bench -p stepbox-bench`).
//!
//! Every bench runs real components (built on first use) through the public
//! `stepbox` API, as `stepbox run` and a worker do:
//!
//! | bench | what is timed |
//! |---|---|
//! | `compile/deploy-manifests` | Cranelift compile of the step, no cache (cold) |
//! | `cache-load/deploy-manifests` | load from the on-disk compile cache |
//! | `cold-start/deploy-manifests` | cache load + first run of the step on its example |
//! | `warm-start/hello/*` | a whole run of a trivial step already loaded: store, instantiate (from its `InstancePre`), run, report |
//! | `host-call/*` | one guest → host round trip, timed in the guest over many calls |
//! | `apply/100-objects` | one `kube.apply` of 100 ordinary objects into a fresh embedded namespace |
//! | `plan/100-objects` | the plan (actions, field changes, diffs) of 100 changed objects |
//!
//! `*` is `on-demand` (wasmtime's default allocator) or `pooling` (the
//! pooling allocator, as a worker uses it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use stepbox::cluster::{ClusterBackend, MemoryCluster};
use stepbox::plan::PlanEntry;
use stepbox_bench::{
    allocators, deploy_example, expect_success, guest, guest_elapsed, options, ordinary_objects,
    runtime, runtime_with, step, with_inputs,
};

fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn compile_and_load(c: &mut Criterion) {
    let path = step("deploy-manifests");
    let bytes = std::fs::read(&path).expect("read deploy-manifests");
    let rt = tokio();

    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    let cold = runtime(None);
    group.bench_function("deploy-manifests", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let step = cold
                    .load_bytes(&path, &bytes, "deploy-manifests")
                    .expect("compile");
                total += started.elapsed();
                cold.unload(&step.info.sha256);
            }
            total
        })
    });
    group.finish();

    let cache = tempfile::tempdir().expect("temp dir");
    let cached = runtime(Some(cache.path()));
    let sha = cached
        .load_file(&path)
        .expect("prime the cache")
        .info
        .sha256
        .clone();
    cached.unload(&sha);
    let mut group = c.benchmark_group("cache-load");
    group.bench_function("deploy-manifests", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let step = cached.load_file(&path).expect("cache load");
                total += started.elapsed();
                assert_eq!(step.cache, stepbox::engine::CacheOutcome::Hit);
                cached.unload(&sha);
            }
            total
        })
    });
    group.finish();

    let example = deploy_example();
    let mut group = c.benchmark_group("cold-start");
    group.bench_function("deploy-manifests", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let opts = with_inputs(
                    options(stepbox_bench::memory(), Some(&example)),
                    &[("image", "nginx:1.27")],
                );
                let started = Instant::now();
                let step = cached.load_file(&path).expect("cache load");
                let report = rt.block_on(cached.run(&step, opts));
                total += started.elapsed();
                expect_success(&report);
                cached.unload(&sha);
            }
            total
        })
    });
    group.finish();
}

fn start(c: &mut Criterion) {
    let rt = tokio();
    let hello = guest("hello");
    for (label, allocator) in allocators(16) {
        let runtime = runtime_with(None, allocator);
        let step = runtime.load_file(&hello).expect("load hello");
        let mut group = c.benchmark_group("warm-start");
        group.bench_function(format!("hello/{label}"), |b| {
            b.iter_custom(|iters| {
                let backend = stepbox_bench::memory();
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let opts = options(backend.clone(), None);
                    let started = Instant::now();
                    let report = rt.block_on(runtime.run(&step, opts));
                    total += started.elapsed();
                    expect_success(&report);
                }
                total
            })
        });
        group.finish();
    }
}

fn host_calls(c: &mut Criterion) {
    let rt = tokio();
    let runtime = runtime(None);
    let step = runtime
        .load_file(&guest("call-loop"))
        .expect("load call-loop");
    let memory = MemoryCluster::new();
    memory
        .seed_yaml(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels:\n    app: web\ndata:\n  LOG_LEVEL: info\n  URL: http://web:8080\n",
            "bench",
        )
        .expect("seed");
    let backend: Arc<dyn ClusterBackend> = Arc::new(memory);

    let mut group = c.benchmark_group("host-call");
    for (label, op) in [("kube.get", "get"), ("run.input", "input")] {
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let count = iters.to_string();
                let opts = with_inputs(
                    options(backend.clone(), None),
                    &[("op", op), ("count", &count)],
                );
                guest_elapsed(&rt.block_on(runtime.run(&step, opts)))
            })
        });
    }
    group.finish();

    let packages = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        packages.path().join("manifests.yaml"),
        ordinary_objects(100),
    )
    .expect("write manifests");
    let mut group = c.benchmark_group("apply");
    group.bench_function("100-objects", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let opts = with_inputs(
                    options(stepbox_bench::memory(), Some(packages.path())),
                    &[("op", "apply"), ("count", "1")],
                );
                total += guest_elapsed(&rt.block_on(runtime.run(&step, opts)));
            }
            total
        })
    });
    group.finish();
}

fn plan(c: &mut Criterion) {
    let before = applied_objects(&ordinary_objects(100));
    let after: Vec<_> = before
        .iter()
        .enumerate()
        .map(|(i, object)| {
            let mut object = object.clone();
            object["metadata"]["labels"]["version"] = format!("v{i}").into();
            object["metadata"]["resourceVersion"] = "999".into();
            object
        })
        .collect();
    let mut group = c.benchmark_group("plan");
    group.bench_function("100-objects", |b| {
        b.iter(|| {
            before
                .iter()
                .zip(&after)
                .map(|(before, after)| PlanEntry::for_change(Some(before), after))
                .collect::<Vec<_>>()
        })
    });
    group.finish();
}

/// The objects as the embedded namespace stores them after an apply.
fn applied_objects(manifests: &str) -> Vec<serde_json::Value> {
    let memory = MemoryCluster::new();
    memory.seed_yaml(manifests, "bench").expect("seed");
    let objects: Vec<_> = memory
        .snapshot()
        .into_iter()
        .filter(|o| o["metadata"]["namespace"] == "bench")
        .collect();
    assert_eq!(objects.len(), 100, "all 100 objects stored");
    objects
}

criterion_group!(benches, compile_and_load, start, host_calls, plan);
criterion_main!(benches);
