//! What a worker writes into `StepRun.status`, within size budgets (an
//! object is at most 1.5 MiB in etcd and `kubectl get -o yaml` should stay
//! readable): the claim, the heartbeat, the outcome of a run, a recovery.
//! The full report and log go to the report ConfigMap instead.
//!
//! Every write after the claim is a JSON patch that first `test`s the
//! run id and our incarnation, so a worker that lost its run (recovered by
//! another as WorkerLost) cannot overwrite what came after.

use serde_json::{Value, json};
use stepbox::report::{LimitKind, RunReport, Status};

use crate::crd::{
    CONDITION_SUCCEEDED, Condition, Phase, PlanSummary, Reason, StepRunStatus, WorkerRef,
};

/// Largest `status.message`, in bytes.
pub const MAX_MESSAGE: usize = 1024;
/// Largest single output value in status, in bytes (the report has all).
pub const MAX_OUTPUT_VALUE: usize = 1024;
/// Largest sum of output names and values in status, in bytes.
pub const MAX_OUTPUTS: usize = 8 * 1024;
/// Plan entries named in `status.plan.objects`.
pub const MAX_PLAN_OBJECTS: usize = 20;

/// Who a worker is: its pod name and this process's incarnation.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The pod name.
    pub name: String,
    /// A fresh id per process start.
    pub incarnation: String,
}

impl Identity {
    /// The `status.worker` of a heartbeat at `time`.
    pub fn worker_ref(&self, time: String) -> WorkerRef {
        WorkerRef {
            name: self.name.clone(),
            incarnation: self.incarnation.clone(),
            heartbeat: time,
        }
    }
}

/// The `Succeeded` condition.
pub fn condition(status: &str, reason: Reason, message: Option<String>) -> Condition {
    Condition {
        type_: CONDITION_SUCCEEDED.into(),
        status: status.into(),
        reason: Some(reason.as_str().into()),
        message: message.map(|m| truncate(&m, MAX_MESSAGE)),
        last_transition_time: Some(crate::now()),
    }
}

/// The status of a claim: Running, the next attempt, a fresh run id.
pub fn claimed(
    previous: Option<&StepRunStatus>,
    me: &Identity,
    run_id: &str,
    report: &str,
) -> StepRunStatus {
    let attempt = previous.map_or(0, |s| s.attempt) + 1;
    StepRunStatus {
        phase: Some(Phase::Running),
        conditions: vec![condition(
            "Unknown",
            Reason::Running,
            Some(format!("running on {} (attempt {attempt})", me.name)),
        )],
        attempt,
        run_id: Some(run_id.to_string()),
        step_digest: None,
        worker: Some(me.worker_ref(crate::now_precise())),
        start_time: Some(crate::now()),
        completion_time: None,
        outputs: Default::default(),
        plan: None,
        message: None,
        report: Some(report.to_string()),
    }
}

/// A JSON patch of `ops` (built here, so always well formed).
pub fn json_patch(ops: Value) -> kube::api::Patch<()> {
    kube::api::Patch::Json(
        serde_json::from_value(ops).unwrap_or_else(|_| json_patch::Patch(Vec::new())),
    )
}

/// The tests every write after the claim starts with: the run is still
/// ours.
fn still_ours(me: &Identity, run_id: &str) -> Vec<Value> {
    vec![
        json!({"op": "test", "path": "/status/runId", "value": run_id}),
        json!({"op": "test", "path": "/status/worker/incarnation", "value": me.incarnation}),
    ]
}

/// The heartbeat: a JSON patch that fails (422) when the run is no longer
/// ours.
pub fn heartbeat(me: &Identity, run_id: &str) -> Value {
    let mut ops = still_ours(me, run_id);
    ops.push(
        json!({"op": "replace", "path": "/status/worker/heartbeat", "value": crate::now_precise()}),
    );
    Value::Array(ops)
}

/// How a run ended, for status and Events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Succeeded or Failed.
    pub phase: Phase,
    /// The condition's reason.
    pub reason: Reason,
    /// For people (the error of a failed run).
    pub message: Option<String>,
}

impl Outcome {
    /// A run that ended before the step ran.
    pub fn failed(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            phase: Phase::Failed,
            reason,
            message: Some(message.into()),
        }
    }

    /// The outcome of a finished run.
    pub fn of(report: &RunReport) -> Self {
        let reason = match report.status {
            Status::Succeeded => Reason::Succeeded,
            Status::Failed => Reason::StepFailed,
            Status::LimitExceeded => match report.limit {
                Some(LimitKind::Time { .. }) => Reason::TimedOut,
                _ => Reason::LimitExceeded,
            },
            Status::Invalid => Reason::Invalid,
            Status::Cancelled => Reason::Cancelled,
        };
        Self {
            phase: if reason == Reason::Succeeded {
                Phase::Succeeded
            } else {
                Phase::Failed
            },
            reason,
            message: report.error.clone(),
        }
    }
}

/// The exit code of a reason: 0 succeeded, 1 the step failed (or was
/// cancelled, or lost), 2 invalid (or not pulled), 3 a limit.
pub fn exit_code(reason: Reason) -> u8 {
    match reason {
        Reason::Succeeded => 0,
        Reason::StepFailed | Reason::Cancelled | Reason::WorkerLost | Reason::Running => 1,
        Reason::Invalid | Reason::PullFailed => 2,
        Reason::TimedOut | Reason::LimitExceeded => 3,
    }
}

/// The finishing write: a JSON patch of the phase, condition, times,
/// outputs and plan, tested on the run still being ours.
pub fn finished(
    me: &Identity,
    run_id: &str,
    outcome: &Outcome,
    report: Option<&RunReport>,
) -> Value {
    let mut ops = still_ours(me, run_id);
    let status = if outcome.phase == Phase::Succeeded {
        "True"
    } else {
        "False"
    };
    let mut add = |path: &str, value: Value| {
        ops.push(json!({"op": "add", "path": format!("/status/{path}"), "value": value}));
    };
    add("phase", json!(outcome.phase));
    add(
        "conditions",
        json!([condition(status, outcome.reason, outcome.message.clone())]),
    );
    add("completionTime", json!(crate::now()));
    if let Some(m) = &outcome.message {
        add("message", json!(truncate(m, MAX_MESSAGE)));
    }
    if let Some(report) = report {
        add("outputs", json!(outputs(report)));
        add("plan", json!(plan_summary(report)));
    }
    Value::Array(ops)
}

/// The outputs for status: masked already (the report masks secrets and
/// sensitive outputs), each value cut at [`MAX_OUTPUT_VALUE`], all within
/// [`MAX_OUTPUTS`]; what does not fit is named in the report only.
pub fn outputs(report: &RunReport) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut used = 0;
    for (k, v) in &report.outputs {
        let v = truncate(v, MAX_OUTPUT_VALUE);
        if used + k.len() + v.len() > MAX_OUTPUTS {
            out.insert(
                "stepbox.dev/truncated".into(),
                "more outputs than fit in status: see the report ConfigMap".into(),
            );
            break;
        }
        used += k.len() + v.len();
        out.insert(k.clone(), v);
    }
    out
}

/// Counts of the plan's actions and the first objects.
pub fn plan_summary(report: &RunReport) -> PlanSummary {
    use stepbox::plan::Action;
    let mut s = PlanSummary::default();
    for e in &report.plan {
        match e.action {
            Action::Created => s.created += 1,
            Action::Configured => s.configured += 1,
            Action::Unchanged => s.unchanged += 1,
            Action::Deleted => s.deleted += 1,
        }
        if s.objects.len() < MAX_PLAN_OBJECTS {
            s.objects.push(format!(
                "{}/{} {}",
                e.kind.to_lowercase(),
                e.name,
                e.action.as_str()
            ));
        }
    }
    s
}

/// A recovered run (its worker lost): pending again for another attempt,
/// or failed when no retry is left. The whole status, for a replace with
/// the observed resourceVersion.
pub fn recovered(previous: &StepRunStatus, retries: u32, why: &str) -> StepRunStatus {
    let retry = previous.attempt <= retries;
    let message = if retry {
        format!(
            "{why}; retrying (attempt {} of {})",
            previous.attempt + 1,
            retries + 1
        )
    } else {
        format!("{why}; no retries left (spec.retries: {retries})")
    };
    StepRunStatus {
        phase: Some(if retry { Phase::Pending } else { Phase::Failed }),
        conditions: vec![condition(
            if retry { "Unknown" } else { "False" },
            Reason::WorkerLost,
            Some(message.clone()),
        )],
        attempt: previous.attempt,
        run_id: previous.run_id.clone(),
        step_digest: previous.step_digest.clone(),
        worker: None,
        start_time: previous.start_time.clone(),
        completion_time: (!retry).then(crate::now),
        outputs: Default::default(),
        plan: None,
        message: Some(truncate(&message, MAX_MESSAGE)),
        report: previous.report.clone(),
    }
}

/// A StepRun cancelled before any worker ran it.
pub fn cancelled_before_start(previous: Option<&StepRunStatus>) -> StepRunStatus {
    let message = "cancelled (spec.cancel) before it started".to_string();
    StepRunStatus {
        phase: Some(Phase::Failed),
        conditions: vec![condition("False", Reason::Cancelled, Some(message.clone()))],
        attempt: previous.map_or(0, |s| s.attempt),
        completion_time: Some(crate::now()),
        message: Some(message),
        ..Default::default()
    }
}

/// `text` cut to at most `max` bytes at a character boundary, marked.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    const MARK: &str = "… (truncated)";
    let mut end = max.saturating_sub(MARK.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_characters_whole_and_within_budget() {
        let s = "é".repeat(1000);
        let t = truncate(&s, 101);
        assert!(t.len() <= 101, "{}", t.len());
        assert!(t.ends_with("(truncated)"));
        assert_eq!(truncate("short", 10), "short");
    }

    #[test]
    fn a_lost_run_is_retried_while_retries_remain() {
        let prev = StepRunStatus {
            phase: Some(Phase::Running),
            attempt: 1,
            ..Default::default()
        };
        let again = recovered(&prev, 1, "worker w-1 lost");
        assert_eq!(again.phase, Some(Phase::Pending));
        assert!(again.message.unwrap().contains("attempt 2 of 2"));
        let prev = StepRunStatus { attempt: 2, ..prev };
        let done = recovered(&prev, 1, "worker w-1 lost");
        assert_eq!(done.phase, Some(Phase::Failed));
        assert_eq!(done.conditions[0].reason.as_deref(), Some("WorkerLost"));
        assert!(done.completion_time.is_some());
    }

    #[test]
    fn exit_codes_are_those_of_stepbox_run() {
        assert_eq!(exit_code(Reason::Succeeded), 0);
        assert_eq!(exit_code(Reason::StepFailed), 1);
        assert_eq!(exit_code(Reason::PullFailed), 2);
        assert_eq!(exit_code(Reason::TimedOut), 3);
        assert_eq!(exit_code(Reason::LimitExceeded), 3);
    }
}
