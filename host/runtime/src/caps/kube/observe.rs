//! What happened to objects, for a step explaining a rollout: a pod's
//! logs (`pods/log`, verb get) and the Events about an object (`events`,
//! verb list), each admitted like every other kube call.

use serde_json::Value;
use stepbox_cluster::{LogOptions, PodLog};
use stepbox_k8s::object;

use super::{KubeCtx, target};
use crate::caps::{CapError, Result};
use crate::policy::Verb;
use crate::report::Decision;

impl KubeCtx {
    /// The log of a container of `pod` (see [`LogOptions`]).
    pub async fn logs(&self, pod: &str, options: &LogOptions) -> Result<String> {
        const CALL: &str = "kube.logs";
        let pods = self.resource(CALL, "v1", "Pod", pod).await?;
        let log = pods.subresource("log");
        self.check(CALL, Verb::Get, &log, None, Some(pod)).await?;
        let what = match options.container.as_deref().filter(|c| !c.is_empty()) {
            Some(c) => format!("{} log -c {c}", target(&pods, pod)),
            None => format!("{} log", target(&pods, pod)),
        };
        let result: Result<PodLog> = self
            .scope
            .backend
            .logs(&self.scope.namespace, pod, options)
            .await
            .map_err(CapError::from);
        match result {
            Ok(PodLog { text, note }) => {
                let reason = note.unwrap_or_default();
                self.scope
                    .recorder
                    .audit(CALL, &what, Decision::Allowed, &reason);
                Ok(text)
            }
            Err(e) => self.audited(CALL, &what, Err(e)),
        }
    }

    /// The Events whose `involvedObject` is the object, oldest first.
    pub async fn events(&self, api_version: &str, kind: &str, name: &str) -> Result<Vec<Value>> {
        const CALL: &str = "kube.events";
        let res = self.resource(CALL, api_version, kind, name).await?;
        let events = self.resource(CALL, "v1", "Event", "*").await?;
        self.check(CALL, Verb::List, &events, None, None).await?;
        let result = async {
            let all = self
                .scope
                .backend
                .list(&events, &self.scope.namespace, None)
                .await?;
            let mut about: Vec<Value> = all
                .into_iter()
                .filter(|e| {
                    let involved = |f: &str| object::str_field(e, &["involvedObject", f]);
                    let group =
                        involved("apiVersion").map(|v| v.split_once('/').map_or("", |(g, _)| g));
                    involved("kind") == Some(res.kind.as_str())
                        && involved("name") == Some(name)
                        && group.is_none_or(|g| g == res.group)
                })
                .collect();
            about.sort_by_cached_key(|e| when(e).to_string());
            Ok(about)
        }
        .await;
        self.audited(CALL, &format!("{} events", target(&res, name)), result)
    }
}

/// When an Event last happened, as it says (RFC 3339 sorts as text).
fn when(event: &Value) -> &str {
    ["lastTimestamp", "eventTime", "firstTimestamp"]
        .iter()
        .find_map(|f| {
            event
                .get(*f)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
        .or_else(|| object::str_field(event, &["metadata", "creationTimestamp"]))
        .unwrap_or("")
}
