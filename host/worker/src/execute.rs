//! Preparing one claimed run: its policy (named, from the worker's
//! configuration), its time limit (capped by the policy's), the step and
//! package pulled by reference, the secrets read from the Secrets it
//! names, and the run's options. Anything wrong ends the run before the
//! step starts, with the reason a user can act on (Invalid or PullFailed).

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use stepbox::cluster::live::LiveCluster;
use stepbox::report::{LogEntry, Pinned, Sources};
use stepbox::target::Target;
use stepbox::{LoadedStep, RunOptions};
use stepbox_oci::artifact::Kind;
use stepbox_oci::{PullOptions, Reference};
use tokio_util::sync::CancellationToken;

use crate::caches::InUse;
use crate::crd::{DryRun, Reason, StepRun};
use crate::report_store::LiveLog;
use crate::status::Outcome;
use crate::worker::Shared;

/// A run ready to start.
pub struct Prepared {
    /// The step.
    pub step: Arc<LoadedStep>,
    /// Its options.
    pub opts: RunOptions,
    /// The step's manifest digest.
    pub digest: String,
    /// The digests the run uses, kept by cache collection until it ends.
    pub in_use: InUse,
}

/// Prepares `run` (claimed, as run `run_id`) to start.
pub async fn prepare(
    shared: &Shared,
    run: &StepRun,
    run_id: &str,
    cancel: CancellationToken,
    log: LiveLog,
) -> Result<Prepared, Outcome> {
    let spec = &run.spec;
    let config = &shared.config;
    let (_, policy) = config
        .policies
        .get(spec.policy.as_deref())
        .map_err(|e| Outcome::failed(Reason::Invalid, e))?;
    let mut limits = policy.limits;
    if let Some(t) = &spec.timeout {
        let asked = humantime::parse_duration(t).map_err(|e| {
            Outcome::failed(
                Reason::Invalid,
                format!("spec.timeout {t:?} is not a duration ({e}); write e.g. 90s or 10m"),
            )
        })?;
        limits.timeout = asked.min(limits.timeout);
    }
    let require_digest = !config.allow_tags || policy.require_digest;

    let step_ref = parse(&spec.step, "spec.step")?;
    // No collection between a pull and its digests marked in use.
    let pulling = shared.caches.pulling().await;
    let mut in_use = shared.caches.hold();
    let step = shared
        .distribution()
        .pull(
            &step_ref,
            Kind::Step,
            &PullOptions {
                require_digest,
                verify_key: config.verify_key.clone(),
                max_layer: stepbox::engine::MAX_COMPONENT_BYTES,
            },
        )
        .await
        .map_err(pull_failed)?;
    in_use.add([step.digest.clone(), step.layer_digest.clone()]);
    let loaded = shared
        .load(&step.path, &step.layer_digest)
        .await
        .map_err(|e| Outcome::failed(Reason::Invalid, format!("{}: {e}", step.reference)))?;

    let package = match &spec.package {
        None => None,
        Some(p) => {
            let r = parse(p, "spec.package")?;
            let pulled = shared
                .distribution()
                .pull(
                    &r,
                    Kind::Package,
                    &PullOptions {
                        require_digest,
                        verify_key: config.verify_key.clone(),
                        max_layer: stepbox_oci::package::MAX_PACKAGE_BYTES,
                    },
                )
                .await
                .map_err(pull_failed)?;
            in_use.add([pulled.digest.clone(), pulled.layer_digest.clone()]);
            Some(pulled)
        }
    };

    drop(pulling);
    let secrets = read_secrets(shared, run).await?;
    let dry_run = spec.dry_run == DryRun::Server;
    let backend = LiveCluster::from_client(shared.client.clone(), dry_run);
    let target = Target::live(backend, dry_run, config.helm_binary.clone());
    let sink_log = log.clone();
    let mut opts = RunOptions::new(config.namespace.clone(), target)
        .name(step_ref.name())
        .run_id(run_id)
        .inputs(spec.inputs.clone())
        .secrets(secrets)
        .policy(policy)
        .limits(limits)
        .kubectl(config.kubectl_binary.clone())
        .sources(Sources {
            step: Some(Pinned {
                reference: step.reference.to_string(),
                digest: step.digest.clone(),
            }),
            package: package.as_ref().map(|p| Pinned {
                reference: p.reference.to_string(),
                digest: p.digest.clone(),
            }),
        })
        .cancel(cancel)
        .log_sink(Arc::new(move |e: &LogEntry| sink_log.push(e)));
    if let Some(p) = package {
        opts = opts.packages(p.path);
    }
    Ok(Prepared {
        step: loaded,
        opts,
        digest: step.digest,
        in_use,
    })
}

fn parse(text: &str, field: &str) -> Result<Reference, Outcome> {
    Reference::parse(text).map_err(|e| Outcome::failed(Reason::Invalid, format!("{field}: {e}")))
}

fn pull_failed(e: stepbox_oci::Error) -> Outcome {
    let reason = match e {
        stepbox_oci::Error::TagNotAllowed { .. } | stepbox_oci::Error::Reference { .. } => {
            Reason::Invalid
        }
        _ => Reason::PullFailed,
    };
    Outcome::failed(reason, e.to_string())
}

/// The values of `spec.secrets`, read from the Secrets of the namespace.
async fn read_secrets(shared: &Shared, run: &StepRun) -> Result<Vec<(String, String)>, Outcome> {
    let api: Api<Secret> = Api::namespaced(shared.client.clone(), &shared.config.namespace);
    let mut out = Vec::new();
    for (i, r) in run.spec.secrets.iter().enumerate() {
        let what = format!(
            "spec.secrets[{i}] ({}: Secret {} key {})",
            r.name, r.secret_name, r.key
        );
        let secret = match api.get_opt(&r.secret_name).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                return Err(Outcome::failed(
                    Reason::Invalid,
                    format!(
                        "{what}: no such Secret in namespace {}",
                        shared.config.namespace
                    ),
                ));
            }
            Err(e) => {
                return Err(Outcome::failed(
                    Reason::Invalid,
                    format!("{what}: cannot read it: {e}"),
                ));
            }
        };
        let value = secret
            .data
            .as_ref()
            .and_then(|d| d.get(&r.key))
            .map(|b| b.0.clone())
            .or_else(|| {
                secret
                    .string_data
                    .as_ref()
                    .and_then(|d| d.get(&r.key))
                    .map(|s| s.clone().into_bytes())
            });
        let Some(bytes) = value else {
            let keys: Vec<String> = secret
                .data
                .as_ref()
                .map(|d| d.keys().cloned().collect())
                .unwrap_or_default();
            return Err(Outcome::failed(
                Reason::Invalid,
                format!(
                    "{what}: the Secret has no such key (it has: {})",
                    keys.join(", ")
                ),
            ));
        };
        let value = String::from_utf8(bytes).map_err(|_| {
            Outcome::failed(
                Reason::Invalid,
                format!("{what}: the value is not UTF-8 text"),
            )
        })?;
        out.push((r.name.clone(), value));
    }
    Ok(out)
}
