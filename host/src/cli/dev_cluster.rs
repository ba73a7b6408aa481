//! `stepbox dev-cluster`: serve the embedded namespace as a Kubernetes API
//! on localhost until SIGINT or SIGTERM.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::EXIT_INVALID;
use crate::cluster::memory::MemoryCluster;
use crate::devcluster::DevCluster;

/// Options of `stepbox dev-cluster`.
#[derive(Debug, Args)]
pub struct DevClusterArgs {
    /// Port on 127.0.0.1 [default: a free one].
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Write a kubeconfig for the server here (mode 0600) once it is ready
    /// [default: print it on stdout].
    #[arg(long, value_name = "FILE")]
    kubeconfig_out: Option<PathBuf>,
    /// YAML (or JSON) objects to preload; their namespaces are created.
    #[arg(long, value_name = "FILE")]
    seed: Option<PathBuf>,
    /// Namespace for objects without one and for the kubeconfig's context.
    #[arg(long, short = 'n', default_value = "default")]
    namespace: String,
    /// Bearer token clients must present [default: random].
    #[arg(long, env = "STEPBOX_DEV_CLUSTER_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

fn invalid(msg: String) -> Result<u8> {
    eprintln!("error: {msg}");
    Ok(EXIT_INVALID)
}

/// Runs the server in the foreground; exit code 0 after a clean stop.
pub async fn dev_cluster(args: DevClusterArgs) -> Result<u8> {
    if let Err(e) = crate::cluster::names::dns1123_label(&args.namespace) {
        return invalid(format!(
            "--namespace {:?} is not a valid namespace name: {e}",
            args.namespace
        ));
    }
    let cluster = MemoryCluster::new();
    if let Some(seed) = &args.seed {
        let text = match std::fs::read_to_string(seed) {
            Ok(t) => t,
            Err(e) => return invalid(format!("--seed {}: {e}", seed.display())),
        };
        if let Err(e) = cluster.seed_yaml(&text, &args.namespace) {
            return invalid(format!("--seed {}: {e}", seed.display()));
        }
    }
    let mut builder = DevCluster::new(cluster)
        .port(args.port)
        .namespace(&args.namespace);
    if let Some(t) = &args.token {
        builder = builder.token(t);
    }
    let server = match builder.start().await {
        Ok(s) => s,
        Err(e) if e.is_port_in_use() => {
            return invalid(format!("port {} is already in use", args.port));
        }
        Err(e) => return invalid(e.to_string()),
    };
    eprintln!("serving the embedded namespace at {}", server.url());
    match &args.kubeconfig_out {
        Some(path) => {
            if let Err(e) = server.write_kubeconfig(path) {
                server.shutdown().await;
                return invalid(format!("--kubeconfig-out {}: {e}", path.display()));
            }
            eprintln!("kubeconfig written to {}", path.display());
        }
        None => print!("{}", server.kubeconfig_yaml(&args.namespace)),
    }
    eprintln!("press Ctrl-C to stop");
    wait_for_signal().await?;
    eprintln!("stopping");
    server.shutdown().await;
    Ok(0)
}

async fn wait_for_signal() -> Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}
