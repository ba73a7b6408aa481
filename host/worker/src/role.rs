//! The Role a worker's service account needs: what the worker itself does
//! (StepRuns, their status and finalizers, report ConfigMaps, Events, the
//! Secrets StepRuns reference) plus everything its policies grant, since
//! each run's requests go out with the worker's credentials. Kubernetes
//! RBAC then holds the same line as the policies. Namespaced: a worker
//! needs no ClusterRole.

use serde_json::{Value, json};

use crate::PolicySet;

/// The rules of what the worker itself does, before its policies' rules.
pub fn worker_rules() -> Vec<Value> {
    vec![
        rule(
            &["stepbox.dev"],
            &["stepruns"],
            &["get", "list", "watch", "update", "patch", "delete"],
        ),
        rule(
            &["stepbox.dev"],
            &["stepruns/status"],
            &["get", "update", "patch"],
        ),
        rule(&["stepbox.dev"], &["stepruns/finalizers"], &["update"]),
        rule(
            &[""],
            &["configmaps"],
            &["get", "create", "update", "patch", "delete"],
        ),
        rule(&[""], &["events"], &["create", "patch"]),
        rule(&[""], &["secrets"], &["get"]),
    ]
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

/// The Role named `name` in `namespace` for a worker with `policies`.
pub fn role(namespace: &str, name: &str, policies: &PolicySet) -> Value {
    let mut rules = worker_rules();
    for (_, policy) in policies.iter() {
        for r in &policy.rules {
            let mut v = json!({
                "apiGroups": r.api_groups,
                "resources": r.resources,
                "verbs": r.verbs,
            });
            if !r.resource_names.is_empty() {
                v["resourceNames"] = json!(r.resource_names);
            }
            if !rules.contains(&v) {
                rules.push(v);
            }
        }
    }
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": "stepbox-worker"},
        },
        "rules": rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use stepbox::policy::Policy;

    #[test]
    fn the_role_is_the_workers_rules_and_each_policy_rule_once() {
        let a = Policy::from_yaml(
            "apiVersion: stepbox.dev/v1alpha1\nkind: StepPolicy\nrules:\n- {apiGroups: [apps], resources: [deployments], verbs: [get, patch]}\n",
        )
        .unwrap();
        let b = Policy::from_yaml(
            "apiVersion: stepbox.dev/v1alpha1\nkind: StepPolicy\nrules:\n- {apiGroups: [apps], resources: [deployments], verbs: [get, patch]}\n- {apiGroups: [''], resources: [secrets], verbs: [get], resourceNames: [db]}\n",
        )
        .unwrap();
        let set = PolicySet::new(BTreeMap::from([("a".into(), a), ("b".into(), b)]), "a").unwrap();
        let role = role("shop", "stepbox-worker", &set);
        let rules = role["rules"].as_array().unwrap();
        assert_eq!(rules.len(), worker_rules().len() + 2);
        assert_eq!(
            rules[worker_rules().len() + 1]["resourceNames"],
            json!(["db"])
        );
        assert_eq!(role["metadata"]["namespace"], "shop");
        assert_eq!(role["kind"], "Role");
    }
}
