//! What any worker does for StepRuns it is not running: recover runs whose
//! worker is gone (`WorkerLost`, pending again while retries remain),
//! cancel StepRuns that never started, release a finalizer left behind,
//! delete finished StepRuns past their TTL, and hand back its own runs
//! when a drain times out. Every write is conditional (resourceVersion or
//! a JSON patch test), so workers racing for the same StepRun do not undo
//! each other.

use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::{DeleteParams, PostParams};

use crate::crd::{Phase, StepRun, StepRunStatus};
use crate::events::Kind;
use crate::status;
use crate::worker::Shared;

/// Why a Running StepRun held by another worker (or an earlier process of
/// this pod) has lost it, if it has.
pub fn lost_because(
    status: &StepRunStatus,
    me: &crate::status::Identity,
    lost_after: Duration,
) -> Option<String> {
    let Some(w) = &status.worker else {
        return Some("the run names no worker".into());
    };
    if w.name == me.name && w.incarnation != me.incarnation {
        return Some(format!("worker {} restarted during the run", w.name));
    }
    if w.name == me.name {
        // This process's own run that it no longer tracks: its task ended
        // without writing an outcome (the write failed).
        return Some(format!("worker {} could not write the outcome", w.name));
    }
    match crate::age(&w.heartbeat) {
        Some(age) if age > lost_after => Some(format!(
            "worker {} lost (last heartbeat {}s ago, more than --lost-after {}s)",
            w.name,
            age.as_secs(),
            lost_after.as_secs()
        )),
        Some(_) => None,
        None => Some(format!(
            "worker {} wrote a heartbeat that is not a time ({:?})",
            w.name, w.heartbeat
        )),
    }
}

/// Recovers `obj` (Running, not here) if its worker is lost.
pub fn if_lost(shared: &Arc<Shared>, obj: &StepRun) {
    let Some(st) = &obj.status else {
        return;
    };
    let Some(why) = lost_because(st, &shared.me, shared.config.lost_after) else {
        return;
    };
    let shared = shared.clone();
    let obj = obj.clone();
    tokio::spawn(async move { recover(&shared, obj, &why).await });
}

async fn recover(shared: &Shared, obj: StepRun, why: &str) {
    let name = obj.name_any();
    let previous = obj.status.clone().unwrap_or_default();
    let mut next = obj.clone();
    next.status = Some(status::recovered(&previous, obj.spec.retries, why));
    match shared
        .api
        .replace_status(&name, &PostParams::default(), &next)
        .await
    {
        Ok(done) => {
            shared.metrics.recoveries.inc();
            let phase = done.status.as_ref().and_then(|s| s.phase);
            tracing::warn!(steprun = %name, why, ?phase, "recovered a lost run");
            let message = done
                .status
                .as_ref()
                .and_then(|s| s.message.clone())
                .unwrap_or_default();
            shared
                .events
                .record(&done, Kind::Warning, "WorkerLost", message);
            if phase == Some(Phase::Failed) {
                shared.metrics.finished("WorkerLost", 0.0);
            }
            crate::run_task::remove_finalizer(shared, &done).await;
        }
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {}
        Err(e) => tracing::warn!(steprun = %name, error = %e, "cannot recover a lost run"),
    }
}

/// A pending StepRun with `spec.cancel`: failed, Cancelled, never started.
pub fn cancel_pending(shared: &Arc<Shared>, obj: &StepRun) {
    let shared = shared.clone();
    let obj = obj.clone();
    tokio::spawn(async move {
        let name = obj.name_any();
        let mut next = obj.clone();
        next.status = Some(status::cancelled_before_start(obj.status.as_ref()));
        match shared
            .api
            .replace_status(&name, &PostParams::default(), &next)
            .await
        {
            Ok(done) => {
                shared.events.record(
                    &done,
                    Kind::Normal,
                    "Cancelled",
                    "cancelled (spec.cancel) before it started".into(),
                );
                shared.metrics.finished("Cancelled", 0.0);
            }
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {}
            Err(e) => tracing::warn!(steprun = %name, error = %e, "cannot cancel"),
        }
    });
}

/// Removes our finalizer from a StepRun no worker runs (deleted while
/// pending, finished, or lost): nothing waits on it any more.
pub fn release(shared: &Arc<Shared>, obj: &StepRun) {
    if !obj.finalizers().iter().any(|f| f == crate::FINALIZER) {
        return;
    }
    if let Some(st) = &obj.status
        && st.phase == Some(Phase::Running)
        && lost_because(st, &shared.me, shared.config.lost_after).is_none()
    {
        // Another worker runs it and will release it.
        return;
    }
    let shared = shared.clone();
    let obj = obj.clone();
    tokio::spawn(async move { crate::run_task::remove_finalizer(&shared, &obj).await });
}

/// Deletes a finished StepRun once `ttlSecondsAfterFinished` has passed
/// since it finished.
pub fn expire(shared: &Arc<Shared>, obj: &StepRun) {
    let (Some(ttl), Some(st)) = (obj.spec.ttl_seconds_after_finished, &obj.status) else {
        return;
    };
    if obj.metadata.deletion_timestamp.is_some() || !st.phase.is_some_and(Phase::is_finished) {
        return;
    }
    let Some(done) = st.completion_time.as_deref().and_then(crate::age) else {
        return;
    };
    if done < Duration::from_secs(u64::from(ttl)) {
        return;
    }
    let shared = shared.clone();
    let name = obj.name_any();
    let uid = obj.uid();
    tokio::spawn(async move {
        let params = DeleteParams {
            preconditions: uid.map(|uid| kube::api::Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match shared.api.delete(&name, &params).await {
            Ok(_) => tracing::info!(steprun = %name, ttl, "deleted after its TTL"),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => tracing::warn!(steprun = %name, error = %e, "cannot delete after the TTL"),
        }
    });
}

/// Hands back this worker's run `run_id` of StepRun `name` when the drain
/// timed out: pending again where retries allow, as for a lost worker.
pub async fn hand_back(shared: &Shared, name: &str, run_id: &str) {
    for _ in 0..3 {
        let Ok(Some(obj)) = shared.api.get_opt(name).await else {
            return;
        };
        let Some(st) = &obj.status else {
            return;
        };
        if st.run_id.as_deref() != Some(run_id) {
            return;
        }
        let why = format!(
            "worker {} stopped (its drain of {}s timed out)",
            shared.me.name,
            shared.config.drain_timeout.as_secs()
        );
        let before = shared.metrics.recoveries.get();
        recover(shared, obj, &why).await;
        if shared.metrics.recoveries.get() > before {
            return;
        }
    }
}
