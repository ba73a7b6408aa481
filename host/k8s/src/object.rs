//! Reading the identity of Kubernetes objects held as `serde_json::Value`.
//!
//! Objects travel through stepbox as plain JSON (that is what the guest sends
//! and what both backends store), so these helpers never panic on odd shapes:
//! a missing or non-string field is simply `None`.
//!
//! ```
//! use stepbox_k8s::ObjectRef;
//!
//! let cm = serde_json::json!({
//!     "apiVersion": "v1", "kind": "ConfigMap",
//!     "metadata": {"name": "settings", "namespace": "dev"},
//! });
//! let r = ObjectRef::from_value(&cm)?;
//! assert_eq!(r.to_string(), "ConfigMap \"settings\"");
//! assert_eq!(r.namespace.as_deref(), Some("dev"));
//! # Ok::<(), stepbox_k8s::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::{Error, Result};

/// The identity of one object: apiVersion, kind, name and (if set)
/// namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// `apiVersion` (`"apps/v1"`).
    pub api_version: String,
    /// `kind` (`"Deployment"`).
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`, when the object names one.
    pub namespace: Option<String>,
}

impl ObjectRef {
    /// Reads the identity of `object`.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the object is not a JSON object, or
    /// apiVersion, kind or metadata.name is missing, empty or not a string,
    /// or metadata.namespace is present but not a string.
    pub fn from_value(object: &Value) -> Result<Self> {
        if !object.is_object() {
            return Err(Error::Invalid(format!(
                "expected a Kubernetes object (a JSON object), found {}",
                type_name(object)
            )));
        }
        let field = |name: &str, value: Option<&Value>| -> Result<String> {
            match value {
                Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                Some(Value::String(_)) | None | Some(Value::Null) => {
                    Err(Error::Invalid(format!("object is missing {name}")))
                }
                Some(other) => Err(Error::Invalid(format!(
                    "{name} must be a string, found {}",
                    type_name(other)
                ))),
            }
        };
        let api_version = field("apiVersion", object.get("apiVersion"))?;
        let kind = field("kind", object.get("kind"))?;
        let metadata = object.get("metadata");
        if let Some(m) = metadata
            && !m.is_object()
        {
            return Err(Error::Invalid(format!(
                "{kind}: metadata must be an object, found {}",
                type_name(m)
            )));
        }
        let name = field("metadata.name", metadata.and_then(|m| m.get("name")))
            .map_err(|e| Error::Invalid(format!("{kind}: {}", e.message())))?;
        let namespace = match metadata.and_then(|m| m.get("namespace")) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(Error::Invalid(format!(
                    "{kind} {name:?}: metadata.namespace must be a string, found {}",
                    type_name(other)
                )));
            }
        };
        Ok(Self {
            api_version,
            kind,
            name,
            namespace,
        })
    }

    /// The API group (`""` for core).
    pub fn group(&self) -> &str {
        super::resources::split_api_version(&self.api_version).0
    }

    /// The version within the group.
    pub fn version(&self) -> &str {
        super::resources::split_api_version(&self.api_version).1
    }
}

impl fmt::Display for ObjectRef {
    /// `Kind "name"`, as Kubernetes error messages name objects.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.kind, self.name)
    }
}

/// The JSON type of a value, for error messages ("a string", "an array").
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `apiVersion`, if it is a string.
pub fn api_version(v: &Value) -> Option<&str> {
    v.get("apiVersion").and_then(Value::as_str)
}

/// `kind`, if it is a string.
pub fn kind(v: &Value) -> Option<&str> {
    v.get("kind").and_then(Value::as_str)
}

/// `metadata.name`, if it is a string.
pub fn name(v: &Value) -> Option<&str> {
    v.pointer("/metadata/name").and_then(Value::as_str)
}

/// `metadata.namespace`, if it is a non-empty string.
pub fn namespace(v: &Value) -> Option<&str> {
    v.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// `metadata.resourceVersion`, if it is a string.
pub fn resource_version(v: &Value) -> Option<&str> {
    v.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
}

/// `metadata.generation`, if it is an integer.
pub fn generation(v: &Value) -> Option<i64> {
    v.pointer("/metadata/generation").and_then(Value::as_i64)
}

/// `metadata.labels` as a map; non-string values are skipped.
pub fn labels(v: &Value) -> BTreeMap<String, String> {
    string_map(v.pointer("/metadata/labels"))
}

/// `metadata.annotations` as a map; non-string values are skipped.
pub fn annotations(v: &Value) -> BTreeMap<String, String> {
    string_map(v.pointer("/metadata/annotations"))
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The value at a dotted field path (`["spec", "replicas"]`), through objects
/// only.
pub fn get_field<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| cur.get(*key))
}

/// The string at a dotted field path, if there is one.
pub fn str_field<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get_field(v, path).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_identity() {
        let v = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}});
        let r = ObjectRef::from_value(&v).unwrap();
        assert_eq!(r.group(), "apps");
        assert_eq!(r.version(), "v1");
        assert_eq!(r.namespace, None);
        assert_eq!(name(&v), Some("web"));
        assert_eq!(kind(&v), Some("Deployment"));
        assert_eq!(api_version(&v), Some("apps/v1"));
        assert_eq!(namespace(&v), None);
    }

    #[test]
    fn reports_missing_fields() {
        let cases = [
            (json!([]), "found an array"),
            (
                json!({"kind": "X", "metadata": {"name": "a"}}),
                "missing apiVersion",
            ),
            (
                json!({"apiVersion": "v1", "metadata": {"name": "a"}}),
                "missing kind",
            ),
            (
                json!({"apiVersion": "v1", "kind": "ConfigMap"}),
                "ConfigMap: object is missing metadata.name",
            ),
            (
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": ""}}),
                "missing metadata.name",
            ),
            (
                json!({"apiVersion": 1, "kind": "X"}),
                "apiVersion must be a string, found a number",
            ),
            (
                json!({"apiVersion": "v1", "kind": "X", "metadata": "m"}),
                "metadata must be an object",
            ),
            (
                json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "a", "namespace": 3}}),
                "metadata.namespace must be a string",
            ),
        ];
        for (v, want) in cases {
            let err = ObjectRef::from_value(&v).unwrap_err();
            assert!(matches!(err, Error::Invalid(_)));
            assert!(err.to_string().contains(want), "{err} !~ {want}");
        }
    }

    #[test]
    fn maps_and_paths() {
        let v = json!({"metadata": {"labels": {"a": "1", "n": 2}, "annotations": {"x": "y"}, "generation": 3,
                       "resourceVersion": "7"}, "spec": {"replicas": 2}});
        assert_eq!(labels(&v).len(), 1);
        assert_eq!(annotations(&v).get("x").map(String::as_str), Some("y"));
        assert_eq!(get_field(&v, &["spec", "replicas"]), Some(&json!(2)));
        assert_eq!(get_field(&v, &["spec", "nope"]), None);
        assert_eq!(generation(&v), Some(3));
        assert_eq!(resource_version(&v), Some("7"));
        assert_eq!(labels(&json!(null)).len(), 0);
    }
}
