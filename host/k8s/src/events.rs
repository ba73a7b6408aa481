//! Events through their two APIs: `core/v1` `Event` (what `kubectl
//! describe` and `kubectl get events` read) and `events.k8s.io/v1` `Event`
//! (what newer clients write, kube-runtime's `Recorder` among them). A
//! Kubernetes API server stores one object and serves it through both;
//! these functions are that conversion, field by field as Kubernetes
//! converts them.
//!
//! ```
//! use serde_json::json;
//! use stepbox_k8s::events;
//!
//! let v1 = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "x.1"},
//!                 "regarding": {"kind": "StepRun", "name": "x"}, "note": "started",
//!                 "reportingController": "stepbox-worker", "series": {"count": 2}});
//! let core = events::to_core(&v1);
//! assert_eq!(core["apiVersion"], "v1");
//! assert_eq!(core["involvedObject"]["name"], "x");
//! assert_eq!(core["message"], "started");
//! assert_eq!(core["reportingComponent"], "stepbox-worker");
//! assert_eq!(events::to_events_v1(&core), v1);
//! ```

use serde_json::{Map, Value};

/// The API group of the newer Event API.
pub const EVENTS_GROUP: &str = "events.k8s.io";

/// Fields named differently in the two APIs: (`events.k8s.io/v1`,
/// `core/v1`). Every other field has one name in both.
pub const RENAMED_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn renamed(obj: &Value, api_version: &str, rename: impl Fn(&str) -> Option<&'static str>) -> Value {
    let Some(m) = obj.as_object() else {
        return obj.clone();
    };
    let mut out = Map::with_capacity(m.len());
    for (k, v) in m {
        let key = match k.as_str() {
            "apiVersion" => {
                out.insert(k.clone(), Value::String(api_version.to_string()));
                continue;
            }
            other => rename(other).map_or_else(|| k.clone(), str::to_string),
        };
        out.insert(key, v.clone());
    }
    Value::Object(out)
}

/// A `core/v1` Event as `events.k8s.io/v1` shows it.
pub fn to_events_v1(core: &Value) -> Value {
    renamed(core, "events.k8s.io/v1", |k| {
        RENAMED_FIELDS
            .iter()
            .find(|(_, c)| *c == k)
            .map(|(e, _)| *e)
    })
}

/// An `events.k8s.io/v1` Event (or part of one, as a patch) as `core/v1`
/// stores it.
pub fn to_core(events_v1: &Value) -> Value {
    renamed(events_v1, "v1", |k| {
        RENAMED_FIELDS
            .iter()
            .find(|(e, _)| *e == k)
            .map(|(_, c)| *c)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_renamed_field_round_trips() {
        let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
            "involvedObject": {"name": "x"}, "reason": "Started", "message": "m", "source": {"component": "c"},
            "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:01Z", "count": 3,
            "type": "Normal", "eventTime": null, "reportingComponent": "r", "reportingInstance": "i"});
        let v1 = to_events_v1(&core);
        for (e, c) in RENAMED_FIELDS {
            assert_eq!(v1[e], core[c], "{e}");
            assert!(v1.get(c).is_none(), "{c}");
        }
        assert_eq!(v1["reason"], "Started");
        assert_eq!(v1["reportingInstance"], "i");
        assert_eq!(to_core(&v1), core);
        // A patch converts the fields it has.
        assert_eq!(to_core(&json!({"note": "n"})), json!({"message": "n"}));
        assert_eq!(to_core(&json!([1])), json!([1]));
    }
}
