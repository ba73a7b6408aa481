//! The plan of a helm call: the objects it may touch, read before and after
//! helm runs, become plan entries and the call's touched objects.

use std::collections::HashSet;

use serde_json::Value;
use stepbox_k8s::plan::{self, Action, PlanEntry};

use crate::report::{Level, LogSource};

use super::check::Candidate;
use super::release::ReleaseRecord;
use super::{HelmCtx, RenderedObject, TouchedObject};

impl HelmCtx {
    /// Reads each candidate from the backend (`None`: absent or unreadable).
    pub(super) async fn observe(&self, candidates: &[Candidate]) -> Vec<Option<Value>> {
        let mut out = Vec::with_capacity(candidates.len());
        for c in candidates {
            match self
                .scope
                .backend
                .get(&c.res, &self.scope.namespace, &c.key.name)
                .await
            {
                Ok(v) => out.push(v),
                Err(e) => {
                    tracing::warn!(object = %c.key, "helm: cannot read for the plan: {e}");
                    out.push(None);
                }
            }
        }
        out
    }

    /// Compares the candidates with `before`, records plan entries for what
    /// changed and returns the touched objects.
    pub(super) async fn record_changes(
        &self,
        candidates: &[Candidate],
        before: &[Option<Value>],
    ) -> Vec<TouchedObject> {
        let after = self.observe(candidates).await;
        let mut touched = Vec::new();
        for ((c, b), a) in candidates.iter().zip(before).zip(&after) {
            let (action, entry) = match (b, a) {
                (None, None) => continue,
                // A hook left as it was is not something this call did.
                (Some(b), Some(a)) if c.hook && plan::classify(Some(b), a) == Action::Unchanged => {
                    continue;
                }
                (None, Some(a)) => (Action::Created, PlanEntry::for_change(None, a)),
                (Some(b), None) => (Action::Deleted, PlanEntry::deleted(b)),
                (Some(b), Some(a)) => {
                    let entry = PlanEntry::for_change(Some(b), a);
                    (entry.action, entry)
                }
            };
            self.scope.recorder.plan(entry);
            touched.push(TouchedObject {
                key: c.key.clone(),
                action,
                hook: c.hook,
            });
        }
        touched
    }

    /// Warns when the installed release holds objects the check did not
    /// see (a chart using `lookup` or cluster capabilities).
    pub(super) fn warn_unchecked(&self, installed: &ReleaseRecord, rendered: &[RenderedObject]) {
        let seen: HashSet<_> = rendered.iter().map(|o| o.key().identity()).collect();
        for o in installed.manifest.iter().chain(&installed.hooks) {
            let key = o.key();
            if !seen.contains(&key.identity()) {
                let msg = format!(
                    "release {} holds {key}, which `helm template` did not render before the install (the chart depends on the cluster)",
                    installed.info.name
                );
                let _ =
                    self.scope
                        .recorder
                        .log(Level::Warn, LogSource::Helm, &format!("helm: {msg}"));
            }
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

pub(super) fn dedup(candidates: Vec<Candidate>) -> Vec<Candidate> {
    let mut seen = HashSet::new();
    candidates
        .into_iter()
        .filter(|c| seen.insert(c.key.identity()))
        .collect()
}
