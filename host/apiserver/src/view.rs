//! Resources served through another API than the one they are stored in.
//!
//! A Kubernetes API server stores `events.k8s.io/v1` Events and `core/v1`
//! Events as one object: an Event a controller records through the newer
//! API (kube-runtime's `Recorder` does) is what `kubectl describe` lists
//! through the older one. So here: Events are stored as `core/v1`, and a
//! request to `events.k8s.io` reads and writes them converted
//! ([`stepbox_k8s::events`]). Every other resource is served as stored.

use serde_json::{Value, json};
use stepbox_k8s::ResourceInfo;
use stepbox_k8s::events::{self, EVENTS_GROUP};

/// How a served resource relates to its storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    /// Served as stored.
    Stored,
    /// `events.k8s.io/v1` Events, stored as `core/v1` Events.
    EventsV1,
}

impl View {
    /// The resource objects of `served` are stored as, and the view
    /// between them.
    pub(crate) fn of(served: &ResourceInfo) -> (ResourceInfo, View) {
        if served.is(EVENTS_GROUP, "Event") {
            let core = ResourceInfo::new("", "v1", "Event", "events", true);
            let core = match served.plural.split_once('/') {
                Some((_, sub)) => core.subresource(sub),
                None => core,
            };
            (core, View::EventsV1)
        } else {
            (served.clone(), View::Stored)
        }
    }

    /// A stored object as the client sees it, with `served`'s apiVersion
    /// and kind.
    pub(crate) fn present(self, served: &ResourceInfo, obj: &Value) -> Value {
        let mut obj = match self {
            View::Stored => obj.clone(),
            View::EventsV1 => events::to_events_v1(obj),
        };
        if let Some(m) = obj.as_object_mut() {
            m.insert("apiVersion".into(), json!(served.api_version));
            m.insert("kind".into(), json!(served.kind));
        }
        obj
    }

    /// An object (or a merge patch or apply configuration) the client
    /// sent, as it is stored.
    pub(crate) fn to_storage(self, obj: &Value) -> Value {
        match self {
            View::Stored => obj.clone(),
            View::EventsV1 => events::to_core(obj),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepbox_k8s::resources::lookup;

    #[test]
    fn events_are_stored_as_core_events() {
        let served = lookup("events.k8s.io/v1", "Event");
        let (storage, view) = View::of(&served);
        assert_eq!((storage.api_version.as_str(), view), ("v1", View::EventsV1));
        let stored = json!({"apiVersion": "v1", "kind": "Event", "message": "m"});
        let shown = view.present(&served, &stored);
        assert_eq!(shown["apiVersion"], "events.k8s.io/v1");
        assert_eq!(shown["note"], "m");
        assert_eq!(view.to_storage(&shown), stored);
        let cms = lookup("v1", "ConfigMap");
        assert_eq!(View::of(&cms), (cms.clone(), View::Stored));
    }
}
