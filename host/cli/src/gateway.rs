//! `stepbox gateway`: a Kubernetes API on localhost that holds any client
//! (kubectl, helm, an old script) to one namespace and one policy, with
//! every request and every change on stderr.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use clap::Args;
use stepbox::admission::Admission;
use stepbox::apiserver::{Gateway, Upstream};
use stepbox::cluster::MemoryCluster;
use stepbox::cluster::live::LiveCluster;
use stepbox::plan::PlanEntry;
use stepbox::policy::Policy;
use stepbox::report::{AuditSink, Decision};
use stepbox::target::ClusterChoice;

use crate::dev_cluster::wait_for_signal;
use crate::{ClusterArgs, EXIT_INVALID, LogFormat};

/// Options of `stepbox gateway`.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// The namespace clients are confined to [default: the policy's, else
    /// the context's or pod's, else "default"].
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// Policy YAML (RBAC-shaped rules) [default: built in, see `stepbox policy`].
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Write a kubeconfig for the gateway here (mode 0600) once it is
    /// ready [default: print it on stdout].
    #[arg(long, value_name = "FILE")]
    kubeconfig_out: Option<PathBuf>,
    /// Port on 127.0.0.1 [default: a free one].
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Send every write with dryRun=All: the cluster checks it, nothing
    /// changes (needs a cluster).
    #[arg(long)]
    server_dry_run: bool,
}

fn invalid(msg: String) -> Result<u8> {
    eprintln!("error: {msg}");
    Ok(EXIT_INVALID)
}

/// Audit lines and plan entries on stderr, one a line.
struct StderrAudit {
    json: bool,
}

impl AuditSink for StderrAudit {
    fn audit(&self, call: &str, target: &str, decision: Decision, reason: &str) {
        if self.json {
            let line = serde_json::json!({"audit": {"call": call, "target": target, "decision": decision, "reason": reason}});
            eprintln!("{line}");
        } else {
            let decision = match decision {
                Decision::Allowed => "allowed",
                Decision::Denied => "DENIED ",
            };
            let reason = if reason.is_empty() {
                String::new()
            } else {
                format!(": {reason}")
            };
            eprintln!("{decision} {call} {target}{reason}");
        }
    }

    fn plan(&self, entry: PlanEntry) {
        if self.json {
            eprintln!("{}", serde_json::json!({ "plan": entry }));
        } else {
            eprintln!("changed {entry}");
        }
    }
}

/// Serves the gateway until SIGINT or SIGTERM.
pub async fn gateway(args: GatewayArgs, log_format: LogFormat) -> Result<u8> {
    let policy = match &args.policy {
        Some(p) => match Policy::load(p) {
            Ok(p) => p,
            Err(e) => return invalid(format!("policy {}: {e}", p.display())),
        },
        None => Policy::default(),
    };
    let (upstream, backend, context_ns, what): (
        Upstream,
        Arc<dyn stepbox::cluster::ClusterBackend>,
        _,
        _,
    ) = match args.cluster.choice() {
        ClusterChoice::Embedded => {
            if args.server_dry_run {
                return invalid(
                        "--server-dry-run needs a cluster: pass --kubeconfig, --context or --in-cluster".into(),
                    );
            }
            let cluster = MemoryCluster::new();
            (
                Upstream::Memory(cluster.clone()),
                Arc::new(cluster),
                None,
                "the embedded namespace".to_string(),
            )
        }
        ClusterChoice::Live(live) => {
            let config = match live.load().await {
                Ok(c) => c,
                Err(e) => return invalid(e.to_string()),
            };
            let context_ns = config.default_namespace.clone();
            let cluster = match LiveCluster::from_config(config, args.server_dry_run) {
                Ok(c) => c,
                Err(e) => return invalid(e.to_string()),
            };
            if let Err(e) = cluster.preflight().await {
                eprintln!("error: {e}");
                return Ok(1);
            }
            let what = format!("the cluster at {}", cluster.server());
            (
                Upstream::Live(cluster.client().clone()),
                Arc::new(cluster),
                Some(context_ns),
                what,
            )
        }
    };
    let namespace = args
        .namespace
        .clone()
        .or_else(|| policy.namespace.clone())
        .or(context_ns)
        .unwrap_or_else(|| "default".into());
    if let Err(e) = stepbox::k8s::names::dns1123_label(&namespace) {
        return invalid(format!(
            "namespace {namespace:?} is not a valid namespace name: {e}"
        ));
    }
    if let Upstream::Memory(cluster) = &upstream
        && let Err(e) = cluster.ensure_namespace(&namespace, "stepbox")
    {
        return invalid(format!("namespace {namespace:?}: {e}"));
    }
    let audit = Arc::new(StderrAudit {
        json: matches!(log_format, LogFormat::Json),
    });
    let admission = Admission::new(namespace.clone(), Arc::new(policy), backend.clone(), audit);
    let server = match Gateway::new(upstream, backend, Arc::new(admission))
        .namespace(&namespace)
        .dry_run(args.server_dry_run)
        .port(args.port)
        .start()
        .await
    {
        Ok(s) => s,
        Err(e) if e.is_port_in_use() => {
            return invalid(format!("port {} is already in use", args.port));
        }
        Err(e) => return invalid(e.to_string()),
    };
    eprintln!(
        "gateway to {what} at {}, confined to namespace {namespace}",
        server.url()
    );
    match &args.kubeconfig_out {
        Some(path) => {
            if let Err(e) = server.write_kubeconfig(path) {
                server.shutdown().await;
                return invalid(format!("--kubeconfig-out {}: {e}", path.display()));
            }
            eprintln!("kubeconfig written to {}", path.display());
        }
        None => print!("{}", server.kubeconfig_yaml(&namespace)),
    }
    eprintln!("press Ctrl-C to stop");
    wait_for_signal().await?;
    eprintln!("stopping");
    server.shutdown().await;
    Ok(0)
}
