//! Lifecycle Events on StepRuns (core/v1, what `kubectl describe` and
//! `kubectl events` show): claimed, pulled, finished, cancelled, lost,
//! retried. Written in the background: an Event that cannot be written is
//! logged, never a reason to fail a run.

use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::crd::StepRun;

/// Normal or Warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Progress.
    Normal,
    /// Something went wrong.
    Warning,
}

/// Writes Events for one worker.
#[derive(Clone)]
pub struct Recorder {
    api: Api<Event>,
    worker: String,
}

impl Recorder {
    /// Events in `namespace`, reported by worker `worker`.
    pub fn new(client: Client, namespace: &str, worker: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            worker: worker.to_string(),
        }
    }

    /// Records `reason` (`Claimed`, `Succeeded`, ...) on `run`, in the
    /// background.
    pub fn record(&self, run: &StepRun, kind: Kind, reason: &str, message: String) {
        let now = crate::now();
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": format!("{}.{}", run.name_any(), &uuid::Uuid::new_v4().simple().to_string()[..16]),
                "namespace": run.namespace(),
            },
            "involvedObject": {
                "apiVersion": "stepbox.dev/v1alpha1",
                "kind": "StepRun",
                "name": run.name_any(),
                "namespace": run.namespace(),
                "uid": run.uid(),
                "resourceVersion": run.resource_version(),
            },
            "reason": reason,
            "message": crate::status::truncate(&message, 1024),
            "type": match kind { Kind::Normal => "Normal", Kind::Warning => "Warning" },
            "source": {"component": "stepbox-worker", "host": self.worker},
            "reportingComponent": "stepbox.dev/worker",
            "reportingInstance": self.worker,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        });
        let event: Event = match serde_json::from_value(event) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "cannot build an Event");
                return;
            }
        };
        let api = self.api.clone();
        let name = run.name_any();
        let reason = reason.to_string();
        tokio::spawn(async move {
            if let Err(e) = api.create(&PostParams::default(), &event).await {
                tracing::warn!(steprun = %name, %reason, error = %e, "cannot write an Event");
            }
        });
    }
}
