//! Pruning: what an earlier run applied and the package no longer holds is
//! deleted, as `kubectl apply --prune` does with an ApplySet.
//!
//! The inventory is kept in the namespace: a ConfigMap (the ApplySet's
//! parent) named `stepbox-inventory.STEP.ID` lists the objects the last run
//! applied, and every one of them carries the label
//! `stepbox.dev/inventory: STEP.ID`. A run with `prune=true`:
//!
//! 1. reads the inventory (none: nothing to prune);
//! 2. labels its objects and applies them with the inventory listing the
//!    old and the new objects, in one apply;
//! 3. deletes each old object that is not in the package any more, only
//!    when it still carries this inventory's label (an object someone else
//!    made, or took over, is never touched: it is logged and kept);
//! 4. writes the inventory again, listing the objects of this run only.

use std::collections::BTreeSet;

use stepbox_sdk::prelude::*;
use stepbox_sdk::serde_json::{Value, json};

/// The label every object of an inventory carries.
pub(crate) const LABEL: &str = "stepbox.dev/inventory";

/// One object of an inventory: apiVersion, kind, name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Member {
    /// apiVersion.
    pub(crate) api_version: String,
    /// Kind.
    pub(crate) kind: String,
    /// Name.
    pub(crate) name: String,
}

impl Member {
    fn of(doc: &Value) -> Option<Self> {
        Some(Self {
            api_version: doc.get("apiVersion")?.as_str()?.to_string(),
            kind: doc.get("kind")?.as_str()?.to_string(),
            name: doc.pointer("/metadata/name")?.as_str()?.to_string(),
        })
    }

    fn group(&self) -> &str {
        self.api_version.split_once('/').map_or("", |(g, _)| g)
    }

    /// Same object: group, kind and name (the version may change).
    fn same(&self, other: &Member) -> bool {
        self.group() == other.group() && self.kind == other.kind && self.name == other.name
    }

    fn kubectl_name(&self) -> String {
        let kind = self.kind.to_lowercase();
        match self.group() {
            "" => format!("{kind}/{}", self.name),
            g => format!("{kind}.{g}/{}", self.name),
        }
    }
}

/// The inventory of one step and id.
#[derive(Debug, Clone)]
pub(crate) struct Inventory {
    /// The label value (`STEP.ID`).
    pub(crate) id: String,
    /// The parent ConfigMap's name.
    pub(crate) parent: String,
    /// What the last run applied.
    pub(crate) previous: Vec<Member>,
}

/// `STEP.ID` checked as a label value.
pub(crate) fn inventory_id(step: &str, id: &str) -> Result<String> {
    let value = format!("{step}.{id}");
    let ok = value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(value)
    } else {
        Err(Error::invalid(format!(
            "input inventory: {id:?} with step name {step:?} makes {value:?}, not a label value: \
             use letters, digits, '-', '_' and '.', at most {} characters",
            63usize.saturating_sub(step.len() + 1)
        )))
    }
}

impl Inventory {
    /// Reads the inventory of `id` (empty when there is none yet).
    pub(crate) fn load(id: String) -> Result<Self> {
        let parent = format!("stepbox-inventory.{id}").to_lowercase();
        let cm = KindRef::new("v1", "ConfigMap");
        let previous = match kube::raw::get(&cm, &parent) {
            Ok(json) => {
                let v: Value = serde_json::from_str(&json)?;
                let listed = v
                    .pointer("/data/objects")
                    .and_then(Value::as_str)
                    .unwrap_or("[]");
                let list: Vec<Value> = serde_json::from_str(listed).map_err(|e| {
                    Error::invalid(format!(
                        "ConfigMap {parent} data.objects is not the JSON list stepbox writes: {e}"
                    ))
                })?;
                list.iter().filter_map(Member::of_listed).collect()
            }
            Err(e) if e.is_not_found() => Vec::new(),
            Err(e) => return Err(e.context(format!("reading the inventory {parent}"))),
        };
        Ok(Self {
            id,
            parent,
            previous,
        })
    }

    /// Labels `docs` as members of this inventory.
    pub(crate) fn label(&self, docs: &mut [Value]) {
        for doc in docs {
            let Some(meta) = doc.get_mut("metadata").and_then(Value::as_object_mut) else {
                continue;
            };
            let labels = meta.entry("labels").or_insert_with(|| json!({}));
            if let Some(labels) = labels.as_object_mut() {
                labels.insert(LABEL.into(), Value::String(self.id.clone()));
            }
        }
    }

    /// The parent ConfigMap listing `members`.
    pub(crate) fn parent(&self, members: &[Member]) -> Value {
        let objects: Vec<Value> = members
            .iter()
            .map(|m| json!({"apiVersion": m.api_version, "kind": m.kind, "name": m.name}))
            .collect();
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.parent,
                "labels": {"applyset.kubernetes.io/id": self.id.replace('.', "-")},
                "annotations": {"stepbox.dev/inventory-of": self.id},
            },
            "data": {"objects": Value::Array(objects).to_string()},
        })
    }

    /// The members of `docs`.
    pub(crate) fn members(docs: &[Value]) -> Vec<Member> {
        docs.iter().filter_map(Member::of).collect()
    }

    /// The old members the package no longer holds.
    pub(crate) fn gone(&self, current: &[Member]) -> Vec<Member> {
        self.previous
            .iter()
            .filter(|old| !current.iter().any(|m| m.same(old)))
            .cloned()
            .collect()
    }

    /// Deletes `gone`, each only if it still carries this inventory's
    /// label; returns the objects deleted.
    pub(crate) fn prune(&self, gone: &[Member]) -> Result<Vec<Member>> {
        let mut deleted = Vec::new();
        for m in gone {
            let kind = KindRef::new(&m.api_version, &m.kind);
            let name = m.kubectl_name();
            let current: Value = match kube::raw::get(&kind, &m.name) {
                Ok(json) => serde_json::from_str(&json)?,
                Err(e) if e.is_not_found() => {
                    info!("{name} is already gone");
                    continue;
                }
                Err(e) => return Err(e.context(format!("pruning {name}"))),
            };
            let label = current
                .pointer("/metadata/labels")
                .and_then(|l| l.get(LABEL))
                .and_then(Value::as_str);
            if label != Some(self.id.as_str()) {
                warn!(
                    "{name} is not pruned: it no longer carries {LABEL}={} (someone else manages it now)",
                    self.id
                );
                continue;
            }
            if kube::raw::delete(&kind, &m.name)
                .map_err(|e| e.context(format!("pruning {name}")))?
            {
                info!("{name} deleted (pruned: no longer in the package)");
                deleted.push(m.clone());
            }
        }
        Ok(deleted)
    }
}

impl Member {
    fn of_listed(v: &Value) -> Option<Self> {
        Some(Self {
            api_version: v.get("apiVersion")?.as_str()?.to_string(),
            kind: v.get("kind")?.as_str()?.to_string(),
            name: v.get("name")?.as_str()?.to_string(),
        })
    }
}

/// `a` with the members of `b` it does not hold, sorted.
pub(crate) fn union(a: &[Member], b: &[Member]) -> Vec<Member> {
    let mut all: BTreeSet<Member> = a.iter().cloned().collect();
    for m in b {
        if !a.iter().any(|x| x.same(m)) {
            all.insert(m.clone());
        }
    }
    all.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(api: &str, kind: &str, name: &str) -> Member {
        Member {
            api_version: api.into(),
            kind: kind.into(),
            name: name.into(),
        }
    }

    #[test]
    fn gone_members_are_those_the_package_dropped() {
        let inv = Inventory {
            id: "deploy.default".into(),
            parent: "stepbox-inventory.deploy.default".into(),
            previous: vec![
                m("v1", "ConfigMap", "a"),
                m("apps/v1", "Deployment", "web"),
                m("v1", "Service", "old"),
            ],
        };
        let current = vec![
            m("v1", "ConfigMap", "a"),
            m("apps/v1beta1", "Deployment", "web"),
        ];
        assert_eq!(inv.gone(&current), vec![m("v1", "Service", "old")]);
        assert_eq!(union(&current, &inv.previous).len(), 3);
    }

    #[test]
    fn ids_are_label_values() {
        assert_eq!(inventory_id("deploy", "default").unwrap(), "deploy.default");
        assert!(inventory_id("deploy", "a b").unwrap_err().is_invalid());
        assert!(inventory_id("deploy", &"x".repeat(60)).is_err());
    }

    #[test]
    fn members_are_labelled() {
        let inv = Inventory {
            id: "s.i".into(),
            parent: "p".into(),
            previous: vec![],
        };
        let mut docs =
            vec![json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}})];
        inv.label(&mut docs);
        assert_eq!(docs[0]["metadata"]["labels"][LABEL], "s.i");
        let parent = inv.parent(&Inventory::members(&docs));
        assert_eq!(
            parent["data"]["objects"],
            r#"[{"apiVersion":"v1","kind":"ConfigMap","name":"a"}]"#
        );
    }
}
