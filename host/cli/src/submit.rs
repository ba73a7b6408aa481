//! `stepbox submit` (create a StepRun, optionally follow it to the end)
//! and `stepbox logs` (read a StepRun's log or report), the way kubectl
//! and tkn users work with runs.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use kube::{Resource, ResourceExt};
use stepbox_worker::crd::{DryRun, Phase, Reason, SecretRef, StepRun, StepRunSpec};

use crate::ClusterArgs;

/// Options of `stepbox submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The step: REGISTRY/REPOSITORY@sha256:… (a tag only where the worker allows tags).
    step: String,
    /// The package the step sees as /packages: a reference.
    #[arg(long, short = 'p', value_name = "REF")]
    package: Option<String>,
    /// An input, NAME=VALUE (repeatable).
    #[arg(long = "input", short = 'i', value_name = "NAME=VALUE", value_parser = crate::parse_key_value)]
    inputs: Vec<(String, String)>,
    /// A secret the step reads as NAME, from key KEY of Secret SECRET in the
    /// namespace: NAME=SECRET/KEY (repeatable). Values never leave the cluster.
    #[arg(long = "secret-ref", value_name = "NAME=SECRET/KEY", value_parser = parse_secret_ref)]
    secrets: Vec<SecretRef>,
    /// A policy of the worker's configuration [default: the worker's default].
    #[arg(long, value_name = "NAME")]
    policy: Option<String>,
    /// The run's time limit, e.g. 90s, 10m (capped by the policy's).
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
    /// Send every write with dryRun=All.
    #[arg(long)]
    server_dry_run: bool,
    /// Run again this many times if the worker running it is lost.
    #[arg(long, value_name = "N", default_value_t = 0)]
    retries: u32,
    /// Delete the StepRun this long after it finished, e.g. 1h.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    ttl: Option<Duration>,
    /// The StepRun's name [default: the step's name and a random suffix].
    #[arg(long)]
    name: Option<String>,
    /// The namespace [default: the context's].
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// Stream the log until the run ends, and exit with its exit code.
    #[arg(long, short = 'f')]
    follow: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
}

fn parse_secret_ref(s: &str) -> Result<SecretRef, String> {
    let hint = || format!("expected NAME=SECRET/KEY, got {s:?}");
    let (name, rest) = s.split_once('=').ok_or_else(hint)?;
    let (secret, key) = rest.split_once('/').ok_or_else(hint)?;
    if name.is_empty() || secret.is_empty() || key.is_empty() {
        return Err(hint());
    }
    Ok(SecretRef {
        name: name.into(),
        secret_name: secret.into(),
        key: key.into(),
    })
}

/// `stepbox submit`.
pub async fn submit(args: SubmitArgs) -> Result<u8> {
    let reference = stepbox_oci::Reference::parse(&args.step)?;
    if let Some(p) = &args.package {
        stepbox_oci::Reference::parse(p)?;
    }
    let (client, default_namespace) = args.cluster.client().await?;
    let namespace = args.namespace.clone().unwrap_or(default_namespace);
    let api: Api<StepRun> = Api::namespaced(client.clone(), &namespace);
    let mut run = StepRun::new(
        args.name.as_deref().unwrap_or_default(),
        StepRunSpec {
            step: args.step.clone(),
            package: args.package.clone(),
            inputs: args.inputs.iter().cloned().collect::<BTreeMap<_, _>>(),
            secrets: args.secrets.clone(),
            policy: args.policy.clone(),
            timeout: args.timeout.clone(),
            dry_run: if args.server_dry_run {
                DryRun::Server
            } else {
                DryRun::None
            },
            cancel: false,
            retries: args.retries,
            ttl_seconds_after_finished: args
                .ttl
                .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX)),
        },
    );
    if args.name.is_none() {
        run.meta_mut().name = None;
        run.meta_mut().generate_name = Some(format!("{}-", reference.name()));
    }
    let created = api
        .create(&PostParams::default(), &run)
        .await
        .map_err(|e| {
            api_error(
                e,
                format!("cannot create the StepRun in namespace {namespace}"),
            )
        })?;
    let name = created.name_any();
    println!("steprun.stepbox.dev/{name} created");
    if !args.follow {
        return Ok(0);
    }
    follow(&api, &Api::namespaced(client, &namespace), &name).await
}

/// Streams `name`'s log until it finishes; its exit code.
async fn follow(api: &Api<StepRun>, configmaps: &Api<ConfigMap>, name: &str) -> Result<u8> {
    let mut printed = 0usize;
    let mut attempt = 0u32;
    let mut out = std::io::stdout();
    loop {
        let run = api
            .get_opt(name)
            .await
            .map_err(|e| api_error(e, format!("cannot read StepRun {name}")))?;
        let Some(run) = run else {
            bail!("StepRun {name} was deleted before it finished");
        };
        let status = run.status.clone().unwrap_or_default();
        if status.attempt > attempt {
            if attempt > 0 {
                writeln!(out, "--- attempt {} ---", status.attempt)?;
            }
            attempt = status.attempt;
            printed = 0;
        }
        let report = status
            .report
            .clone()
            .unwrap_or_else(|| stepbox_worker::report_name(name));
        if let Some(cm) = configmaps.get_opt(&report).await.ok().flatten()
            && let Some(log) = stepbox_worker::log_of(&cm)
        {
            if log.len() < printed {
                printed = 0;
            }
            out.write_all(&log.as_bytes()[printed..])?;
            out.flush()?;
            printed = log.len();
        }
        if status.phase.is_some_and(Phase::is_finished) {
            let condition = status.conditions.first();
            let reason = condition
                .and_then(|c| c.reason.as_deref())
                .unwrap_or("Unknown");
            let phase = if status.phase == Some(Phase::Succeeded) {
                "Succeeded"
            } else {
                "Failed"
            };
            match &status.message {
                Some(m) => eprintln!("steprun.stepbox.dev/{name}: {phase} ({reason}): {m}"),
                None => eprintln!("steprun.stepbox.dev/{name}: {phase} ({reason})"),
            }
            for (k, v) in &status.outputs {
                println!("{k}={v}");
            }
            return Ok(reason_code(reason));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `what: MESSAGE (CODE REASON)` for an API server's refusal, without
/// kube's debug rendering of the whole Status.
fn api_error(e: kube::Error, what: String) -> anyhow::Error {
    match e {
        kube::Error::Api(s) => anyhow::anyhow!("{what}: {} ({} {})", s.message, s.code, s.reason),
        other => anyhow::Error::new(other).context(what),
    }
}

fn reason_code(reason: &str) -> u8 {
    let reason = match reason {
        "Succeeded" => Reason::Succeeded,
        "StepFailed" => Reason::StepFailed,
        "TimedOut" => Reason::TimedOut,
        "LimitExceeded" => Reason::LimitExceeded,
        "Cancelled" => Reason::Cancelled,
        "WorkerLost" => Reason::WorkerLost,
        "PullFailed" => Reason::PullFailed,
        "Invalid" => Reason::Invalid,
        _ => Reason::StepFailed,
    };
    stepbox_worker::exit_code(reason)
}

/// Options of `stepbox logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The StepRun.
    name: String,
    /// Print the JSON report instead of the log.
    #[arg(long)]
    report: bool,
    /// The namespace [default: the context's].
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// `stepbox logs`.
pub async fn logs(args: LogsArgs) -> Result<u8> {
    let (client, default_namespace) = args.cluster.client().await?;
    let namespace = args.namespace.clone().unwrap_or(default_namespace);
    let api: Api<StepRun> = Api::namespaced(client.clone(), &namespace);
    let run = api
        .get_opt(&args.name)
        .await
        .map_err(|e| api_error(e, format!("cannot read StepRun {}", args.name)))?;
    let Some(run) = run else {
        bail!(
            "no StepRun {} in namespace {namespace} (kubectl get stepruns -n {namespace})",
            args.name
        );
    };
    let report = run
        .status
        .as_ref()
        .and_then(|s| s.report.clone())
        .unwrap_or_else(|| stepbox_worker::report_name(&args.name));
    let configmaps: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let Some(cm) = configmaps
        .get_opt(&report)
        .await
        .map_err(|e| api_error(e, format!("cannot read ConfigMap {report}")))?
    else {
        bail!(
            "StepRun {} has no log yet (it has not started, or wrote nothing)",
            args.name
        );
    };
    if args.report {
        let Some(r) = stepbox_worker::report_of(&cm) else {
            bail!("StepRun {} has not finished: no report yet", args.name);
        };
        println!("{r}");
    } else {
        print!("{}", stepbox_worker::log_of(&cm).unwrap_or_default());
    }
    Ok(0)
}
