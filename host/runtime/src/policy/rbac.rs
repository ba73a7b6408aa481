//! The checks of objects that grant permissions of their own (see the
//! [module docs](super)): Roles, RoleBindings and service account token
//! Secrets, so a policy that lets a step manage RBAC objects does not let it
//! escalate.

use stepbox_k8s::ResourceInfo;
use stepbox_k8s::resources::{RBAC_GROUP, SERVICE_ACCOUNT_TOKEN_TYPE};

use super::{Decision, Policy};

/// The RoleBinding part of [`Policy::check_object`]: binds a Role, to
/// subjects of the run's namespace.
fn check_role_binding(name: &str, object: &serde_json::Value, ns: &str) -> Decision {
    let text = |v: &serde_json::Value, field: &str| {
        v.get(field)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let role_ref = object.get("roleRef").unwrap_or(&serde_json::Value::Null);
    let (ref_kind, ref_name) = (text(role_ref, "kind"), text(role_ref, "name"));
    if ref_kind != "Role" {
        let what = if ref_kind.is_empty() {
            "no Role".to_string()
        } else {
            format!("{ref_kind} {ref_name:?}")
        };
        return Decision::Deny(format!(
            "RoleBinding {name:?} binds {what}: steps may only bind Roles of namespace {ns:?} (a ClusterRole's \
             rules are not checked against the step policy)"
        ));
    }
    let subjects = match object.get("subjects") {
        None | Some(serde_json::Value::Null) => return Decision::Allow,
        Some(serde_json::Value::Array(s)) => s,
        Some(_) => return Decision::Deny(format!("RoleBinding {name:?}: subjects must be a list")),
    };
    for (i, subject) in subjects.iter().enumerate() {
        let (kind, subject_name, subject_ns) = (
            text(subject, "kind"),
            text(subject, "name"),
            text(subject, "namespace"),
        );
        let outside = match kind.as_str() {
            "ServiceAccount" => !subject_ns.is_empty() && subject_ns != ns,
            // Kubernetes names service accounts as users and groups too:
            // only those of the run's namespace stay inside it.
            _ => {
                subject_name.starts_with("system:")
                    && !subject_name.starts_with(&format!("system:serviceaccount:{ns}:"))
                    && subject_name != format!("system:serviceaccounts:{ns}")
            }
        };
        if outside {
            let where_ = if subject_ns.is_empty() {
                String::new()
            } else {
                format!(" in namespace {subject_ns:?}")
            };
            return Decision::Deny(format!(
                "RoleBinding {name:?} subjects[{i}] is {kind} {subject_name:?}{where_}, which reaches beyond namespace \
                 {ns:?}: steps may only bind subjects of the run's namespace"
            ));
        }
    }
    Decision::Allow
}

/// Most distinct (apiGroup, resource, verb, resourceName) combinations the
/// rules of one Role may name, summed over its rules, for
/// [`Policy::check_role_rules`] (which checks each one against the policy).
/// Real Roles name a few hundred; without a bound, a Role of a few MiB with
/// long lists costs hours to check.
pub const MAX_ROLE_GRANTS: usize = 10_000;

/// `items` without repeats, in first-seen order.
fn distinct(items: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    items
        .into_iter()
        .filter(|s| seen.insert(s.clone()))
        .collect()
}

impl Policy {
    /// Checks what an object a step writes would grant, once [`Policy::check`]
    /// allowed the write itself (see the module docs): Roles,
    /// RoleBindings and service account token Secrets. Other objects are
    /// allowed. A RoleBinding's referenced Role is checked by the caller,
    /// which can read it, with [`Policy::check_role_rules`].
    pub fn check_object(
        &self,
        res: &ResourceInfo,
        object: &serde_json::Value,
        run_namespace: &str,
    ) -> Decision {
        let name = stepbox_k8s::object::name(object).unwrap_or("");
        match (res.group.as_str(), res.kind.as_str()) {
            (RBAC_GROUP, "Role") => {
                let rules = object.get("rules").unwrap_or(&serde_json::Value::Null);
                self.check_role_rules(&format!("Role {name:?}"), rules)
            }
            (RBAC_GROUP, "RoleBinding") => check_role_binding(name, object, run_namespace),
            ("", "Secret") => {
                let kind = object
                    .get("type")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("");
                if kind == SERVICE_ACCOUNT_TOKEN_TYPE {
                    let account = object
                        .pointer("/metadata/annotations/kubernetes.io~1service-account.name")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or("");
                    return Decision::Deny(format!(
                        "Secret {name:?} is of type {SERVICE_ACCOUNT_TOKEN_TYPE}: Kubernetes would fill it with a token of \
                         ServiceAccount {account:?}, a credential with that account's permissions; steps may not mint \
                         service account tokens"
                    ));
                }
                Decision::Allow
            }
            _ => Decision::Allow,
        }
    }

    /// Checks the `rules` of a Role (`what` names it in the message): no
    /// wildcards, no `nonResourceURLs`, and nothing the policy does not
    /// grant itself. Duplicate entries count once; a Role whose rules name
    /// more than [`MAX_ROLE_GRANTS`] combinations in all is refused, so the
    /// check costs at most that many rule lookups whatever the Role holds.
    pub fn check_role_rules(&self, what: &str, rules: &serde_json::Value) -> Decision {
        self.check_role_rules_as(what, rules, "the step policy does not grant")
    }

    /// [`Policy::check_role_rules`] with this policy's rules standing for
    /// another grant (a step's declared needs): a refusal says the grant
    /// is `not_granted` (`"is not among the needs the step declares"`).
    pub(crate) fn check_role_rules_as(
        &self,
        what: &str,
        rules: &serde_json::Value,
        not_granted: &str,
    ) -> Decision {
        let rules = match rules {
            serde_json::Value::Null => return Decision::Allow,
            serde_json::Value::Array(r) => r,
            _ => return Decision::Deny(format!("{what}: rules must be a list")),
        };
        let mut combinations = 0usize;
        for (i, rule) in rules.iter().enumerate() {
            let list = |field: &str| -> std::result::Result<Vec<String>, Decision> {
                match rule.get(field) {
                    None | Some(serde_json::Value::Null) => Ok(Vec::new()),
                    Some(serde_json::Value::Array(items)) => items
                        .iter()
                        .map(|v| v.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| {
                            Decision::Deny(format!(
                                "{what} rules[{i}].{field} must be a list of strings"
                            ))
                        }),
                    Some(_) => Err(Decision::Deny(format!(
                        "{what} rules[{i}].{field} must be a list of strings"
                    ))),
                }
            };
            let fields = (
                list("apiGroups"),
                list("resources"),
                list("verbs"),
                list("resourceNames"),
                list("nonResourceURLs"),
            );
            let (groups, resources, verbs, names, urls) = match fields {
                (Ok(g), Ok(r), Ok(v), Ok(n), Ok(u)) => (g, r, v, n, u),
                (Err(d), ..)
                | (_, Err(d), ..)
                | (_, _, Err(d), ..)
                | (_, _, _, Err(d), _)
                | (.., Err(d)) => return d,
            };
            if !urls.is_empty() {
                return Decision::Deny(format!(
                    "{what} rules[{i}] lists nonResourceURLs, which only ClusterRoles can grant; steps may not grant them"
                ));
            }
            for (field, values) in [
                ("apiGroups", &groups),
                ("resources", &resources),
                ("verbs", &verbs),
            ] {
                if values.iter().any(|v| v == "*" || v.starts_with("*/")) {
                    return Decision::Deny(format!(
                        "{what} rules[{i}] grants \"*\" in {field}: a wildcard grants more than any step policy can \
                         check; list what the Role needs"
                    ));
                }
            }
            // Duplicates change nothing a rule grants, but the check below
            // visits every combination: drop them, and refuse a Role whose
            // rules still name too many combinations to check.
            let (groups, resources, verbs, names) = (
                distinct(groups),
                distinct(resources),
                distinct(verbs),
                distinct(names),
            );
            combinations = [resources.len(), verbs.len(), names.len().max(1)]
                .into_iter()
                .fold(groups.len(), usize::saturating_mul)
                .saturating_add(combinations);
            if combinations > MAX_ROLE_GRANTS {
                return Decision::Deny(format!(
                    "{what} names more than {MAX_ROLE_GRANTS} distinct (apiGroup, resource, verb, resourceName) \
                     combinations (passed at rules[{i}]), more than stepbox checks for one Role: split it into \
                     several Roles or list fewer"
                ));
            }
            for group in &groups {
                for resource in &resources {
                    for verb in &verbs {
                        if !self.grants_exactly(group, resource, verb, &names) {
                            let gr = if group.is_empty() {
                                resource.clone()
                            } else {
                                format!("{resource}.{group}")
                            };
                            let names_note = if names.is_empty() {
                                String::new()
                            } else {
                                format!(" (resourceNames {})", names.join(", "))
                            };
                            return Decision::Deny(format!(
                                "{what} rules[{i}] grants {verb:?} on {gr}{names_note}, which {not_granted}: a step \
                                 may only create Roles within its own permissions"
                            ));
                        }
                    }
                }
            }
        }
        Decision::Allow
    }

    /// True when some rule grants `verb` on `group`/`resource` for every one
    /// of `names` (any name, when `names` is empty).
    fn grants_exactly(&self, group: &str, resource: &str, verb: &str, names: &[String]) -> bool {
        self.rules.iter().any(|r| {
            r.grants_group(group)
                && r.grants_resource(resource)
                && r.verbs.iter().any(|v| v == "*" || v == verb)
                && (r.resource_names.is_empty()
                    || (!names.is_empty() && names.iter().all(|n| r.resource_names.contains(n))))
        })
    }
}
