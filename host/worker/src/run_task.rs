//! One claimed run, start to end: the claim (a status write with the
//! observed resourceVersion: of several workers, one wins, the others get
//! 409), the finalizer, the heartbeat and live log, the step, and the
//! outcome (report ConfigMap, status, Events, metrics).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::api::{PatchParams, PostParams};
use serde_json::json;
use tokio::sync::OwnedSemaphorePermit;

use crate::crd::{Phase, Reason, StepRun};
use crate::events::Kind;
use crate::report_store::{self, LiveLog};
use crate::status::{self, Outcome};
use crate::worker::{RunHandle, Shared, StopReason};
use crate::{FINALIZER, execute, recover};

/// Claims `obj` and, if the claim holds, runs it to the end.
pub async fn claim_and_run(
    shared: Arc<Shared>,
    obj: StepRun,
    handle: RunHandle,
    permit: OwnedSemaphorePermit,
) {
    let uid = obj.uid().unwrap_or_default();
    let claimed = claim(&shared, &obj).await;
    if let Some((run, run_id)) = claimed {
        shared.metrics.running.inc();
        run_claimed(&shared, run, &run_id, &handle).await;
        shared.metrics.running.dec();
    }
    shared.lock_running().remove(&uid);
    drop(permit);
    shared.wake.notify_one();
}

/// The claim: Running, ours, with a fresh run id, written with the
/// resourceVersion we saw.
async fn claim(shared: &Shared, obj: &StepRun) -> Option<(StepRun, String)> {
    let name = obj.name_any();
    let run_id = uuid::Uuid::new_v4().to_string();
    let mut claimed = obj.clone();
    claimed.status = Some(status::claimed(
        obj.status.as_ref(),
        &shared.me,
        &run_id,
        &report_store::report_name(&name),
    ));
    match shared
        .api
        .replace_status(&name, &PostParams::default(), &claimed)
        .await
    {
        Ok(run) => {
            if let Some(age) = obj
                .metadata
                .creation_timestamp
                .as_ref()
                .and_then(|t| crate::age(&t.0.to_string()))
            {
                shared.metrics.queue_wait.observe(age.as_secs_f64());
            }
            let attempt = run.status.as_ref().map_or(1, |s| s.attempt);
            tracing::info!(steprun = %name, %run_id, attempt, "claimed");
            shared.events.record(
                &run,
                Kind::Normal,
                "Claimed",
                format!("claimed by {} (attempt {attempt})", shared.me.name),
            );
            Some((run, run_id))
        }
        Err(kube::Error::Api(s)) if s.code == 409 => {
            shared.metrics.claims_lost.inc();
            tracing::debug!(steprun = %name, "another worker claimed it first");
            None
        }
        Err(kube::Error::Api(s)) if s.code == 404 => None,
        Err(e) => {
            tracing::warn!(steprun = %name, error = %e, "cannot claim; will try again");
            None
        }
    }
}

async fn run_claimed(shared: &Arc<Shared>, run: StepRun, run_id: &str, handle: &RunHandle) {
    let name = run.name_any();
    let started = Instant::now();
    let run = add_finalizer(shared, run).await;
    let log = LiveLog::default();
    let beat = tokio::spawn(heartbeat(
        shared.clone(),
        run.clone(),
        run_id.to_string(),
        handle.clone(),
        log.clone(),
    ));

    let (mut outcome, report, digest) =
        match execute::prepare(shared, &run, run_id, handle.cancel.clone(), log.clone()).await {
            Ok(p) => {
                let report = shared.runtime().run(&p.step, p.opts).await;
                // Its blobs and package may be collected from now on.
                drop(p.in_use);
                (Outcome::of(&report), Some(report), Some(p.digest))
            }
            Err(o) => (o, None, None),
        };
    beat.abort();
    shared.collect.notify_one();

    match handle.reason() {
        Some(StopReason::Lost) => {
            tracing::warn!(steprun = %name, %run_id, "the run was recovered by another worker; its outcome is not written");
            return;
        }
        Some(StopReason::Drain) => {
            recover::hand_back(shared, &name, run_id).await;
            return;
        }
        Some(StopReason::Cancelled(why)) => {
            outcome = Outcome::failed(Reason::Cancelled, why);
        }
        None => {}
    }

    let text = log.take_changed().unwrap_or_default();
    if let Err(e) = report_store::write(&shared.configmaps, &run, &text, report.as_ref()).await {
        tracing::warn!(steprun = %name, error = %e, "cannot write the report ConfigMap");
    }
    let mut patch = status::finished(&shared.me, run_id, &outcome, report.as_ref());
    if let (Some(d), Some(ops)) = (&digest, patch.as_array_mut()) {
        ops.push(json!({"op": "add", "path": "/status/stepDigest", "value": d}));
    }
    match shared
        .api
        .patch_status(&name, &PatchParams::default(), &status::json_patch(patch))
        .await
    {
        Ok(done) => {
            remove_finalizer(shared, &done).await;
            let kind = if outcome.phase == Phase::Succeeded {
                Kind::Normal
            } else {
                Kind::Warning
            };
            let message = match &outcome.message {
                Some(m) => format!("{}: {m}", outcome.reason.as_str()),
                None => format!(
                    "{} in {} ms",
                    outcome.reason.as_str(),
                    started.elapsed().as_millis()
                ),
            };
            shared
                .events
                .record(&done, kind, outcome.reason.as_str(), message);
            shared
                .metrics
                .finished(outcome.reason.as_str(), started.elapsed().as_secs_f64());
            tracing::info!(steprun = %name, %run_id, result = outcome.reason.as_str(), ms = started.elapsed().as_millis() as u64, "finished");
        }
        Err(kube::Error::Api(s)) if s.code == 422 || s.code == 404 => {
            tracing::warn!(steprun = %name, %run_id, "the run is no longer ours (recovered or deleted); outcome not written");
        }
        Err(e) => {
            tracing::error!(steprun = %name, %run_id, error = %e, "cannot write the outcome; another worker will find the run lost");
        }
    }
}

/// Heartbeats every `--heartbeat` and writes the live log every second
/// while it changes. A heartbeat the server refuses (the run is no longer
/// ours) stops the run.
async fn heartbeat(
    shared: Arc<Shared>,
    run: StepRun,
    run_id: String,
    handle: RunHandle,
    log: LiveLog,
) {
    let name = run.name_any();
    let every = shared.config.heartbeat;
    let tick = every.min(Duration::from_secs(1));
    let mut last_beat = Instant::now();
    loop {
        tokio::time::sleep(tick).await;
        if let Some(text) = log.take_changed()
            && let Err(e) = report_store::write(&shared.configmaps, &run, &text, None).await
        {
            tracing::debug!(steprun = %name, error = %e, "cannot write the live log");
        }
        if last_beat.elapsed() < every {
            continue;
        }
        last_beat = Instant::now();
        let patch = status::heartbeat(&shared.me, &run_id);
        let result = shared
            .api
            .patch_status(&name, &PatchParams::default(), &status::json_patch(patch))
            .await;
        match result {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 422 => {
                handle.stop(StopReason::Lost);
                return;
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {
                handle.stop(StopReason::Cancelled("the StepRun was deleted".into()));
                return;
            }
            Err(e) => tracing::warn!(steprun = %name, error = %e, "heartbeat failed; trying again"),
        }
    }
}

/// Adds our finalizer, so a deletion waits for the guest to stop.
async fn add_finalizer(shared: &Shared, run: StepRun) -> StepRun {
    if run.finalizers().iter().any(|f| f == FINALIZER) {
        return run;
    }
    let patch = if run.metadata.finalizers.is_none() {
        json!([{"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}])
    } else {
        json!([{"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER}])
    };
    let name = run.name_any();
    match shared
        .api
        .patch(&name, &PatchParams::default(), &status::json_patch(patch))
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(steprun = %name, error = %e, "cannot add the finalizer");
            run
        }
    }
}

/// Removes our finalizer from `run` (tested at its index, so a concurrent
/// change is not overwritten; retried against the latest object).
pub async fn remove_finalizer(shared: &Shared, run: &StepRun) {
    let name = run.name_any();
    let mut current = Some(run.clone());
    for _ in 0..3 {
        let Some(obj) = current.take() else {
            return;
        };
        let Some(i) = obj.finalizers().iter().position(|f| f == FINALIZER) else {
            return;
        };
        let patch = json!([
            {"op": "test", "path": format!("/metadata/finalizers/{i}"), "value": FINALIZER},
            {"op": "remove", "path": format!("/metadata/finalizers/{i}")},
        ]);
        match shared
            .api
            .patch(&name, &PatchParams::default(), &status::json_patch(patch))
            .await
        {
            Ok(_) => return,
            Err(kube::Error::Api(s)) if s.code == 404 => return,
            Err(_) => current = shared.api.get_opt(&name).await.ok().flatten(),
        }
    }
    tracing::warn!(steprun = %name, "cannot remove the finalizer; the sweep will try again");
}
