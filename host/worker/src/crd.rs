//! The `StepRun` custom resource (`stepbox.dev/v1alpha1`, namespaced): what
//! to run, and what happened.
//!
//! ```yaml
//! apiVersion: stepbox.dev/v1alpha1
//! kind: StepRun
//! metadata: {name: deploy-42, namespace: shop}
//! spec:
//!   step: registry.example/steps/deploy-manifests@sha256:…
//!   package: registry.example/pkgs/shop@sha256:…
//!   inputs: {image: "nginx:1.27"}
//!   secrets: [{name: token, secretName: deploy-token, key: token}]
//!   policy: deployer          # a policy of the worker's configuration
//!   timeout: 10m              # capped by the policy
//!   dryRun: None              # or Server
//!   retries: 1                # re-runs after a lost worker
//!   ttlSecondsAfterFinished: 3600
//! ```
//!
//! The policy is named, never given: the StepRun cannot grant itself
//! anything. Secrets are references to Secrets of the StepRun's namespace,
//! never values.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The group of stepbox's resources.
pub const GROUP: &str = "stepbox.dev";
/// The version.
pub const VERSION: &str = "v1alpha1";
/// The condition every StepRun carries.
pub const CONDITION_SUCCEEDED: &str = "Succeeded";

/// What to run.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "stepbox.dev",
    version = "v1alpha1",
    kind = "StepRun",
    namespaced,
    status = "StepRunStatus",
    shortname = "sr",
    category = "stepbox",
    printcolumn = r#"{"name": "Phase", "type": "string", "jsonPath": ".status.phase"}"#,
    printcolumn = r#"{"name": "Reason", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Succeeded\")].reason"}"#,
    printcolumn = r#"{"name": "Attempt", "type": "integer", "jsonPath": ".status.attempt"}"#,
    printcolumn = r#"{"name": "Worker", "type": "string", "priority": 1, "jsonPath": ".status.worker.name"}"#,
    printcolumn = r#"{"name": "Step", "type": "string", "priority": 1, "jsonPath": ".spec.step"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct StepRunSpec {
    /// The step: `REGISTRY/REPOSITORY@sha256:…` (a tag only where the
    /// worker allows tags).
    pub step: String,
    /// The package the step sees as `/packages`, by reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// Inputs, name → value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, String>,
    /// Secrets, each read from a Secret of the StepRun's namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretRef>,
    /// The name of a policy in the worker's configuration (default: the
    /// worker's default policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The run's time limit, e.g. `90s`, `10m` (capped by the policy's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// `Server`: every write is sent with dryRun=All.
    #[serde(default, skip_serializing_if = "is_default")]
    pub dry_run: DryRun,
    /// Stop the run (or do not start it).
    #[serde(default, skip_serializing_if = "is_default")]
    pub cancel: bool,
    /// How many times a run whose worker was lost is started again.
    #[serde(default, skip_serializing_if = "is_default")]
    pub retries: u32,
    /// Delete the StepRun this long after it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds_after_finished: Option<u32>,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// A secret of the run, read from a Secret of the namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// The name the step reads it by.
    pub name: String,
    /// The Secret.
    pub secret_name: String,
    /// The key in the Secret.
    pub key: String,
}

/// The dry-run mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DryRun {
    /// Writes are real.
    #[default]
    None,
    /// Every write is sent with dryRun=All.
    Server,
}

/// What happened.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepRunStatus {
    /// Pending, Running, Succeeded or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The `Succeeded` condition, with its reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// 1 for the first run, more after retries.
    #[serde(default, skip_serializing_if = "is_default")]
    pub attempt: u32,
    /// The run's id (in the report and the Events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The step's digest, as pulled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_digest: Option<String>,
    /// The worker holding the run, and when it last said so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<WorkerRef>,
    /// When the run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    /// The step's outputs (sensitive ones `********`), within a size budget.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, String>,
    /// What the run changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanSummary>,
    /// What happened, for people (the error of a failed run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The ConfigMap holding the full report and log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    /// Not claimed yet (or waiting for a retry).
    Pending,
    /// A worker runs it.
    Running,
    /// It succeeded.
    Succeeded,
    /// It did not (see the condition's reason).
    Failed,
}

impl Phase {
    /// Succeeded or Failed.
    pub fn is_finished(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed)
    }
}

/// A condition, as Kubernetes writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Succeeded`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Why, in one CamelCase word (see [`Reason`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

/// The reasons of the `Succeeded` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Claimed and running.
    Running,
    /// The step succeeded.
    Succeeded,
    /// The step failed (returned an error, or trapped).
    StepFailed,
    /// The run's time limit passed.
    TimedOut,
    /// Another limit (memory, log, output, workspace) ended the run.
    LimitExceeded,
    /// Cancelled (spec.cancel, or deleted).
    Cancelled,
    /// The worker running it died; retried while retries remain.
    WorkerLost,
    /// The step or package could not be pulled or verified.
    PullFailed,
    /// The StepRun is wrong: an unknown policy, a bad timeout, a missing
    /// Secret, a component that is not a step.
    Invalid,
}

impl Reason {
    /// The CamelCase word.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Running => "Running",
            Reason::Succeeded => "Succeeded",
            Reason::StepFailed => "StepFailed",
            Reason::TimedOut => "TimedOut",
            Reason::LimitExceeded => "LimitExceeded",
            Reason::Cancelled => "Cancelled",
            Reason::WorkerLost => "WorkerLost",
            Reason::PullFailed => "PullFailed",
            Reason::Invalid => "Invalid",
        }
    }
}

/// The worker holding a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerRef {
    /// The worker's identity (its pod name), and the process's start, so a
    /// restarted pod knows its old runs are lost.
    pub name: String,
    /// The worker process's id (changes when the pod restarts).
    pub incarnation: String,
    /// When the worker last said it is still running the run.
    pub heartbeat: String,
}

/// What a run changed, counted, and the first objects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanSummary {
    /// Objects created.
    pub created: u32,
    /// Objects configured.
    pub configured: u32,
    /// Objects unchanged.
    pub unchanged: u32,
    /// Objects deleted.
    pub deleted: u32,
    /// `deployment.apps/web configured`, … (the first ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    /// The CRD checked in at `deploy/crds/stepruns.stepbox.dev.yaml` is the
    /// one these types generate (regenerate it with `stepbox crd`).
    #[test]
    fn the_checked_in_crd_is_current() {
        let generated = serde_yaml_ng::to_string(&StepRun::crd()).unwrap();
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/crds/stepruns.stepbox.dev.yaml"
        );
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert_eq!(
            checked_in, generated,
            "deploy/crds/stepruns.stepbox.dev.yaml is stale: regenerate it with `stepbox crd > deploy/crds/stepruns.stepbox.dev.yaml`"
        );
    }
}
