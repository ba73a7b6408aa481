//! The event log behind watches: a bounded ring of the most recent writes.
//!
//! Every stored write of a [`MemoryCluster`] appends one [`WatchEvent`]
//! (`ADDED`, `MODIFIED` or `DELETED`, with the object as written and the
//! write's resourceVersion). A watch from resourceVersion `N` replays the
//! events after `N`, then waits on [`MemoryCluster::subscribe`] for more.
//! The ring keeps the newest [`DEFAULT_EVENT_CAPACITY`] events (see
//! [`MemoryCluster::set_event_capacity`]); a watch from before the oldest
//! kept event gets [`ExpiredRevision`], which an API server answers with
//! `410 Gone` ("too old resource version"), telling the client to list
//! again.

use serde_json::Value;

use super::MemoryCluster;
use stepbox_k8s::resources::ResourceInfo;

/// How many events a new [`MemoryCluster`] keeps for watches.
pub const DEFAULT_EVENT_CAPACITY: usize = 4096;

/// The type of a watch event, as the Kubernetes watch protocol spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// The object was created.
    Added,
    /// The object changed.
    Modified,
    /// The object was deleted (the event carries its last state).
    Deleted,
}

impl EventType {
    /// `"ADDED"`, `"MODIFIED"` or `"DELETED"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One stored write, as a watch reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchEvent {
    /// The resourceVersion of the write.
    pub revision: u64,
    /// What happened.
    pub event_type: EventType,
    /// The API group of the object (`""` for core).
    pub group: String,
    /// The kind of the object.
    pub kind: String,
    /// The namespace of the object (`""` for cluster-scoped kinds).
    pub namespace: String,
    /// The object after the write (before it, for a deletion), in the
    /// apiVersion it was stored in.
    pub object: Value,
}

impl WatchEvent {
    pub(super) fn new(
        revision: u64,
        event_type: EventType,
        res: &ResourceInfo,
        namespace: &str,
        object: Value,
    ) -> Self {
        Self::from_parts(
            revision, event_type, &res.group, &res.kind, namespace, object,
        )
    }

    pub(super) fn from_parts(
        revision: u64,
        event_type: EventType,
        group: &str,
        kind: &str,
        namespace: &str,
        object: Value,
    ) -> Self {
        Self {
            revision,
            event_type,
            group: group.to_string(),
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            object,
        }
    }

    /// True when the event is about an object of `res` (any version) in
    /// `namespace` (`""`: any namespace; ignored for cluster-scoped kinds).
    pub fn is_about(&self, res: &ResourceInfo, namespace: &str) -> bool {
        self.group == res.group
            && self.kind == res.kind
            && (!res.namespaced || namespace.is_empty() || self.namespace == namespace)
    }
}

/// A watch asked for events from a resourceVersion older than the oldest
/// event still kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too old resource version: {requested} ({oldest})")]
pub struct ExpiredRevision {
    /// The resourceVersion asked for.
    pub requested: u64,
    /// The oldest resourceVersion a watch can still start from.
    pub oldest: u64,
}

impl MemoryCluster {
    /// The events after resourceVersion `revision`, oldest first (empty when
    /// nothing was written since).
    ///
    /// # Errors
    /// [`ExpiredRevision`] when events after `revision` were already dropped
    /// from the log.
    pub fn events_since(&self, revision: u64) -> Result<Vec<WatchEvent>, ExpiredRevision> {
        let st = self.lock();
        if revision < st.compacted {
            return Err(ExpiredRevision {
                requested: revision,
                oldest: st.compacted,
            });
        }
        let start = st.events.partition_point(|e| e.revision <= revision);
        Ok(st.events.range(start..).cloned().collect())
    }

    /// Keeps at most `capacity` events (at least one) for watches, dropping
    /// the oldest now if there are more.
    pub fn set_event_capacity(&self, capacity: usize) {
        let mut st = self.lock();
        st.event_capacity = capacity.max(1);
        while st.events.len() > st.event_capacity {
            if let Some(old) = st.events.pop_front() {
                st.compacted = old.revision;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClusterBackend;
    use serde_json::json;

    fn cm(name: &str, v: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": v}})
    }

    #[test]
    fn records_writes_and_expires_old_ones() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let c = MemoryCluster::new();
            let res = c.resource("v1", "ConfigMap").await.unwrap();
            c.apply(&res, "dev", &cm("a", "1"), "t", false)
                .await
                .unwrap();
            c.apply(&res, "dev", &cm("a", "2"), "t", false)
                .await
                .unwrap();
            c.apply(&res, "dev", &cm("a", "2"), "t", false)
                .await
                .unwrap(); // no-op: no event
            c.delete(&res, "dev", "a").await.unwrap();
            let evs = c.events_since(0).unwrap();
            let kinds: Vec<_> = evs
                .iter()
                .map(|e| (e.revision, e.event_type.as_str()))
                .collect();
            assert_eq!(kinds, [(1, "ADDED"), (2, "MODIFIED"), (3, "DELETED")]);
            assert_eq!(evs[2].object["metadata"]["resourceVersion"], "3");
            assert!(evs[0].is_about(&res, "dev") && evs[0].is_about(&res, ""));
            assert!(!evs[0].is_about(&res, "prod"));
            assert_eq!(c.events_since(2).unwrap().len(), 1);
            assert!(c.events_since(3).unwrap().is_empty());

            c.set_event_capacity(1);
            let err = c.events_since(1).unwrap_err();
            assert_eq!(
                err,
                ExpiredRevision {
                    requested: 1,
                    oldest: 2
                }
            );
            assert_eq!(err.to_string(), "too old resource version: 1 (2)");
            assert_eq!(c.events_since(2).unwrap().len(), 1);
        });
    }

    #[test]
    fn namespace_deletion_reports_its_contents() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let c = MemoryCluster::new();
            let res = c.resource("v1", "ConfigMap").await.unwrap();
            let ns = c.resource("v1", "Namespace").await.unwrap();
            c.apply(
                &ns,
                "",
                &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev"}}),
                "t",
                false,
            )
            .await
            .unwrap();
            c.apply(&res, "dev", &cm("a", "1"), "t", false)
                .await
                .unwrap();
            let rv = c.revision();
            c.delete(&ns, "", "dev").await.unwrap();
            let evs = c.events_since(rv).unwrap();
            let what: Vec<_> = evs
                .iter()
                .map(|e| (e.kind.as_str(), e.event_type.as_str()))
                .collect();
            assert_eq!(what, [("ConfigMap", "DELETED"), ("Namespace", "DELETED")]);
            assert!(c.is_empty());
        });
    }
}
