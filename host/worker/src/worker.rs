//! The worker's loop: a watch of the namespace's StepRuns (kube-runtime's
//! watcher and reflector) whose every change is looked at once, plus a
//! sweep every second over everything seen (claims that waited for a slot,
//! lost workers, expired TTLs). Writes happen in tasks of their own, so a
//! slow request never holds up the watch.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::reflector::{self, Store, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use stepbox::{Allocator, LoadedStep, Runtime, RuntimeConfig};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::caches::CacheUse;
use crate::crd::{Phase, StepRun};
use crate::events::Recorder;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::status::Identity;
use crate::{Error, FINALIZER, WorkerConfig, recover, run_task};

/// Why a run was stopped before its step returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// `spec.cancel`, or the StepRun was deleted: the run ends Cancelled.
    Cancelled(String),
    /// Another worker recovered the run: write nothing more.
    Lost,
    /// The worker is shutting down and the drain timed out: hand the run
    /// back.
    Drain,
}

/// A run in flight on this worker.
#[derive(Debug, Clone, Default)]
pub struct RunHandle {
    /// Stops the guest.
    pub cancel: CancellationToken,
    why: Arc<Mutex<Option<StopReason>>>,
}

impl RunHandle {
    /// Stops the run for `why` (the first reason given wins).
    pub fn stop(&self, why: StopReason) {
        let mut w = self.why.lock().unwrap_or_else(|p| p.into_inner());
        if w.is_none() {
            *w = Some(why);
        }
        self.cancel.cancel();
    }

    /// Why the run was stopped, if it was.
    pub fn reason(&self) -> Option<StopReason> {
        self.why.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What every task of a worker shares.
pub struct Shared {
    /// The worker's client (its service account).
    pub client: Client,
    /// StepRuns of the namespace.
    pub api: Api<StepRun>,
    /// ConfigMaps of the namespace (reports).
    pub configmaps: Api<ConfigMap>,
    /// The configuration.
    pub config: WorkerConfig,
    /// Who this worker is.
    pub me: Identity,
    /// Events.
    pub events: Recorder,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Runs in flight (and claims being made), by StepRun uid.
    pub running: Mutex<HashMap<String, RunHandle>>,
    /// One permit per run at once.
    pub slots: Arc<Semaphore>,
    /// Set on shutdown: claim nothing more.
    pub draining: AtomicBool,
    /// Wakes the sweep (a slot freed).
    pub wake: Notify,
    /// Digests runs in flight use (kept by cache collection).
    pub caches: Arc<CacheUse>,
    /// Wakes cache collection (a run ended).
    pub collect: Notify,
    runtime: Arc<Runtime>,
    loaded: Mutex<LoadedSteps>,
}

/// Steps kept compiled in memory, by blob digest, the least recently
/// used dropped past [`MAX_LOADED`] (the compile cache on disk still has
/// them).
struct Lru<T> {
    items: HashMap<String, T>,
    /// Keys, least recently used first.
    order: std::collections::VecDeque<String>,
    max: usize,
}

/// Distinct steps a worker keeps compiled in memory.
const MAX_LOADED: usize = 64;

type LoadedSteps = Lru<Arc<LoadedStep>>;

impl<T: Clone> Lru<T> {
    fn new(max: usize) -> Self {
        Self {
            items: HashMap::new(),
            order: std::collections::VecDeque::new(),
            max,
        }
    }

    fn get(&mut self, key: &str) -> Option<T> {
        let item = self.items.get(key)?.clone();
        self.order.retain(|d| d != key);
        self.order.push_back(key.to_string());
        Some(item)
    }

    /// Keeps `item`; returns the items dropped to make room.
    fn insert(&mut self, key: &str, item: T) -> Vec<T> {
        if self.items.insert(key.to_string(), item).is_none() {
            self.order.push_back(key.to_string());
        }
        let mut dropped = Vec::new();
        while self.order.len() > self.max {
            if let Some(old) = self.order.pop_front()
                && let Some(i) = self.items.remove(&old)
            {
                dropped.push(i);
            }
        }
        dropped
    }
}

impl Shared {
    /// Registries and the blob cache.
    pub fn distribution(&self) -> &stepbox_oci::Distribution {
        &self.config.distribution
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The step in `path` (a blob of digest `digest`), loaded once per
    /// worker; compiling (or reading the compile cache) off the async
    /// threads.
    pub async fn load(&self, path: &Path, digest: &str) -> Result<Arc<LoadedStep>, String> {
        if let Some(s) = self.lock_loaded().get(digest) {
            return Ok(s);
        }
        let runtime = self.runtime.clone();
        let path = path.to_path_buf();
        let step = tokio::task::spawn_blocking(move || runtime.load_file(&path))
            .await
            .map_err(|e| format!("loading the step failed: {e}"))?
            .map_err(|e| e.to_string())?;
        let dropped = self.lock_loaded().insert(digest, step.clone());
        for old in dropped {
            self.runtime.unload(&old.info.sha256);
        }
        Ok(step)
    }

    fn lock_loaded(&self) -> std::sync::MutexGuard<'_, LoadedSteps> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The runs in flight.
    pub fn lock_running(&self) -> std::sync::MutexGuard<'_, HashMap<String, RunHandle>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A StepRun worker for one namespace.
pub struct Worker {
    shared: Arc<Shared>,
    health: Health,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("namespace", &self.shared.config.namespace)
            .field("name", &self.shared.me.name)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker using `client` (its service account's) with `config`. Its
    /// runtime uses the pooling allocator with a slot per concurrent run.
    ///
    /// # Errors
    /// [`Error::Runtime`] when the runtime cannot be created.
    pub fn new(client: Client, config: WorkerConfig) -> Result<Self, Error> {
        let max = config.max_concurrent_runs.max(1);
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: config.cache_dir.clone(),
            allocator: Allocator::Pooling {
                max_runs: u32::try_from(max).unwrap_or(u32::MAX),
            },
        })
        .map_err(Error::Runtime)?;
        let me = Identity {
            name: config.name.clone(),
            incarnation: uuid::Uuid::new_v4().to_string(),
        };
        let metrics = Arc::new(Metrics::default());
        let shared = Arc::new(Shared {
            api: Api::namespaced(client.clone(), &config.namespace),
            configmaps: Api::namespaced(client.clone(), &config.namespace),
            events: Recorder::new(client.clone(), &config.namespace, &me.name),
            client,
            me,
            metrics: metrics.clone(),
            running: Mutex::default(),
            slots: Arc::new(Semaphore::new(max)),
            draining: AtomicBool::new(false),
            wake: Notify::new(),
            runtime: Arc::new(runtime),
            loaded: Mutex::new(Lru::new(MAX_LOADED)),
            caches: Arc::default(),
            collect: Notify::new(),
            config,
        });
        let health = Health {
            ready: Arc::new(AtomicBool::new(false)),
            last_tick: Arc::new(AtomicU64::new(0)),
            stall: Duration::from_secs(30),
            metrics,
        };
        health.tick();
        Ok(Self { shared, health })
    }

    /// Runs until `shutdown`, then drains: claims nothing more, waits up to
    /// the drain timeout for the runs in flight, and hands back those that
    /// are still running. Serves health and metrics on `listener` if given.
    ///
    /// # Errors
    /// Only for what the worker cannot run without; API errors of single
    /// StepRuns are logged and retried.
    pub async fn run(
        self,
        listener: Option<tokio::net::TcpListener>,
        shutdown: CancellationToken,
    ) -> Result<(), Error> {
        let shared = self.shared;
        let health = self.health;
        // The worker collects its own cache, keeping what its runs use;
        // another process's `stepbox cache prune` would not know that.
        let _cache_hold = shared.distribution().cache().hold().await;
        let server_stop = CancellationToken::new();
        if let Some(l) = listener {
            tokio::spawn(crate::health::serve(l, health.clone(), server_stop.clone()));
        }
        tracing::info!(
            namespace = %shared.config.namespace,
            worker = %shared.me.name,
            incarnation = %shared.me.incarnation,
            max_concurrent_runs = shared.config.max_concurrent_runs,
            "worker started"
        );

        let (store, writer) = reflector::store::<StepRun>();
        let stream = reflector(
            writer,
            watcher(shared.api.clone(), watcher::Config::default()),
        )
        .default_backoff();
        let watch_stop = CancellationToken::new();
        let watch = {
            let shared = shared.clone();
            let ready = health.ready.clone();
            let stop = watch_stop.clone();
            tokio::spawn(async move {
                let mut stream = std::pin::pin!(stream);
                loop {
                    let event = tokio::select! {
                        e = stream.next() => e,
                        () = stop.cancelled() => break,
                    };
                    match event {
                        Some(Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj))) => {
                            look_at(&shared, &obj);
                        }
                        Some(Ok(watcher::Event::Delete(obj))) => gone(&shared, &obj),
                        Some(Ok(watcher::Event::InitDone)) => {
                            if !shared.draining.load(Ordering::SeqCst) {
                                ready.store(true, Ordering::SeqCst);
                            }
                            shared.wake.notify_one();
                        }
                        Some(Ok(watcher::Event::Init)) => {}
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "watching StepRuns failed; retrying");
                        }
                        None => break,
                    }
                }
            })
        };

        let collector = tokio::spawn(collect_caches(shared.clone(), watch_stop.clone()));

        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shared.wake.notified() => {}
                () = shutdown.cancelled() => break,
            }
            health.tick();
            sweep(&shared, &store);
        }

        // Drain.
        shared.draining.store(true, Ordering::SeqCst);
        health.ready.store(false, Ordering::SeqCst);
        let in_flight = shared.lock_running().len();
        tracing::info!(in_flight, timeout = ?shared.config.drain_timeout, "draining");
        let deadline = tokio::time::Instant::now() + shared.config.drain_timeout;
        while !shared.lock_running().is_empty() && tokio::time::Instant::now() < deadline {
            health.tick();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let left: Vec<RunHandle> = shared.lock_running().values().cloned().collect();
        if !left.is_empty() {
            tracing::warn!(
                runs = left.len(),
                "the drain timed out: handing the runs back"
            );
            for h in &left {
                h.stop(StopReason::Drain);
            }
            let grace = tokio::time::Instant::now() + Duration::from_secs(10);
            while !shared.lock_running().is_empty() && tokio::time::Instant::now() < grace {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        watch_stop.cancel();
        let _ = watch.await;
        let _ = collector.await;
        server_stop.cancel();
        tracing::info!("worker stopped");
        Ok(())
    }
}

/// How often the caches are collected when no run ends.
const COLLECT_EVERY: Duration = Duration::from_secs(300);

/// Keeps the disk caches under the budget: at start, after runs (at most
/// every few seconds) and every [`COLLECT_EVERY`].
async fn collect_caches(shared: Arc<Shared>, stop: CancellationToken) {
    let Some(max) = shared.config.cache_max_bytes else {
        return;
    };
    loop {
        shared
            .caches
            .collect(
                shared.distribution().cache().clone(),
                shared.config.cache_dir.clone(),
                max,
                &shared.metrics,
            )
            .await;
        tokio::select! {
            () = tokio::time::sleep(COLLECT_EVERY) => {}
            () = shared.collect.notified() => {
                // Runs ending together make one collection.
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            () = stop.cancelled() => break,
        }
    }
}

/// Everything seen, once a second or when a slot frees.
fn sweep(shared: &Arc<Shared>, store: &Store<StepRun>) {
    for obj in store.state() {
        look_at(shared, &obj);
        recover::expire(shared, &obj);
    }
}

/// A StepRun changed (or the sweep came by): do what its state asks of
/// this worker. Never waits on the API: writes go to tasks.
fn look_at(shared: &Arc<Shared>, obj: &StepRun) {
    let uid = obj.uid().unwrap_or_default();
    let local = shared.lock_running().get(&uid).cloned();
    let phase = obj.status.as_ref().and_then(|s| s.phase);
    if obj.metadata.deletion_timestamp.is_some() {
        match local {
            Some(h) => h.stop(StopReason::Cancelled("the StepRun was deleted".into())),
            None => recover::release(shared, obj),
        }
        return;
    }
    match phase {
        None | Some(Phase::Pending) => {
            if obj.spec.cancel {
                if local.is_none() {
                    recover::cancel_pending(shared, obj);
                }
            } else {
                claim(shared, obj);
            }
        }
        Some(Phase::Running) => match local {
            Some(h) if obj.spec.cancel => {
                h.stop(StopReason::Cancelled("cancelled (spec.cancel)".into()));
            }
            Some(_) => {}
            None => recover::if_lost(shared, obj),
        },
        Some(Phase::Succeeded | Phase::Failed) => {
            if local.is_none() && obj.finalizers().iter().any(|f| f == FINALIZER) {
                recover::release(shared, obj);
            }
        }
    }
}

/// The StepRun is gone: stop its run if this worker has it.
fn gone(shared: &Arc<Shared>, obj: &StepRun) {
    let uid = obj.uid().unwrap_or_default();
    if let Some(h) = shared.lock_running().get(&uid) {
        h.stop(StopReason::Cancelled("the StepRun was deleted".into()));
    }
}

/// Claims `obj` if a slot is free and nobody here is at it already.
fn claim(shared: &Arc<Shared>, obj: &StepRun) {
    if shared.draining.load(Ordering::SeqCst) {
        return;
    }
    let Ok(permit) = shared.slots.clone().try_acquire_owned() else {
        return;
    };
    let uid = obj.uid().unwrap_or_default();
    let handle = {
        let mut running = shared.lock_running();
        if running.contains_key(&uid) {
            return;
        }
        let h = RunHandle::default();
        running.insert(uid, h.clone());
        h
    };
    tokio::spawn(run_task::claim_and_run(
        shared.clone(),
        obj.clone(),
        handle,
        permit,
    ));
}

#[cfg(test)]
mod tests {
    use super::Lru;

    #[test]
    fn the_least_recently_used_step_goes_first() {
        let mut lru = Lru::new(2);
        assert!(lru.insert("a", 1).is_empty());
        assert!(lru.insert("b", 2).is_empty());
        assert_eq!(lru.get("a"), Some(1));
        assert_eq!(lru.insert("c", 3), vec![2]);
        assert_eq!(lru.get("b"), None);
        assert_eq!(lru.get("a"), Some(1));
        assert_eq!(lru.get("c"), Some(3));
    }
}
