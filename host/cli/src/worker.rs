//! `stepbox worker` (the StepRun controller, [`stepbox_worker`]) and
//! `stepbox crd` (the StepRun CustomResourceDefinition).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use kube::CustomResourceExt;
use stepbox_worker::crd::StepRun;
use stepbox_worker::{PolicySet, Worker, WorkerConfig};
use tokio_util::sync::CancellationToken;

use crate::oci::RegistryArgs;
use crate::{CacheArgs, ClusterArgs};

/// Options of `stepbox worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// The namespace to serve [default: the context's, or the pod's].
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// A directory of NAME.yaml StepPolicy files (the chart mounts its
    /// policies ConfigMap here); a StepRun names one in spec.policy.
    #[arg(long, value_name = "DIR")]
    policies: PathBuf,
    /// The policy of StepRuns that name none.
    #[arg(long, value_name = "NAME", default_value = "default")]
    default_policy: String,
    /// Runs at once; further StepRuns wait (other workers may take them).
    #[arg(long, value_name = "N", default_value_t = 16)]
    max_concurrent_runs: usize,
    /// How often a running run's heartbeat is written.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    heartbeat: Duration,
    /// A run whose heartbeat is older than this has lost its worker
    /// (WorkerLost; retried while spec.retries allows).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    lost_after: Duration,
    /// On SIGTERM, how long running runs may take before they are handed back.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
    /// Serve /healthz, /readyz and /metrics here.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:9090")]
    listen: SocketAddr,
    /// The worker's name in StepRun status [default: $POD_NAME, else the host name].
    #[arg(long, value_name = "NAME", env = "POD_NAME")]
    worker_name: Option<String>,
    /// Accept step and package references by tag (default: by digest only).
    #[arg(long)]
    allow_tags: bool,
    /// Run only steps (and packages) signed for this cosign public key.
    #[arg(long, value_name = "FILE")]
    verify_key: Option<PathBuf>,
    /// helm v3.8+ for the steps' helm calls [default: $STEPBOX_HELM, else `helm` on PATH].
    #[arg(long, value_name = "PATH")]
    helm: Option<PathBuf>,
    /// kubectl, whose kustomize renders the steps' kustomizations
    /// [default: $STEPBOX_KUBECTL, else `kubectl` on PATH].
    #[arg(long, value_name = "PATH")]
    kubectl: Option<PathBuf>,
    /// Keep the compile cache and the blob cache together under this size
    /// (bytes, or with Ki, Mi, Gi), least recently used entries removed
    /// first, never those of runs in flight; 0: unbounded.
    #[arg(long, value_name = "SIZE", default_value = "2Gi", value_parser = crate::parse_size)]
    cache_max_size: u64,
    /// Print the Role the worker's service account needs for these
    /// policies (YAML) and exit.
    #[arg(long)]
    print_role: bool,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    cache: CacheArgs,
}

/// `stepbox worker`.
pub async fn worker(args: WorkerArgs) -> Result<u8> {
    let policies = PolicySet::load_dir(&args.policies, &args.default_policy)?;
    if args.print_role {
        let namespace = args.namespace.as_deref().unwrap_or("default");
        let role = stepbox_worker::role::role(namespace, "stepbox-worker", &policies);
        print!("{}", serde_yaml_ng::to_string(&role)?);
        return Ok(0);
    }
    let (client, default_namespace) = args.cluster.client().await?;
    let namespace = args.namespace.clone().unwrap_or(default_namespace);
    let name = match &args.worker_name {
        Some(n) => n.clone(),
        None => hostname(),
    };
    let mut config = WorkerConfig::new(namespace.clone(), name, policies);
    config.max_concurrent_runs = args.max_concurrent_runs.max(1);
    config.heartbeat = args.heartbeat;
    config.lost_after = args.lost_after;
    config.drain_timeout = args.drain_timeout;
    config.allow_tags = args.allow_tags;
    config.distribution = args.registry.distribution();
    config.verify_key = match &args.verify_key {
        Some(p) => Some(stepbox_oci::sign::PublicKey::load(p)?),
        None => None,
    };
    config.cache_dir = args.cache.dir();
    config.cache_max_bytes = (args.cache_max_size > 0).then_some(args.cache_max_size);
    config.helm_binary = stepbox::caps::helm::HelmConfig::binary_from_env(args.helm.clone());
    config.kubectl_binary = stepbox::caps::kustomize::kubectl_from_env(args.kubectl.clone());
    if config.lost_after <= config.heartbeat {
        bail!(
            "--lost-after ({}) must be longer than --heartbeat ({}), or every run looks lost",
            humantime::format_duration(config.lost_after),
            humantime::format_duration(config.heartbeat)
        );
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {} (--listen)", args.listen))?;
    let addr = listener.local_addr()?;
    let worker = Worker::new(client, config)?;
    eprintln!("worker for namespace {namespace}: health and metrics on http://{addr}");
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    worker.run(Some(listener), shutdown).await?;
    Ok(0)
}

/// Cancels `token` on SIGTERM or SIGINT.
async fn stop_on_signal(token: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    eprintln!("stopping: no new claims; draining the runs in flight");
    token.cancel();
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "stepbox-worker".into())
}

/// `stepbox crd`: the StepRun CustomResourceDefinition as YAML.
pub fn crd() -> Result<u8> {
    print!("{}", serde_yaml_ng::to_string(&StepRun::crd())?);
    Ok(0)
}
