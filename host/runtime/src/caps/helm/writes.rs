//! The plan of a helm call: the writes helm made through the gateway.
//!
//! The gateway admits every request helm sends and, for each write that
//! succeeded, hands the object before and after to the run's admission,
//! which makes a plan entry and gives it to this sink. So the plan holds
//! every object helm wrote, whatever the chart rendered at install time
//! (`lookup`, capabilities): a chart cannot hide an object from it. helm's
//! own release records (Secrets `sh.helm.release.v1.NAME.vN`) are
//! bookkeeping, not the step's objects: they are audited, not planned.

use std::sync::Mutex;

use stepbox_k8s::plan::{Action, PlanEntry};

use super::{ObjectKey, RenderedObject, TouchedObject};
use crate::report::{AuditSink, Decision, RunRecorder};

/// The writes of the current helm call, and the run's recorder.
pub(super) struct HelmWrites {
    recorder: RunRecorder,
    entries: Mutex<Vec<PlanEntry>>,
}

impl HelmWrites {
    pub(super) fn new(recorder: RunRecorder) -> Self {
        Self {
            recorder,
            entries: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<PlanEntry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets what earlier calls wrote (a call starts with this).
    pub(super) fn clear(&self) {
        self.lock().clear();
    }

    /// Puts the call's writes in the run's plan and returns what the call
    /// did to each object, in the order first written: one entry per
    /// object, from whether it existed before its first write and after its
    /// last. An object created and deleted within the call (a hook under
    /// its delete policy) is in the plan, not here; a hook helm wrote
    /// without changing it is in neither (it is not something this call
    /// did). `hooks` are the hooks of the release, to mark them.
    pub(super) fn touched(&self, hooks: &[RenderedObject]) -> Vec<TouchedObject> {
        let is_hook = |key: &ObjectKey| hooks.iter().any(|h| h.key().identity() == key.identity());
        let entries = std::mem::take(&mut *self.lock());
        for e in &entries {
            if !(e.action == Action::Unchanged && is_hook(&key_of(e))) {
                self.recorder.plan(e.clone());
            }
        }
        let mut order: Vec<ObjectKey> = Vec::new();
        for e in &entries {
            let key = key_of(e);
            if !order.contains(&key) {
                order.push(key);
            }
        }
        order
            .into_iter()
            .filter_map(|key| {
                let mine: Vec<&PlanEntry> = entries.iter().filter(|e| key_of(e) == key).collect();
                let existed = mine.first()?.action != Action::Created;
                let exists = mine.last()?.action != Action::Deleted;
                let action = match (existed, exists) {
                    (false, false) => return None,
                    (false, true) => Action::Created,
                    (true, false) => Action::Deleted,
                    (true, true) if mine.iter().any(|e| e.action == Action::Configured) => {
                        Action::Configured
                    }
                    (true, true) => Action::Unchanged,
                };
                let hook = is_hook(&key);
                if hook && action == Action::Unchanged {
                    return None;
                }
                Some(TouchedObject { key, action, hook })
            })
            .collect()
    }
}

fn key_of(e: &PlanEntry) -> ObjectKey {
    ObjectKey {
        api_version: e.api_version.clone(),
        kind: e.kind.clone(),
        name: e.name.clone(),
    }
}

/// helm's release records: Secrets `sh.helm.release.v1.NAME.vN`.
fn is_release_record(e: &PlanEntry) -> bool {
    e.api_version == "v1" && e.kind == "Secret" && e.name.starts_with("sh.helm.release.v1.")
}

impl AuditSink for HelmWrites {
    fn audit(&self, call: &str, target: &str, decision: Decision, reason: &str) {
        self.recorder.audit(call, target, decision, reason);
    }

    fn plan(&self, entry: PlanEntry) {
        if !is_release_record(&entry) {
            self.lock().push(entry);
        }
    }
}

/// Whether a hook runs on an event of `kind` (`delete`: pre-/post-delete).
pub(super) fn runs_on(hook: &RenderedObject, kind: &str) -> bool {
    hook.hook_events
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|e| e.strip_prefix("pre-").or_else(|| e.strip_prefix("post-")) == Some(kind))
}
