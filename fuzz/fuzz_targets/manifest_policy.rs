//! Manifest text from a step, through everything the host does with it on
//! `kube.apply`.
//!
//! The input is the manifest text itself (UTF-8, as a WIT string is), so the
//! corpus is readable YAML/JSON. Each input is:
//!
//! 1. parsed with [`manifest::parse_documents`], checking the parser's
//!    contract: every document is a mapping with non-empty string
//!    `apiVersion`, `kind` and `metadata.name`, and its JSON rendering parses
//!    back to the same documents;
//! 2. checked, document by document, against each of the representative
//!    policies below with the checks the kube capability makes
//!    ([`Policy::check`], [`Policy::check_object`], and for a RoleBinding
//!    [`Policy::check_role_rules`] of the Role it binds), checking that an
//!    allowed object never reaches outside the run's namespace, and that an
//!    allowed Role grants nothing the policy does not grant itself;
//! 3. applied through the real kube capability ([`KubeCtx::apply`]) to a
//!    fresh in-memory namespace, whose verdict must agree with step 2 and
//!    whose errors must not show a run secret.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use stepbox::caps::kube::KubeCtx;
use stepbox::caps::{CapError, ErrorKind, RunScope};
use stepbox::cluster::memory::MemoryCluster;
use stepbox::cluster::{ClusterBackend, ResourceInfo};
use stepbox::manifest;
use stepbox::mask::SecretMasker;
use stepbox::policy::{AccessRequest, Decision, Policy, Verb};
use stepbox::report::RunRecorder;

/// The run's namespace.
const NS: &str = "dev";

/// A secret of the run; no error message may show it.
const SECRET: &str = "fuzz-s3cret-value";

/// A policy for a step that manages RBAC objects: the shapes that make
/// `check_role_rules` and `check_role_binding` do real work (wildcard
/// groups, `*/scale`, resourceNames, CRDs).
const RBAC_POLICY: &str = r#"
apiVersion: stepbox.dev/v1alpha1
kind: StepPolicy
rules:
  - apiGroups: [""]
    resources: ["configmaps", "services", "pods", "pods/log"]
    verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
  - apiGroups: [""]
    resources: ["secrets"]
    verbs: ["get", "update", "patch"]
    resourceNames: ["app-secret", "db"]
  - apiGroups: ["apps", "batch"]
    resources: ["deployments", "*/scale", "jobs"]
    verbs: ["*"]
  - apiGroups: ["*"]
    resources: ["widgets"]
    verbs: ["get", "list"]
  - apiGroups: ["rbac.authorization.k8s.io"]
    resources: ["roles", "rolebindings"]
    verbs: ["*"]
  - apiGroups: ["apiextensions.k8s.io"]
    resources: ["customresourcedefinitions"]
    verbs: ["get", "create"]
"#;

struct Fixture {
    policies: Vec<Arc<Policy>>,
    runtime: tokio::runtime::Runtime,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture {
        policies: vec![
            Arc::new(Policy::default()),
            Arc::new(Policy::from_yaml(RBAC_POLICY).expect("RBAC_POLICY parses")),
        ],
        runtime: tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a tokio runtime"),
    })
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut v = v;
    for p in path {
        v = match v.get(p) {
            Some(x) => x,
            None => return "",
        };
    }
    v.as_str().unwrap_or("")
}

fn is_list(v: &Value) -> bool {
    str_at(v, &["kind"]).ends_with("List") && v.get("items").is_some_and(Value::is_array)
}

/// True when some map key of `v` renders as JSON in more than 1000 bytes.
fn has_long_key(v: &Value) -> bool {
    match v {
        Value::Array(items) => items.iter().any(has_long_key),
        Value::Object(m) => m
            .iter()
            .any(|(k, x)| Value::String(k.clone()).to_string().len() > 1000 || has_long_key(x)),
        _ => false,
    }
}

/// The parser's contract on what it returns.
fn check_parsed(text: &str, docs: &[Value]) {
    for doc in docs {
        assert!(doc.is_object(), "not an object: {doc}");
        for path in [&["apiVersion"][..], &["kind"], &["metadata", "name"]] {
            assert!(!str_at(doc, path).is_empty(), "{path:?} missing in {doc}");
        }
    }
    // The JSON rendering of what was accepted parses back to the same
    // documents (the host and dev-cluster re-read JSON they or kubectl
    // wrote). Nested `*List` objects deeper than the flattening limit would
    // be flattened again, so they are left out.
    if docs.iter().any(is_list) {
        return;
    }
    // Known and left alone (SECURITY.md, "Fuzzing"): a map key longer than
    // 1024 characters is fine in YAML block style but not as a JSON/flow
    // key, which YAML limits to 1024 characters, so such documents do not
    // parse back from their JSON.
    if docs.iter().any(has_long_key) {
        return;
    }
    let json: Vec<String> = docs.iter().map(Value::to_string).collect();
    let again = manifest::parse_documents(&json.join("\n---\n")).unwrap_or_else(|e| {
        panic!("JSON of accepted documents does not parse: {e}\ninput: {text:?}")
    });
    assert_eq!(again, docs, "JSON round trip changed the documents");
}

/// The policy checks of one apply, as the kube capability makes them on a
/// fresh namespace (every document is a create). Returns whether every
/// document was allowed.
fn check_policy(policy: &Policy, docs: &[(ResourceInfo, Value)]) -> bool {
    let mut all_allowed = true;
    for (i, (res, doc)) in docs.iter().enumerate() {
        let name = str_at(doc, &["metadata", "name"]);
        let object_ns = doc.pointer("/metadata/namespace").and_then(Value::as_str);
        let req = AccessRequest {
            verb: Verb::Create,
            resource: res,
            run_namespace: NS,
            object_namespace: object_ns,
            name: Some(name),
        };
        let decision = policy.check(&req);
        assert_eq!(decision, policy.check(&req), "check is not deterministic");
        if let Decision::Allow = decision {
            assert!(res.namespaced, "cluster-scoped {} allowed", res.kind);
            assert!(
                object_ns.is_none_or(|ns| ns.is_empty() || ns == NS),
                "{} in namespace {object_ns:?} allowed",
                res.kind
            );
        }
        for verb in Verb::ALL {
            let _ = policy.allows_crds(verb);
        }
        let decision = match decision {
            Decision::Allow => grants(policy, res, doc, &docs[..i]),
            deny => deny,
        };
        // Pods and pod templates are held to the policy's Pod Security level.
        let decision = match decision {
            Decision::Allow => stepbox::k8s::pod_security::check(
                policy.pod_security,
                &res.group,
                &res.kind,
                doc,
            )
            .map_or_else(|v| Decision::Deny(v.to_string()), |()| Decision::Allow),
            deny => deny,
        };
        match decision {
            Decision::Allow => {}
            Decision::Deny(why) => {
                assert!(!why.is_empty(), "a denial without a reason");
                all_allowed = false;
            }
        }
    }
    all_allowed
}

/// [`Policy::check_object`] and, for a RoleBinding, the rules of the Role it
/// binds from the same apply (what `KubeCtx::check_grants` does).
fn grants(
    policy: &Policy,
    res: &ResourceInfo,
    doc: &Value,
    before: &[(ResourceInfo, Value)],
) -> Decision {
    let decision = policy.check_object(res, doc, NS);
    if decision != Decision::Allow {
        return decision;
    }
    match (res.group.as_str(), res.kind.as_str()) {
        ("rbac.authorization.k8s.io", "Role") => {
            check_role_within_policy(policy, doc.get("rules").unwrap_or(&Value::Null));
        }
        ("rbac.authorization.k8s.io", "RoleBinding") => {
            check_binding_stays_inside(doc);
            let role_name = str_at(doc, &["roleRef", "name"]);
            let role = before.iter().find(|(r, d)| {
                r.group == res.group
                    && r.kind == "Role"
                    && str_at(d, &["metadata", "name"]) == role_name
            });
            if let Some((_, role)) = role {
                let rules = role.get("rules").unwrap_or(&Value::Null);
                let decision = policy.check_role_rules("Role", rules);
                if decision == Decision::Allow {
                    check_role_within_policy(policy, rules);
                }
                return decision;
            }
        }
        ("", "Secret") => {
            assert_ne!(
                str_at(doc, &["type"]),
                "kubernetes.io/service-account-token",
                "a service account token Secret was allowed"
            );
        }
        _ => {}
    }
    Decision::Allow
}

/// An allowed Role grants nothing the policy does not: every verb it names
/// on every resource it names is one [`Policy::check`] allows.
fn check_role_within_policy(policy: &Policy, rules: &Value) {
    let Some(rules) = rules.as_array() else {
        return;
    };
    let strings = |rule: &Value, field: &str| -> Vec<String> {
        rule.get(field)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut budget = 10_000usize;
    for rule in rules {
        let groups = strings(rule, "apiGroups");
        let resources = strings(rule, "resources");
        let verbs = strings(rule, "verbs");
        let names = strings(rule, "resourceNames");
        for group in &groups {
            for resource in &resources {
                for verb in verbs.iter().filter_map(|v| Verb::parse(v)) {
                    // RBAC never matches a create against a rule limited
                    // by name: such a Role grants no create at all.
                    if verb == Verb::Create && !names.is_empty() {
                        continue;
                    }
                    budget = match budget.checked_sub(1) {
                        Some(b) => b,
                        None => return,
                    };
                    let res = ResourceInfo::new(group, "v1", "Checked", resource, true);
                    let requests: Vec<Option<&str>> = if names.is_empty() {
                        vec![None]
                    } else {
                        names.iter().map(|n| Some(n.as_str())).collect()
                    };
                    for name in requests {
                        let req = AccessRequest {
                            verb,
                            resource: &res,
                            run_namespace: NS,
                            object_namespace: None,
                            name,
                        };
                        assert_eq!(
                            policy.check(&req),
                            Decision::Allow,
                            "an allowed Role grants {verb} on {resource:?} in group {group:?} for {name:?}, \
                             which the policy does not"
                        );
                    }
                }
            }
        }
    }
}

/// An allowed RoleBinding binds a Role to subjects of the run's namespace.
fn check_binding_stays_inside(doc: &Value) {
    assert_eq!(
        str_at(doc, &["roleRef", "kind"]),
        "Role",
        "a non-Role bound: {doc}"
    );
    let Some(subjects) = doc.get("subjects").and_then(Value::as_array) else {
        return;
    };
    for s in subjects {
        let (kind, name, ns) = (
            str_at(s, &["kind"]),
            str_at(s, &["name"]),
            str_at(s, &["namespace"]),
        );
        if kind == "ServiceAccount" {
            assert!(ns.is_empty() || ns == NS, "ServiceAccount of {ns:?} bound");
        } else if name.starts_with("system:") {
            assert!(
                name.starts_with(&format!("system:serviceaccount:{NS}:"))
                    || name == format!("system:serviceaccounts:{NS}"),
                "{kind} {name:?} bound"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let fx = fixture();
    let parsed = manifest::parse_documents(text);
    if let Ok(docs) = &parsed {
        check_parsed(text, docs);
    }
    for policy in &fx.policies {
        let backend = Arc::new(MemoryCluster::new());
        // Resolve kinds as the capability does (the backend's discovery).
        let resolved: Option<Vec<(ResourceInfo, Value)>> = parsed.as_ref().ok().map(|docs| {
            docs.iter()
                .filter_map(|d| {
                    let res = fx.runtime.block_on(
                        backend.resource(str_at(d, &["apiVersion"]), str_at(d, &["kind"])),
                    );
                    res.ok().map(|r| (r, d.clone()))
                })
                .collect()
        });
        let all_resolved = matches!((&resolved, &parsed), (Some(r), Ok(d)) if r.len() == d.len());
        let expect_allowed = resolved.as_ref().map(|r| check_policy(policy, r));

        let recorder = RunRecorder::new(SecretMasker::new([SECRET]), 1 << 20, 1 << 20, None);
        let kube = KubeCtx::new(RunScope {
            namespace: NS.to_string(),
            policy: policy.clone(),
            needs: None,
            backend: backend.clone(),
            recorder,
            dry_run: true,
        });
        let result = fx.runtime.block_on(kube.apply(text));
        match (&result, expect_allowed) {
            (Ok(applied), Some(true)) => {
                let n = parsed.as_ref().map_or(0, Vec::len);
                assert_eq!(applied.len(), n, "not every document was applied");
            }
            (Ok(_), _) => panic!("apply succeeded where the policy refuses (or parsing failed)"),
            (Err(CapError::Step(e)), Some(false)) if e.kind == ErrorKind::Forbidden => {}
            (Err(CapError::Step(e)), _) if e.kind == ErrorKind::Forbidden && !all_resolved => {}
            (Err(CapError::Step(e)), _) if e.kind == ErrorKind::Forbidden => {
                panic!("apply refused what every policy check allows: {e}")
            }
            (Err(CapError::Step(e)), _) if e.kind == ErrorKind::Invalid => {
                // Parsing, discovery or the backend's validation refused it.
            }
            (Err(CapError::Step(e)), Some(true))
                if matches!(e.kind, ErrorKind::Conflict | ErrorKind::NotFound) => {}
            (Err(e), allowed) => {
                panic!("unexpected apply error (policy allows: {allowed:?}): {e:?}")
            }
        }
        if let Err(CapError::Step(e)) = &result {
            assert!(
                !e.to_string().contains(SECRET),
                "an error shows the run secret: {e}"
            );
        }
    }
});
