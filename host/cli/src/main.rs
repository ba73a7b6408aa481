//! The `stepbox` command: a thin clap layer over the [`stepbox`] library.
//! Parsing arguments and rendering results live here; choosing a cluster,
//! loading and running steps live in the library, where the benches, the
//! tests and the worker reuse them.
//!
//! Exit codes: 0 succeeded, 1 the step failed, 2 invalid input (bad flags,
//! unreadable or malformed component, wrong world, bad policy or seed),
//! 3 a limit ended the run.

mod build;
mod cache;
mod dev_cluster;
mod gateway;
mod new;
mod oci;
mod rbac;
mod render;
mod submit;
mod worker;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use stepbox::cluster::live::{LiveCluster, LiveConfig, SERVICE_ACCOUNT_DIR};
use stepbox::policy::Policy;
use stepbox::report::{LogEntry, RunMeta, RunReport, Status};
use stepbox::target::{ClusterChoice, Target, TargetError, TargetOptions};
use stepbox::{RunOptions, Runtime, RuntimeConfig};

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
pub(crate) enum LogFormat {
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
    /// Build a step directory (Rust, JavaScript/TypeScript or Python) into a
    /// component and check it is a step. Prints the .wasm path as the last
    /// line of stdout.
    Build(BuildArgs),
    /// Write a ready step into ./NAME (a step that reads an input, applies a
    /// ConfigMap, waits and sets outputs, a sample package and a README).
    New(new::NewArgs),
    /// Show a component's imports (its capabilities), exports, size and sha256.
    Inspect(InspectArgs),
    /// Run a step (a .wasm component, or a step directory, built first).
    Run(Box<RunArgs>),
    /// Print the built-in default policy as YAML (a starting point for --policy).
    Policy,
    /// Check a live cluster as a deployment target: server version, the
    /// namespace, and what the policy grants (or, with --step, what the
    /// steps need) vs. what the credentials may do.
    Check(CheckArgs),
    /// Print the namespaced Role (and, with --service-account, its
    /// RoleBinding) that steps need, from what they declare, as YAML for
    /// `kubectl apply -f -`.
    Rbac(Box<rbac::RbacArgs>),
    /// Serve the embedded namespace as a Kubernetes API on localhost (kubectl, helm, kube-rs).
    DevCluster(dev_cluster::DevClusterArgs),
    /// Serve a Kubernetes API on localhost that admits every request by a
    /// policy and confines it to one namespace, in front of a cluster (or
    /// the embedded namespace): for kubectl, helm or any client.
    Gateway(Box<gateway::GatewayArgs>),
    /// Push a step (a .wasm component or a step directory, built first) or
    /// with --package a package directory to a registry as an OCI artifact.
    /// Prints REF@sha256:… as the last line.
    Push(Box<oci::PushArgs>),
    /// Pull a step or package into the blob cache (verified); prints its
    /// pinned reference as the last line.
    Pull(Box<oci::PullArgs>),
    /// Show or prune the on-disk caches (pulled artifacts and compiled
    /// components), least recently used first.
    Cache(cache::CacheCommand),
    /// Run StepRuns of one namespace of a cluster: watch, claim, run,
    /// heartbeat, report (the runtime that replaces script pods).
    Worker(Box<worker::WorkerArgs>),
    /// Print the StepRun CustomResourceDefinition (YAML), to install apart
    /// from the worker: `stepbox crd | kubectl apply -f -`.
    Crd,
    /// Create a StepRun and, with --follow, stream its log and exit with
    /// the step's exit code (0, 1, 2, 3).
    Submit(Box<submit::SubmitArgs>),
    /// Print the log (or --report) of a StepRun.
    Logs(submit::LogsArgs),
}

/// Where a run's objects live: the embedded namespace (default) or a cluster.
#[derive(Debug, Args, Clone)]
pub(crate) struct ClusterArgs {
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
    #[arg(long, value_name = "DIR", default_value = SERVICE_ACCOUNT_DIR)]
    service_account_dir: PathBuf,
    /// Use the embedded namespace (the default; refuses cluster flags).
    #[arg(long, conflicts_with_all = ["kubeconfig", "context", "in_cluster"])]
    offline: bool,
}

impl ClusterArgs {
    /// The embedded namespace unless a cluster is named: a local run never
    /// touches a cluster by surprise.
    pub(crate) fn choice(&self) -> ClusterChoice {
        if self.in_cluster {
            ClusterChoice::Live(LiveConfig::InCluster {
                dir: self.service_account_dir.clone(),
            })
        } else if self.kubeconfig.is_some() || self.context.is_some() {
            ClusterChoice::Live(LiveConfig::Kubeconfig {
                path: self.kubeconfig.clone(),
                context: self.context.clone(),
            })
        } else {
            ClusterChoice::Embedded
        }
    }

    /// A client for the cluster these flags name (else kubectl's choice:
    /// $KUBECONFIG, ~/.kube/config, or the pod's service account), and
    /// its default namespace: for the commands that only make sense
    /// against a cluster (worker, submit, logs).
    pub(crate) async fn client(&self) -> Result<(kube::Client, String)> {
        let live = match self.choice() {
            ClusterChoice::Live(live) => live,
            ClusterChoice::Embedded => LiveConfig::Infer,
        };
        let config = live.load().await?;
        let namespace = config.default_namespace.clone();
        let client = kube::Client::try_from(config)
            .context("cannot build a Kubernetes client from the configuration")?;
        Ok((client, namespace))
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
    /// The policy to compare with [default: built in]; with --step, what
    /// the Role of the steps is kept within (as `stepbox rbac --policy`).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Compare with the Role these steps need (what `stepbox rbac` prints
    /// for them) instead of the policy: a .wasm, a step directory or a
    /// reference; repeatable.
    #[arg(long = "step", value_name = "STEP")]
    steps: Vec<String>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    registry: oci::RegistryArgs,
}

#[derive(Debug, Args)]
struct BuildArgs {
    /// The step's directory: a Rust crate (Cargo.toml), a JavaScript or
    /// TypeScript step (package.json, step.js or step.ts) or a Python step
    /// (step.py). JavaScript and Python toolchains are installed on first
    /// use into $STEPBOX_TOOLCHAIN_DIR (default: toolchains/ in --cache-dir
    /// or $STEPBOX_CACHE_DIR, else ~/.cache/stepbox/toolchains);
    /// $STEPBOX_SDK_DIR overrides where the guest SDK is.
    step_dir: PathBuf,
    /// Rust: build in debug mode instead of release.
    #[arg(long)]
    debug: bool,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(Debug, Args)]
struct InspectArgs {
    /// The component file, or a step reference (pulled into the blob cache).
    file: PathBuf,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    registry: oci::RegistryArgs,
}

#[derive(Debug, Args, Clone)]
pub(crate) struct CacheArgs {
    /// Where precompiled components are kept [default: $STEPBOX_CACHE_DIR or ~/.cache/stepbox/components].
    #[arg(long, global = true)]
    cache_dir: Option<PathBuf>,
    /// Do not use the compile cache.
    #[arg(long, global = true)]
    no_cache: bool,
}

impl CacheArgs {
    /// Where JavaScript and Python toolchains are installed.
    pub(crate) fn toolchains(&self) -> PathBuf {
        build::default_toolchain_root(self.cache_dir.as_deref())
    }

    /// The compile cache directory (`None` with --no-cache).
    pub(crate) fn dir(&self) -> Option<PathBuf> {
        (!self.no_cache).then(|| {
            self.cache_dir
                .clone()
                .unwrap_or_else(stepbox::engine::CompileCache::default_dir)
        })
    }

    pub(crate) fn runtime(&self) -> Result<Runtime> {
        Runtime::new(RuntimeConfig {
            cache_dir: self.dir(),
            ..Default::default()
        })
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The step: a .wasm component, a step directory (Rust, JavaScript/TypeScript or Python),
    /// built as `stepbox build` does first (an unchanged step is not rebuilt), or a reference
    /// REGISTRY/REPOSITORY:TAG or …@sha256:DIGEST (`oci://` optional) pulled into the blob cache.
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
    /// Directory the step sees read-only as /packages, or a package reference [default:
    /// STEP/package when STEP is a directory holding one, else an empty directory].
    #[arg(long, short = 'p', value_name = "DIR|REF")]
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
    /// The kubectl whose kustomize renders the step's kustomizations [default: $STEPBOX_KUBECTL, else `kubectl` on PATH].
    #[arg(long, value_name = "PATH")]
    kubectl: Option<PathBuf>,
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
    #[command(flatten)]
    verify: oci::VerifyArgs,
    #[command(flatten)]
    registry: oci::RegistryArgs,
}

pub(crate) fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected NAME=VALUE, got {s:?}")),
    }
}

fn parse_size(s: &str) -> Result<u64, String> {
    stepbox::policy::parse_size(s).ok_or_else(|| {
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
    match runtime.block_on(dispatch(cli.command, cli.log_format)) {
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

async fn dispatch(command: Command, log_format: LogFormat) -> Result<u8> {
    match command {
        Command::Build(args) => {
            let opts = build::BuildOptions {
                release: !args.debug,
                show_progress: true,
                toolchains: args.cache.toolchains(),
            };
            build::build_command(&args.step_dir, &opts, &args.cache.runtime()?)
        }
        Command::New(args) => new::new_command(&args),
        Command::Inspect(args) => inspect(args).await,
        Command::Run(args) => run(*args).await,
        Command::Policy => {
            print!("{}", Policy::default_yaml());
            Ok(0)
        }
        Command::Check(args) => check(args).await,
        Command::Rbac(args) => rbac::rbac(*args).await,
        Command::DevCluster(args) => dev_cluster::dev_cluster(args).await,
        Command::Gateway(args) => gateway::gateway(*args, log_format).await,
        Command::Push(args) => {
            let runtime = args.cache().runtime()?;
            oci::push(*args, &runtime).await
        }
        Command::Pull(args) => oci::pull(*args).await,
        Command::Cache(args) => cache::cache(args),
        Command::Worker(args) => worker::worker(*args).await,
        Command::Crd => worker::crd(),
        Command::Submit(args) => submit::submit(*args).await,
        Command::Logs(args) => submit::logs(args).await,
    }
}

async fn inspect(args: InspectArgs) -> Result<u8> {
    let step = oci::resolve_step(
        &args.file.to_string_lossy(),
        &args.registry,
        &oci::VerifyArgs::default(),
        false,
        false,
    )
    .await?;
    let file = &step.path;
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let runtime = args.cache.runtime()?;
    let info = match runtime.load_bytes(&args.file, &bytes, "step") {
        Ok(step) => step.info.clone(),
        // A component of another world is still worth describing.
        Err(stepbox::LoadError::WrongWorld { .. }) => {
            let component = wasmtime::component::Component::new(runtime.engine(), &bytes)
                .map_err(|e| anyhow::anyhow!("{e:#}"))?;
            stepbox::inspect::describe(
                runtime.engine(),
                &component,
                &bytes,
                stepbox::inspect::sha256_hex(&bytes),
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
    let policy_requires_digest = policy.require_digest;
    let mut limits = policy.limits;
    if let Some(t) = args.timeout {
        limits.timeout = t;
    }
    if let Some(m) = args.memory {
        limits.memory_bytes = m;
    }
    let seed = match &args.seed {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(e) => return fail(format!("--seed {}: {e}", path.display())),
        },
        None => None,
    };
    let choice = args.cluster.choice();
    // Seeded objects without a namespace go to the run's; a live target's
    // own default namespace is only known once it is connected.
    let early_namespace = args
        .namespace
        .clone()
        .or_else(|| policy.namespace.clone())
        .unwrap_or_else(|| "default".to_string());
    let target_opts = TargetOptions {
        server_dry_run: args.dry_run == DryRun::Server,
        request_timeout: args.request_timeout,
        seed,
        seed_namespace: early_namespace,
        helm_binary: args.helm.clone(),
    };
    let target = match Target::connect(&choice, &target_opts).await {
        Ok(t) => t,
        Err(TargetError::Seed(e)) => {
            let path = args.seed.as_deref().unwrap_or(Path::new("")).display();
            return fail(format!("--seed {path}: {e}"));
        }
        Err(TargetError::Unreachable(e)) => {
            let meta = RunMeta {
                step: args.name.clone().unwrap_or_default(),
                namespace: args.namespace.clone().unwrap_or_default(),
                backend: "live".into(),
                dry_run: target_opts.server_dry_run,
                ..RunMeta::default()
            };
            let report = RunReport::not_started(e, meta);
            emit(&report, json, false);
            return Ok(report.status.exit_code() as u8);
        }
        Err(e) => return fail(e.to_string()),
    };
    // The namespace: the flag, the policy's, the context's (or pod's),
    // else "default".
    let namespace = args
        .namespace
        .clone()
        .or_else(|| policy.namespace.clone())
        .or_else(|| target.default_namespace.clone())
        .unwrap_or_else(|| "default".to_string());
    if let Err(e) = stepbox::k8s::names::dns1123_label(&namespace) {
        return fail(format!(
            "namespace {namespace:?} is not a valid namespace name: {e}"
        ));
    }
    let secrets = match read_secrets(&args) {
        Ok(s) => s,
        Err(e) => return fail(format!("{e:#}")),
    };

    // A step or package named by reference is pulled (verified, by digest
    // when required) into the blob cache first.
    let quiet = json;
    // Each keeps what it pulled in the cache until the run is over.
    let step_arg = match oci::resolve_step(
        &args.step.to_string_lossy(),
        &args.registry,
        &args.verify,
        policy_requires_digest,
        quiet,
    )
    .await
    {
        Ok(s) => s,
        Err(e) => return fail(format!("{e:#}")),
    };
    let step_path = &step_arg.path;
    let package_arg = match package_dir(&args) {
        Some(p) => match oci::resolve_package(
            &p.to_string_lossy(),
            &args.registry,
            &args.verify,
            policy_requires_digest,
            quiet,
        )
        .await
        {
            Ok(resolved) => Some(resolved),
            Err(e) => return fail(format!("{e:#}")),
        },
        None => None,
    };

    let runtime = args.cache.runtime()?;
    let wasm = if step_path.is_dir() {
        let opts = build::BuildOptions {
            release: true,
            show_progress: !json,
            toolchains: args.cache.toolchains(),
        };
        match build::build_step(step_path, &opts) {
            Ok(p) => p,
            Err(e) => return fail(format!("{e:#}")),
        }
    } else {
        step_path.clone()
    };
    let step = match runtime.load_file(&wasm) {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };

    let mut opts = RunOptions::new(namespace, target)
        .inputs(args.inputs.iter().cloned())
        .secrets(secrets)
        .policy(policy)
        .limits(limits)
        .kubectl(stepbox::caps::kustomize::kubectl_from_env(
            args.kubectl.clone(),
        ));
    match (&args.name, &step_arg.source) {
        (Some(name), _) => opts = opts.name(name),
        (None, Some(pulled)) => {
            if let Ok(r) = stepbox_oci::Reference::parse(&pulled.reference) {
                opts = opts.name(r.name());
            }
        }
        (None, None) => {}
    }
    if let Some(p) = &package_arg {
        opts = opts.packages(&p.path);
    }
    opts = opts.sources(oci::sources(
        step_arg.source.clone(),
        package_arg.as_ref().and_then(|p| p.source.clone()),
    ));
    if let Some(dir) = &args.workspace {
        opts = opts.workspace(dir);
    }
    if !json {
        let color = std::io::stderr().is_terminal();
        opts = opts.log_sink(Arc::new(move |e: &LogEntry| {
            eprintln!("{}", render::log_line(e, color))
        }));
    }
    let report = runtime.run(&step, opts).await;
    emit(&report, json, true);
    Ok(report.status.exit_code() as u8)
}

/// The directory mounted at /packages: `--package`, else the step
/// directory's `package/` if it has one (as `stepbox new` writes).
fn package_dir(args: &RunArgs) -> Option<PathBuf> {
    args.package.clone().or_else(|| {
        let default = args.step.join("package");
        (args.step.is_dir() && default.is_dir()).then_some(default)
    })
}

async fn check(args: CheckArgs) -> Result<u8> {
    let given = args
        .policy
        .as_deref()
        .map(|p| Policy::load(p).with_context(|| format!("policy {}", p.display())))
        .transpose()?;
    let policy = given.clone().unwrap_or_default();
    let live = match args.cluster.choice() {
        ClusterChoice::Live(live) => live,
        ClusterChoice::Embedded => LiveConfig::Kubeconfig {
            path: None,
            context: None,
        },
    };
    let config = live.load().await?;
    let namespace = args
        .namespace
        .clone()
        .or_else(|| policy.namespace.clone())
        .unwrap_or_else(|| config.default_namespace.clone());
    let (grants, compared_with) = if args.steps.is_empty() {
        (policy.grants(), "the policy".to_string())
    } else {
        let steps = rbac::declared_steps(&args.steps, &args.cache, &args.registry).await?;
        let needed = rbac::needed(&steps, given.as_ref(), &namespace)?;
        let role = Policy {
            rules: needed.rules,
            ..Policy::default()
        };
        (role.grants(), "the steps' needs".to_string())
    };
    let cluster = LiveCluster::from_config(config, false)?;
    let report = stepbox::check::check(&cluster, &grants, &compared_with, &namespace).await;
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
