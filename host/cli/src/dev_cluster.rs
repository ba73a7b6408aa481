//! `stepbox dev-cluster`: serve the embedded namespace as a Kubernetes API
//! on localhost until SIGINT or SIGTERM.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::EXIT_INVALID;
use stepbox::apiserver::DevCluster;
#[cfg(feature = "faults")]
use stepbox::apiserver::Fault;
use stepbox::cluster::MemoryCluster;

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
    /// Inject a fault (repeatable; the first that matches a request fires):
    /// KIND[:OPTION,...].
    ///
    /// KIND: status=CODE (answer CODE, 400-599, with a Kubernetes Status;
    /// nothing is handled), delay=DURATION (then handle), drop (close the
    /// connection without answering; nothing is handled), drop-after
    /// (handle, e.g. apply a write, then close without answering),
    /// cut-watch (cut a watch stream), down-after=N (answer N matching
    /// requests, then drop every request).
    ///
    /// OPTION: verb=get|list|watch|create|update|patch|delete|deletecollection,
    /// resource=PLURAL[.GROUP], name=NAME, skip=N (let N through first),
    /// times=N (fire N times; default every time), retry-after=SECONDS
    /// (status), after-events=N or after=DURATION (cut-watch).
    ///
    /// Examples: status=429:verb=get,resource=deployments,times=2,retry-after=1;
    /// status=409:verb=patch,name=web; delay=30s:verb=get; drop-after:verb=patch,times=1;
    /// cut-watch:after-events=0,times=2; down-after=10. Faults fired are logged
    /// on stderr; every request is listed at GET /debug/stepbox/requests
    /// (`kubectl get --raw /debug/stepbox/requests`). Only in builds with the
    /// `faults` feature (the tests').
    #[cfg(feature = "faults")]
    #[arg(long = "fault", value_name = "SPEC", value_parser = parse_fault)]
    faults: Vec<Fault>,
}

#[cfg(feature = "faults")]
fn parse_fault(s: &str) -> Result<Fault, String> {
    s.parse::<Fault>().map_err(|e| e.to_string())
}

fn invalid(msg: String) -> Result<u8> {
    eprintln!("error: {msg}");
    Ok(EXIT_INVALID)
}

/// Runs the server in the foreground; exit code 0 after a clean stop.
pub async fn dev_cluster(args: DevClusterArgs) -> Result<u8> {
    if let Err(e) = stepbox::k8s::names::dns1123_label(&args.namespace) {
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
    #[cfg(feature = "faults")]
    for fault in &args.faults {
        builder = builder.fault(fault.clone());
    }
    let server = match builder.start().await {
        Ok(s) => s,
        Err(e) if e.is_port_in_use() => {
            return invalid(format!("port {} is already in use", args.port));
        }
        Err(e) => return invalid(e.to_string()),
    };
    eprintln!("serving the embedded namespace at {}", server.url());
    #[cfg(feature = "faults")]
    for fault in &args.faults {
        eprintln!("injecting fault {}", fault.spec);
    }
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

pub(crate) async fn wait_for_signal() -> Result<()> {
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
