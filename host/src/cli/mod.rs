//! The `stepbox` command line: a thin clap layer over the library.
//!
//! Exit codes: 0 succeeded, 1 the step failed, 2 invalid input (bad flags,
//! unreadable or malformed component, wrong world, bad policy or seed),
//! 3 a limit ended the run.

mod build;
mod dev_cluster;
mod render;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::caps::helm::HelmConfig;
use crate::cluster::memory::MemoryCluster;
use crate::policy::Policy;
use crate::report::{LogEntry, RunMeta, RunReport, Status};
use crate::runtime::{RunOptions, Runtime, RuntimeConfig};

/// Exit code for invalid input.
pub const EXIT_INVALID: u8 = 2;

/// Run deployment steps compiled to WASI components, confined to one
/// Kubernetes namespace.
#[derive(Debug, Parser)]
#[command(name = "stepbox", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// More host diagnostics on stderr (-v info, -vv debug, -vvv trace).
    /// RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Format of host diagnostics on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    /// For people: live log, a kubectl-diff style plan, outputs.
    Text,
    /// One JSON report on stdout.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build a step crate for wasm32-wasip2 and check it is a step component.
    /// Prints the .wasm path as the last line of stdout.
    Build(BuildArgs),
    /// Show a component's imports (its capabilities), exports, size and sha256.
    Inspect(InspectArgs),
    /// Run a step (a .wasm component, or a step crate directory, built first).
    Run(Box<RunArgs>),
    /// Print the built-in default policy as YAML (a starting point for --policy).
    Policy,
    /// Check a live cluster as a deployment target: server version, the
    /// namespace, and what the policy grants vs. what the credentials may do.
    Check(CheckArgs),
    /// Serve the embedded namespace as a Kubernetes API on localhost (kubectl, helm, kube-rs).
    DevCluster(dev_cluster::DevClusterArgs),
}

/// Where a run's objects live: the embedded namespace (default) or a cluster.
#[derive(Debug, Args, Clone)]
struct ClusterArgs {
    /// Run against the cluster of this kubeconfig instead of the embedded namespace.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Run against this kubeconfig context ($KUBECONFIG or ~/.kube/config unless --kubeconfig).
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// Run against the cluster this pod is in, with its service account.
    #[arg(long, conflicts_with_all = ["kubeconfig", "context"])]
    in_cluster: bool,
    /// Where the service account's token, ca.crt and namespace files are (with --in-cluster).
    #[arg(long, value_name = "DIR", default_value = crate::cluster::live::SERVICE_ACCOUNT_DIR)]
    service_account_dir: PathBuf,
    /// Use the embedded namespace (the default; refuses cluster flags).
    #[arg(long, conflicts_with_all = ["kubeconfig", "context", "in_cluster"])]
    offline: bool,
}

impl ClusterArgs {
    /// `None` = offline: a local run never touches a cluster by surprise.
    fn live(&self) -> Option<crate::cluster::live::LiveConfig> {
        use crate::cluster::live::LiveConfig;
        if self.in_cluster {
            Some(LiveConfig::InCluster {
                dir: self.service_account_dir.clone(),
            })
        } else if self.kubeconfig.is_some() || self.context.is_some() {
            Some(LiveConfig::Kubeconfig {
                path: self.kubeconfig.clone(),
                context: self.context.clone(),
            })
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DryRun {
    /// Writes are real (against a cluster).
    None,
    /// Every write is sent with dryRun=All; the plan comes from the server's answers.
    Server,
}

#[derive(Debug, Args)]
struct CheckArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// The namespace to check [default: the policy's, else the context's / pod's].
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// The policy to compare with [default: built in].
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
}

#[derive(Debug, Args)]
struct BuildArgs {
    /// The step crate's directory (holding Cargo.toml).
    step_dir: PathBuf,
    /// Build in debug mode instead of release.
    #[arg(long)]
    debug: bool,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(Debug, Args)]
struct InspectArgs {
    /// The component file.
    file: PathBuf,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(Debug, Args, Clone)]
struct CacheArgs {
    /// Where precompiled components are kept [default: $STEPBOX_CACHE_DIR or ~/.cache/stepbox/components].
    #[arg(long, global = true)]
    cache_dir: Option<PathBuf>,
    /// Do not use the compile cache.
    #[arg(long, global = true)]
    no_cache: bool,
}

impl CacheArgs {
    fn runtime(&self) -> Result<Runtime> {
        let cache_dir = if self.no_cache {
            None
        } else {
            Some(
                self.cache_dir
                    .clone()
                    .unwrap_or_else(crate::runtime::CompileCache::default_dir),
            )
        };
        Runtime::new(RuntimeConfig {
            cache_dir,
            ..Default::default()
        })
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The step: a .wasm component, or a step crate directory (built with `stepbox build` first).
    step: PathBuf,
    /// An input, NAME=VALUE (repeatable).
    #[arg(long = "input", short = 'i', value_name = "NAME=VALUE", value_parser = parse_key_value)]
    inputs: Vec<(String, String)>,
    /// A secret, NAME=VALUE (repeatable). Masked as ******** everywhere.
    #[arg(long = "secret", short = 's', value_name = "NAME=VALUE", value_parser = parse_key_value)]
    secrets: Vec<(String, String)>,
    /// A secret read from a file, NAME=PATH (keeps the value off the command line).
    #[arg(long = "secret-file", value_name = "NAME=PATH", value_parser = parse_key_value)]
    secret_files: Vec<(String, String)>,
    /// Directory the step sees read-only as /packages.
    #[arg(long, short = 'p', value_name = "DIR")]
    package: Option<PathBuf>,
    /// Directory the step sees read-write as /workspace [default: a fresh temp dir].
    #[arg(long, short = 'w', value_name = "DIR")]
    workspace: Option<PathBuf>,
    /// YAML (or JSON) objects to preload into the embedded namespace.
    #[arg(long, value_name = "FILE")]
    seed: Option<PathBuf>,
    /// The namespace the run is confined to [default: the policy's, else "default"].
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// Policy YAML (RBAC-shaped rules and limits) [default: built in, see `stepbox policy`].
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Wall-time limit, e.g. 30s, 10m [default: the policy's, 10m].
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
    /// Memory limit, e.g. 64Mi, 1Gi [default: the policy's, 256Mi].
    #[arg(long, value_parser = parse_size)]
    memory: Option<u64>,
    /// Step name in the report [default: the file name].
    #[arg(long)]
    name: Option<String>,
    /// The helm binary for the step's helm calls (v3.8+) [default: $STEPBOX_HELM, else `helm` on PATH].
    #[arg(long, value_name = "PATH")]
    helm: Option<PathBuf>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    /// `server`: send every write with dryRun=All (needs a cluster).
    #[arg(long, value_enum, default_value_t = DryRun::None)]
    dry_run: DryRun,
    /// Time limit of each request to a cluster, e.g. 5s [default: 30s]. A
    /// read that runs out is tried again; a write is reported as of
    /// unknown outcome.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    request_timeout: Option<Duration>,
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(flatten)]
    cache: CacheArgs,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected NAME=VALUE, got {s:?}")),
    }
}

fn parse_size(s: &str) -> Result<u64, String> {
    crate::policy::parse_size(s).ok_or_else(|| {
        format!("{s:?} is not a size: use bytes or a number with Ki, Mi, Gi (e.g. 256Mi)")
    })
}

/// Parses the command line, runs it, and returns the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose, cli.log_format);
    // One run is one guest plus its host calls, which take turns: on one
    // thread they do without the cross-thread wake-ups a multi-thread
    // runtime pays on every call (measured: about a sixth of a live
    // deploy). Blocking work still goes to tokio's blocking pool. The
    // other commands (dev-cluster serves many clients) get worker threads.
    let mut builder = if matches!(cli.command, Command::Run(_)) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

fn init_tracing(verbose: u8, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    // kube-client logs every failed request at ERROR; the step (and the
    // report) already get that error with a hint, so keep it for -v.
    let default = match verbose {
        0 => "warn,kube_client=off",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

async fn dispatch(command: Command) -> Result<u8> {
    match command {
        Command::Build(args) => {
            build::build_command(&args.step_dir, !args.debug, &args.cache.runtime()?)
        }
        Command::Inspect(args) => inspect(args),
        Command::Run(args) => run(*args).await,
        Command::Policy => {
            print!("{}", Policy::default_yaml());
            Ok(0)
        }
        Command::Check(args) => check(args).await,
        Command::DevCluster(args) => dev_cluster::dev_cluster(args).await,
    }
}

fn inspect(args: InspectArgs) -> Result<u8> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let runtime = args.cache.runtime()?;
    let info = match runtime.load_bytes(&args.file, &bytes, "step") {
        Ok(step) => step.info.clone(),
        // A component of another world is still worth describing.
        Err(crate::runtime::LoadError::WrongWorld { .. }) => {
            let component = wasmtime::component::Component::new(runtime.engine(), &bytes)
                .map_err(|e| anyhow::anyhow!("{e:#}"))?;
            crate::runtime::inspect::describe(
                runtime.engine(),
                &component,
                &bytes,
                crate::runtime::inspect::sha256_hex(&bytes),
            )
        }
        Err(e) => return Err(e.into()),
    };
    match args.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&render::inspect_json(&args.file, &info))?
        ),
        OutputFormat::Text => print!("{}", render::inspect_text(&args.file, &info)),
    }
    Ok(0)
}

fn read_secrets(args: &RunArgs) -> Result<BTreeMap<String, String>> {
    let mut secrets: BTreeMap<String, String> = args.secrets.iter().cloned().collect();
    for (name, path) in &args.secret_files {
        let value = std::fs::read_to_string(path)
            .with_context(|| format!("--secret-file {name}: cannot read {path}"))?;
        secrets.insert(
            name.clone(),
            value.trim_end_matches(['\n', '\r']).to_string(),
        );
    }
    Ok(secrets)
}

async fn run(args: RunArgs) -> Result<u8> {
    let json = args.output == OutputFormat::Json;
    let fail = |msg: String| -> Result<u8> {
        let report = RunReport::invalid(msg, RunMeta::default());
        emit(&report, json, false);
        Ok(Status::Invalid.exit_code() as u8)
    };

    let policy = match &args.policy {
        Some(p) => match Policy::load(p) {
            Ok(p) => p,
            Err(e) => return fail(format!("policy {}: {e}", p.display())),
        },
        None => Policy::default(),
    };
    let mut limits = policy.limits;
    if let Some(t) = args.timeout {
        limits.timeout = t;
    }
    if let Some(m) = args.memory {
        limits.memory_bytes = m;
    }
    let live = args.cluster.live();
    if live.is_none() && args.dry_run == DryRun::Server {
        return fail(
            "--dry-run=server needs a cluster: pass --kubeconfig, --context or --in-cluster \
             (without them the run uses the embedded namespace and is a dry run already)"
                .into(),
        );
    }
    if live.is_some() && args.seed.is_some() {
        return fail(
            "--seed preloads the embedded namespace; it cannot be used against a cluster".into(),
        );
    }
    // Resolve the cluster config once: it also supplies the context's (or
    // pod's) namespace, the last in the precedence order.
    let live_config = match &live {
        Some(config) => match config.load().await {
            Ok(c) => Some(c),
            Err(e) => return fail(e.to_string()),
        },
        None => None,
    };
    let namespace = args
        .namespace
        .clone()
        .or_else(|| policy.namespace.clone())
        .or_else(|| live_config.as_ref().map(|c| c.default_namespace.clone()))
        .unwrap_or_else(|| "default".to_string());
    if let Err(e) = crate::cluster::names::dns1123_label(&namespace) {
        return fail(format!(
            "namespace {namespace:?} is not a valid namespace name: {e}"
        ));
    }
    let secrets = match read_secrets(&args) {
        Ok(s) => s,
        Err(e) => return fail(format!("{e:#}")),
    };
    let server_dry_run = args.dry_run == DryRun::Server;
    let helm_binary = HelmConfig::binary_from_env(args.helm.clone());
    let (backend, helm): (Arc<dyn crate::cluster::ClusterBackend>, Option<HelmConfig>) =
        match live_config {
            Some(config) => {
                let mut backend =
                    match crate::cluster::live::LiveCluster::from_config(config, server_dry_run) {
                        Ok(c) => c,
                        Err(e) => return fail(e.to_string()),
                    };
                if let Some(t) = args.request_timeout {
                    backend = backend.request_timeout(t);
                }
                // A server that is down fails the run now, naming the
                // server, rather than in the middle of the step.
                if let Err(e) = backend.preflight().await {
                    let meta = RunMeta {
                        step: args.name.clone().unwrap_or_default(),
                        namespace: namespace.clone(),
                        backend: "live".into(),
                        dry_run: server_dry_run,
                        ..RunMeta::default()
                    };
                    let report = RunReport::not_started(e.to_string(), meta);
                    emit(&report, json, false);
                    return Ok(report.status.exit_code() as u8);
                }
                // helm needs a kubeconfig of its own for the same cluster.
                let helm_cluster = match &live {
                    Some(crate::cluster::live::LiveConfig::InCluster { dir }) => {
                        crate::caps::helm::HelmCluster::in_cluster(dir)
                    }
                    Some(crate::cluster::live::LiveConfig::Kubeconfig { path, context }) => {
                        let path = path
                            .clone()
                            .or_else(|| std::env::var_os("KUBECONFIG").map(PathBuf::from))
                            .or_else(|| dirs::home_dir().map(|h| h.join(".kube/config")))
                            .unwrap_or_default();
                        crate::caps::helm::HelmCluster::from_kubeconfig_file(
                            &path,
                            context.as_deref(),
                        )
                    }
                    _ => {
                        return fail(
                            "helm on a cluster needs --kubeconfig, --context or --in-cluster"
                                .into(),
                        );
                    }
                };
                let helm = match helm_cluster {
                    Ok(cluster) => Some(HelmConfig {
                        binary: helm_binary,
                        cluster,
                    }),
                    Err(e) => {
                        tracing::warn!("helm calls will fail: {e}");
                        None
                    }
                };
                (Arc::new(backend), helm)
            }
            None => {
                let cluster = MemoryCluster::new();
                if let Some(seed) = &args.seed {
                    let text = match std::fs::read_to_string(seed) {
                        Ok(t) => t,
                        Err(e) => return fail(format!("--seed {}: {e}", seed.display())),
                    };
                    if let Err(e) = cluster.seed_yaml(&text, &namespace) {
                        return fail(format!("--seed {}: {e}", seed.display()));
                    }
                }
                let helm = HelmConfig::embedded(helm_binary, cluster.clone());
                (Arc::new(cluster), Some(helm))
            }
        };

    let runtime = args.cache.runtime()?;
    let wasm = if args.step.is_dir() {
        match build::build_step(&args.step, true, !json) {
            Ok(p) => p,
            Err(e) => return fail(format!("{e:#}")),
        }
    } else {
        args.step.clone()
    };
    let step = match runtime.load_file(&wasm) {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };

    let sink: Option<crate::report::LogSink> = if json {
        None
    } else {
        let color = std::io::stderr().is_terminal();
        Some(Arc::new(move |e: &LogEntry| {
            eprintln!("{}", render::log_line(e, color))
        }))
    };
    let opts = RunOptions {
        name: args.name.clone(),
        namespace,
        inputs: args.inputs.iter().cloned().collect(),
        secrets,
        packages: args.package.clone(),
        workspace: args.workspace.clone(),
        policy: Arc::new(policy),
        limits,
        backend,
        helm,
        dry_run: live.is_none() || server_dry_run,
        log_sink: sink,
    };
    let report = runtime.run(&step, opts).await;
    emit(&report, json, true);
    Ok(report.status.exit_code() as u8)
}

async fn check(args: CheckArgs) -> Result<u8> {
    let policy = match &args.policy {
        Some(p) => Policy::load(p).with_context(|| format!("policy {}", p.display()))?,
        None => Policy::default(),
    };
    let live = args
        .cluster
        .live()
        .unwrap_or(crate::cluster::live::LiveConfig::Kubeconfig {
            path: None,
            context: None,
        });
    let config = live.load().await?;
    let namespace = args
        .namespace
        .clone()
        .or_else(|| policy.namespace.clone())
        .unwrap_or_else(|| config.default_namespace.clone());
    let cluster = crate::cluster::live::LiveCluster::from_config(config, false)?;
    let report = crate::check::check(&cluster, &policy, &namespace).await;
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutputFormat::Text => print!("{}", render::check_text(&report)),
    }
    Ok(if report.ok { 0 } else { 1 })
}

fn emit(report: &RunReport, json: bool, started: bool) {
    if json {
        match serde_json::to_string_pretty(report) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("error: cannot encode the report: {e}"),
        }
    } else if started {
        print!(
            "{}",
            render::report_text(report, std::io::stdout().is_terminal())
        );
    } else if let Some(e) = &report.error {
        eprintln!("error: {e}");
    }
}
