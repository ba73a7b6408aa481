//! The namespaced Role steps need on a cluster, from their declarations
//! (`stepbox rbac`), and the rules `stepbox check --step` reviews.
//!
//! The Role is the union of the steps' declared rules, intersected with a
//! policy when one is given (a rule the policy does not grant would be
//! refused to the step anyway), plus the verbs stepbox itself uses to carry
//! out the declared ones with the run's credentials:
//!
//! | declared | also in the Role | why |
//! |---|---|---|
//! | `create` | `get`, `patch` | an apply reads the object first, and creates with server-side apply (a patch the API server also authorizes as a create) |
//! | `update`, `patch`, `delete` | `get` | the object is read before it is written, for the plan |
//! | `get` | `watch` | a wait (`kube.wait`, allowed by `get`) watches the object on a cluster |
//!
//! Cluster-scoped kinds are left out (a Role cannot grant them; steps may
//! not touch them but for CustomResourceDefinitions, which need a
//! ClusterRole of their own), with a note saying so. A step without a
//! declaration is refused, or, given a policy, stands for the policy's
//! whole grant, with a note.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use stepbox_k8s::ResourceInfo;
use stepbox_k8s::resources;

use super::StepNeeds;
use crate::policy::{AccessRequest, Policy, PolicyRule, Verb};

/// One step, by the name messages use, and its declaration if it has one.
#[derive(Debug, Clone)]
pub struct DeclaredStep {
    /// How the step is named in notes (its path or reference).
    pub name: String,
    /// Its declaration; `None` for a step without one.
    pub needs: Option<StepNeeds>,
}

/// The rules a Role needs for some steps, and what was left out or assumed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NeededRules {
    /// The rules, merged and sorted.
    pub rules: Vec<PolicyRule>,
    /// Warnings: rules left out and why, undeclared steps.
    pub notes: Vec<String>,
}

/// Why no Role can be made.
#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    /// A step declares nothing and no policy stands in for it.
    #[error(
        "{0} declares no needs (no stepbox:needs section), so the Role it needs is unknown: declare them \
         (stepbox_sdk::needs! or a step.yaml beside its sources, then rebuild), or pass --policy to grant it the \
         policy's rules"
    )]
    Undeclared(String),
}

/// The verbs stepbox adds to carry out `verb` with the run's credentials.
fn host_verbs(verb: Verb) -> &'static [Verb] {
    match verb {
        Verb::Create => &[Verb::Get, Verb::Patch],
        Verb::Update | Verb::Patch | Verb::Delete => &[Verb::Get],
        Verb::Get => &[Verb::Watch],
        _ => &[],
    }
}

/// The resource a rule names, for the policy's check: the built-in kind
/// when stepbox knows it, else a namespaced custom resource.
fn resource_of(group: &str, resource: &str) -> ResourceInfo {
    let (base, sub) = match resource.split_once('/') {
        Some((b, s)) => (b, Some(s)),
        None => (resource, None),
    };
    let info = resources::by_plural(group, base)
        .unwrap_or_else(|| ResourceInfo::new(group, "v1", base, base, true));
    match sub {
        Some(s) => info.subresource(s),
        None => info,
    }
}

/// (group, names) → resource → verbs.
type Table = BTreeMap<(String, Vec<String>), BTreeMap<String, BTreeSet<Verb>>>;

/// The rules `steps` need in `namespace`, within `policy` when given.
///
/// # Errors
/// [`RoleError::Undeclared`] for a step without a declaration when no
/// policy is given.
pub fn needed_rules(
    steps: &[DeclaredStep],
    policy: Option<&Policy>,
    namespace: &str,
) -> Result<NeededRules, RoleError> {
    let mut table = Table::new();
    let mut notes = Vec::new();
    for step in steps {
        let rules = match (&step.needs, policy) {
            (Some(needs), _) => needs.rules().to_vec(),
            (None, Some(policy)) => {
                notes.push(format!(
                    "{} declares no needs: it is granted what the policy grants",
                    step.name
                ));
                policy.rules.clone()
            }
            (None, None) => return Err(RoleError::Undeclared(step.name.clone())),
        };
        for rule in &rules {
            add_rule(&mut table, &mut notes, &step.name, rule, policy, namespace);
        }
    }
    for verbs in table.values_mut().flat_map(BTreeMap::values_mut) {
        let declared: Vec<Verb> = verbs.iter().copied().collect();
        for verb in declared {
            verbs.extend(host_verbs(verb));
        }
    }
    notes.dedup();
    Ok(NeededRules {
        rules: merge(table),
        notes,
    })
}

/// Adds the combinations of `rule` a Role can and the policy does grant.
fn add_rule(
    table: &mut Table,
    notes: &mut Vec<String>,
    step: &str,
    rule: &PolicyRule,
    policy: Option<&Policy>,
    namespace: &str,
) {
    for group in &rule.api_groups {
        for resource in &rule.resources {
            let info = resource_of(group, resource);
            if !info.namespaced {
                notes.push(format!(
                    "{step} names {}, which is cluster-scoped: a Role cannot grant it (left out)",
                    info.gr()
                ));
                continue;
            }
            for verb in rule.verbs.iter().filter_map(|v| Verb::parse(v)) {
                let names = granted_names(policy, &info, verb, &rule.resource_names, namespace);
                let Some(names) = names else {
                    notes.push(format!(
                        "{step} needs {:?} on {}, which the policy does not grant (left out: its runs are refused it)",
                        verb.as_str(),
                        info.gr()
                    ));
                    continue;
                };
                table
                    .entry((group.clone(), names))
                    .or_default()
                    .entry(resource.clone())
                    .or_default()
                    .insert(verb);
            }
        }
    }
}

/// The names a need for `verb` on `info` keeps within `policy`: all of
/// `names` (or any name, empty) without a policy; `None` when the policy
/// grants none of it.
fn granted_names(
    policy: Option<&Policy>,
    info: &ResourceInfo,
    verb: Verb,
    names: &[String],
    namespace: &str,
) -> Option<Vec<String>> {
    let Some(policy) = policy else {
        let mut names = names.to_vec();
        names.sort();
        names.dedup();
        return Some(names);
    };
    let grants = |name: Option<&str>| {
        policy
            .check(&AccessRequest {
                verb,
                resource: info,
                run_namespace: namespace,
                object_namespace: None,
                name,
            })
            .is_allowed()
    };
    if names.is_empty() {
        return grants(None).then(Vec::new);
    }
    let mut kept: Vec<String> = names.iter().filter(|n| grants(Some(n))).cloned().collect();
    kept.sort();
    kept.dedup();
    (!kept.is_empty()).then_some(kept)
}

/// One rule per group, names and verb set, listing its resources.
fn merge(table: Table) -> Vec<PolicyRule> {
    let mut rules = Vec::new();
    for ((group, names), resources) in table {
        let mut by_verbs: BTreeMap<Vec<Verb>, Vec<String>> = BTreeMap::new();
        for (resource, verbs) in resources {
            by_verbs
                .entry(verbs.into_iter().collect())
                .or_default()
                .push(resource);
        }
        for (verbs, resources) in by_verbs {
            rules.push(PolicyRule {
                api_groups: vec![group.clone()],
                resources,
                verbs: verbs.iter().map(|v| v.as_str().to_string()).collect(),
                resource_names: names.clone(),
            });
        }
    }
    rules
}

/// The Role named `name` in `namespace` granting `rules`, and, for
/// `service_account`, its RoleBinding: objects for `kubectl apply`.
pub fn role_objects(
    name: &str,
    namespace: &str,
    rules: &[PolicyRule],
    service_account: Option<&str>,
) -> Vec<Value> {
    let labels = json!({"app.kubernetes.io/managed-by": "stepbox"});
    let mut objects = vec![json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "rules": rules,
    })];
    if let Some(account) = service_account {
        objects.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        }));
    }
    objects
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, body: &str) -> DeclaredStep {
        DeclaredStep {
            name: name.into(),
            needs: Some(
                StepNeeds::from_text(&format!(
                    "apiVersion: stepbox.dev/v1alpha1\nkind: StepNeeds\n{body}"
                ))
                .unwrap(),
            ),
        }
    }

    fn rule(r: &PolicyRule) -> String {
        let names = if r.resource_names.is_empty() {
            String::new()
        } else {
            format!(" {:?}", r.resource_names)
        };
        format!("{:?} {:?} {:?}{names}", r.api_groups, r.resources, r.verbs)
    }

    #[test]
    fn the_union_with_the_verbs_stepbox_uses() {
        let a = step(
            "a",
            "rules:\n- {apiGroups: [''], resources: [configmaps], verbs: [create]}\n",
        );
        let b = step(
            "b",
            "rules:\n- {apiGroups: [''], resources: [configmaps, services], verbs: [list]}\n\
             - {apiGroups: [apps], resources: [deployments], verbs: [get, watch]}\n\
             - {apiGroups: [''], resources: [secrets], verbs: [delete], resourceNames: [old]}\n",
        );
        let needed = needed_rules(&[a, b], None, "shop").unwrap();
        let rules: Vec<String> = needed.rules.iter().map(rule).collect();
        assert_eq!(
            rules,
            [
                r#"[""] ["configmaps"] ["get", "list", "create", "patch"]"#,
                r#"[""] ["services"] ["list"]"#,
                r#"[""] ["secrets"] ["get", "delete"] ["old"]"#,
                r#"["apps"] ["deployments"] ["get", "watch"]"#,
            ]
        );
        assert!(needed.notes.is_empty(), "{:?}", needed.notes);
    }

    #[test]
    fn within_the_policy_and_namespaced_only() {
        let policy = Policy::from_yaml(
            "apiVersion: stepbox.dev/v1alpha1\nkind: StepPolicy\nrules:\n\
             - {apiGroups: [''], resources: [configmaps], verbs: [get, create, patch]}\n\
             - {apiGroups: [''], resources: [secrets], verbs: [get], resourceNames: [a]}\n\
             - {apiGroups: [apiextensions.k8s.io], resources: [customresourcedefinitions], verbs: [create]}\n",
        )
        .unwrap();
        let s = step(
            "deploy",
            "rules:\n- {apiGroups: [''], resources: [configmaps, secrets], verbs: [get, delete], resourceNames: [a, b]}\n\
             - {apiGroups: [apiextensions.k8s.io], resources: [customresourcedefinitions], verbs: [create]}\n\
             - {apiGroups: [''], resources: [namespaces], verbs: [get]}\n",
        );
        let needed = needed_rules(&[s], Some(&policy), "shop").unwrap();
        let rules: Vec<String> = needed.rules.iter().map(rule).collect();
        assert_eq!(
            rules,
            [
                r#"[""] ["secrets"] ["get", "watch"] ["a"]"#,
                r#"[""] ["configmaps"] ["get", "watch"] ["a", "b"]"#,
            ]
        );
        let notes = needed.notes.join("\n");
        assert!(
            notes
                .contains("deploy needs \"delete\" on configmaps, which the policy does not grant"),
            "{notes}"
        );
        assert!(
            notes.contains(
                "customresourcedefinitions.apiextensions.k8s.io, which is cluster-scoped"
            ),
            "{notes}"
        );
        assert!(
            notes.contains("namespaces, which is cluster-scoped"),
            "{notes}"
        );
    }

    #[test]
    fn undeclared_steps_need_a_policy() {
        let bare = DeclaredStep {
            name: "old.wasm".into(),
            needs: None,
        };
        let err = needed_rules(std::slice::from_ref(&bare), None, "shop").unwrap_err();
        assert!(
            err.to_string().contains("old.wasm declares no needs"),
            "{err}"
        );
        let needed = needed_rules(&[bare], Some(&Policy::default()), "shop").unwrap();
        assert!(needed.notes[0].contains("granted what the policy grants"));
        assert!(
            needed
                .rules
                .iter()
                .any(|r| r.resources.contains(&"deployments".to_string()))
        );
    }

    #[test]
    fn a_binding_for_a_service_account() {
        let objects = role_objects("stepbox-deploy", "shop", &[], Some("deployer"));
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[1]["roleRef"]["name"], "stepbox-deploy");
        assert_eq!(objects[1]["subjects"][0]["namespace"], "shop");
        assert_eq!(role_objects("r", "shop", &[], None).len(), 1);
    }
}
