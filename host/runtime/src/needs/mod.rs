//! What a step declares it needs, and the grant a run gets from it.
//!
//! A step says at build time which Kubernetes objects it touches (rules
//! shaped like a Role's), whether it calls helm, and, if it wants, a
//! stricter Pod Security level for the pods it writes. The declaration
//! travels inside the component, in a custom section named `stepbox:needs`
//! ([`section`]), written by `stepbox_sdk::needs!` in a Rust step or by
//! `stepbox build` from a `step.yaml` beside the sources (any language):
//!
//! ```yaml
//! apiVersion: stepbox.dev/v1alpha1
//! kind: StepNeeds
//! rules:                  # as in a Role, without wildcards (required; [] needs no objects)
//!   - apiGroups: [""]
//!     resources: ["configmaps"]
//!     verbs: ["get", "create", "patch"]
//!     resourceNames: []   # optional
//! helm: false             # optional: the step calls helm
//! outbound:               # optional: HTTP destinations, as the policy's `outbound` entries
//!   - https://api.example.com
//! podSecurity: restricted # optional: a stricter level than the policy's for the pods it writes
//! ```
//!
//! A run's grant is its policy **intersected** with the declaration: the
//! one admission function ([`crate::admission`]) allows a request only when
//! the policy allows it and the declaration names it, so a step that
//! declares ConfigMaps cannot touch Secrets on any path (a `kube` call,
//! the objects a chart renders, helm's requests through the gateway), and
//! the refusal names the declaration:
//!
//! ```text
//! "create" on secrets is not among the needs the step declares (stepbox:needs: configmaps get, create, patch)
//! ```
//!
//! Roles a step writes may grant only what both allow; helm calls need
//! `helm: true`; an HTTP request must match both the policy's `outbound`
//! list and the declaration's (none declared: no HTTP; `*://*:*` leaves it
//! to the policy); pods are held to the stricter of the two Pod Security
//! levels. A step without a declaration keeps its policy's whole grant,
//! and its run says so with a warning. [`role`] turns declarations into
//! the namespaced Role they need on a cluster (`stepbox rbac`).
//!
//! ```
//! use stepbox::k8s::resources;
//! use stepbox::needs::StepNeeds;
//! use stepbox::policy::{AccessRequest, Verb};
//!
//! let needs = StepNeeds::from_text(
//!     "apiVersion: stepbox.dev/v1alpha1\nkind: StepNeeds\nrules:\n\
//!      - {apiGroups: [''], resources: [configmaps], verbs: [get, create, patch]}\n",
//! )?;
//! let secrets = resources::lookup("v1", "Secret");
//! let read = AccessRequest { verb: Verb::Get, resource: &secrets, run_namespace: "dev",
//!                            object_namespace: None, name: Some("db") };
//! assert!(!needs.check(&read).is_allowed());
//! # Ok::<(), stepbox::needs::NeedsError>(())
//! ```

pub mod role;
pub mod section;

use serde::{Deserialize, Serialize};

use crate::policy::outbound::Destination;
use crate::policy::{
    self, AccessRequest, Decision, Grant, Outbound, PodSecurityLevel, Policy, PolicyError,
    PolicyRule,
};

/// The apiVersion of declarations.
pub const API_VERSION: &str = "stepbox.dev/v1alpha1";
/// The kind of declarations.
pub const KIND: &str = "StepNeeds";
/// The largest declaration read (a few hundred bytes is usual).
pub const MAX_DECLARATION_BYTES: usize = 64 * 1024;

/// Why a declaration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum NeedsError {
    /// Not YAML or JSON of the expected shape (unknown field, wrong type,
    /// too large); the message names what is wrong.
    #[error("invalid stepbox:needs declaration: {0}")]
    Parse(String),
    /// A field has a value that is not allowed.
    #[error("invalid stepbox:needs declaration: {field}: {message}")]
    Field {
        /// The field (`kind`, `rules[0].verbs[1]`).
        field: String,
        /// What is wrong and what is expected.
        message: String,
    },
    /// More than one `stepbox:needs` section.
    #[error(
        "the component holds {0} stepbox:needs sections; a step declares its needs once \
         (with stepbox_sdk::needs! or a step.yaml, not both)"
    )]
    Repeated(usize),
    /// The bytes are not a component wasmparser can read.
    #[error("cannot read the component's sections: {0}")]
    Component(String),
}

/// The declaration as written.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NeedsFile {
    api_version: String,
    kind: String,
    #[serde(default)]
    rules: Vec<PolicyRule>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    helm: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    outbound: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pod_security: Option<String>,
}

/// A step's declared needs: what its runs may do at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepNeeds {
    /// The declared rules as a policy of its own, so a request matches
    /// them exactly as it matches a policy's (RBAC's matching, CRDs only
    /// when named, `resourceNames`).
    grants: Policy,
    helm: bool,
    /// HTTP destinations (empty: none).
    outbound: Outbound,
    pod_security: Option<PodSecurityLevel>,
}

impl StepNeeds {
    /// Parses a declaration (YAML or JSON, see the [module docs](self)).
    ///
    /// # Errors
    /// [`NeedsError::Parse`] for syntax, unknown fields and wrong types;
    /// [`NeedsError::Field`] for a wrong `apiVersion`/`kind`, a bad or
    /// wildcard verb, group or resource, or an unknown `podSecurity`.
    /// Messages name the field and say what is expected.
    pub fn from_text(text: &str) -> Result<Self, NeedsError> {
        if text.len() > MAX_DECLARATION_BYTES {
            return Err(NeedsError::Parse(format!(
                "it is {} bytes, more than the {MAX_DECLARATION_BYTES} a declaration may be",
                text.len()
            )));
        }
        let file: NeedsFile =
            serde_yaml_ng::from_str(text).map_err(|e| NeedsError::Parse(e.to_string()))?;
        let field = |field: &str, message: String| NeedsError::Field {
            field: field.to_string(),
            message,
        };
        if file.api_version != API_VERSION {
            return Err(field(
                "apiVersion",
                format!("expected {API_VERSION:?}, found {:?}", file.api_version),
            ));
        }
        if file.kind != KIND {
            return Err(field(
                "kind",
                format!("expected {KIND:?}, found {:?}", file.kind),
            ));
        }
        for (i, rule) in file.rules.iter().enumerate() {
            policy::validate_rule(i, rule).map_err(|e| match e {
                PolicyError::Field { field, message } => NeedsError::Field { field, message },
                other => NeedsError::Parse(other.to_string()),
            })?;
            for (name, values) in [
                ("apiGroups", &rule.api_groups),
                ("resources", &rule.resources),
                ("verbs", &rule.verbs),
            ] {
                if let Some(j) = values.iter().position(|v| v.starts_with('*')) {
                    return Err(field(
                        &format!("rules[{i}].{name}[{j}]"),
                        format!(
                            "{:?} is a wildcard; a declaration names what the step needs, e.g. \
                             apiGroups [\"apps\"], resources [\"deployments\"], verbs [\"get\", \"patch\"]",
                            values[j]
                        ),
                    ));
                }
            }
        }
        let pod_security = match file.pod_security.as_deref() {
            None => None,
            Some(name) => Some(PodSecurityLevel::parse(name).ok_or_else(|| {
                field(
                    "podSecurity",
                    format!("unknown level {name:?}; expected privileged, baseline or restricted"),
                )
            })?),
        };
        let outbound = Outbound::parse(&file.outbound).map_err(|e| match e {
            PolicyError::Field { field, message } => NeedsError::Field { field, message },
            other => NeedsError::Parse(other.to_string()),
        })?;
        Ok(Self {
            grants: Policy {
                rules: file.rules,
                ..Policy::default()
            },
            helm: file.helm,
            outbound,
            pod_security,
        })
    }

    /// The declaration as canonical JSON (what `stepbox build` embeds).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.file()).unwrap_or_default()
    }

    fn file(&self) -> NeedsFile {
        NeedsFile {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            rules: self.grants.rules.clone(),
            helm: self.helm,
            outbound: self.outbound_entries(),
            pod_security: self.pod_security.map(|l| l.as_str().to_string()),
        }
    }

    /// The declared rules.
    pub fn rules(&self) -> &[PolicyRule] {
        &self.grants.rules
    }

    /// Whether the step declares it calls helm.
    pub fn helm(&self) -> bool {
        self.helm
    }

    /// The HTTP destinations the step declares, as written.
    pub fn outbound_entries(&self) -> Vec<String> {
        self.outbound.rules.iter().map(|r| r.text.clone()).collect()
    }

    /// The Pod Security level the step asks its pods to be held to, if any.
    pub fn pod_security(&self) -> Option<PodSecurityLevel> {
        self.pod_security
    }

    /// Every (group, resource) the declaration names and its verbs, merged
    /// and sorted.
    pub fn grants(&self) -> Vec<Grant> {
        self.grants.grants()
    }

    /// `stepbox:needs: configmaps get, create, patch; helm`: the
    /// declaration in one line, as refusals name it.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .grants()
            .iter()
            .map(|g| {
                let gr = if g.api_group.is_empty() {
                    g.resource.clone()
                } else {
                    format!("{}.{}", g.resource, g.api_group)
                };
                let verbs: Vec<&str> = g.verbs.iter().map(|v| v.as_str()).collect();
                let names = if g.resource_names.is_empty() {
                    String::new()
                } else {
                    format!(" [names: {}]", g.resource_names.join(", "))
                };
                format!("{gr} {}{names}", verbs.join(", "))
            })
            .collect();
        if parts.is_empty() {
            parts.push("no Kubernetes objects".into());
        }
        if self.helm {
            parts.push("helm".into());
        }
        if !self.outbound.rules.is_empty() {
            parts.push(format!("outbound {}", self.outbound_entries().join(", ")));
        }
        if let Some(level) = self.pod_security {
            parts.push(format!("podSecurity {level}"));
        }
        format!("stepbox:needs: {}", parts.join("; "))
    }

    /// Whether the declaration names the request. A refusal says what was
    /// asked and lists the declaration.
    pub fn check(&self, req: &AccessRequest<'_>) -> Decision {
        if self.grants.check(req).is_allowed() {
            return Decision::Allow;
        }
        let name = match req.name {
            Some(n) if !n.is_empty() => format!(" {n:?}"),
            _ => String::new(),
        };
        Decision::Deny(format!(
            "{:?} on {}{name} is not among the needs the step declares ({})",
            req.verb.as_str(),
            req.resource.gr(),
            self.describe()
        ))
    }

    /// The rules of a Role the step writes may grant only what the
    /// declaration names (see [`Policy::check_role_rules`]).
    pub fn check_role_rules(&self, what: &str, rules: &serde_json::Value) -> Decision {
        let not_granted = format!(
            "is not among the needs the step declares ({})",
            self.describe()
        );
        self.grants.check_role_rules_as(what, rules, &not_granted)
    }

    /// Whether the step may send an HTTP request to `to`.
    pub fn check_outbound(&self, to: &Destination<'_>) -> Decision {
        if self.outbound.rule_for(to).is_some() {
            return Decision::Allow;
        }
        Decision::Deny(format!(
            "{to} is not among the needs the step declares ({}); declare it under `outbound:`, \
             e.g. outbound: [\"{}://{}\"]",
            self.describe(),
            to.scheme(),
            to.host
        ))
    }

    /// Whether the step may call helm.
    pub fn check_helm(&self) -> Decision {
        if self.helm {
            return Decision::Allow;
        }
        Decision::Deny(format!(
            "helm is not among the needs the step declares ({}); declare `helm: true` to call it",
            self.describe()
        ))
    }
}

impl Serialize for StepNeeds {
    /// As the declaration is written (`apiVersion`, `kind`, `rules`, ...).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.file().serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Verb;
    use stepbox_k8s::resources::lookup;

    const HEAD: &str = "apiVersion: stepbox.dev/v1alpha1\nkind: StepNeeds\n";

    fn needs(body: &str) -> StepNeeds {
        StepNeeds::from_text(&format!("{HEAD}{body}")).unwrap()
    }

    fn req<'a>(
        verb: Verb,
        res: &'a stepbox_k8s::ResourceInfo,
        name: Option<&'a str>,
    ) -> AccessRequest<'a> {
        AccessRequest {
            verb,
            resource: res,
            run_namespace: "dev",
            object_namespace: None,
            name,
        }
    }

    #[test]
    fn requests_outside_the_declaration_are_refused_naming_it() {
        let n = needs(
            "rules:\n- {apiGroups: [''], resources: [configmaps], verbs: [get, create, patch]}\n",
        );
        let (cm, secret) = (lookup("v1", "ConfigMap"), lookup("v1", "Secret"));
        assert!(n.check(&req(Verb::Create, &cm, Some("a"))).is_allowed());
        assert!(!n.check(&req(Verb::Delete, &cm, Some("a"))).is_allowed());
        let Decision::Deny(why) = n.check(&req(Verb::Create, &secret, None)) else {
            panic!("allowed")
        };
        assert_eq!(
            why,
            "\"create\" on secrets is not among the needs the step declares \
             (stepbox:needs: configmaps get, create, patch)"
        );
        assert!(!n.check_helm().is_allowed());
        assert!(needs("rules: []\nhelm: true\n").check_helm().is_allowed());
    }

    #[test]
    fn names_and_crds_match_as_in_a_policy() {
        let n = needs(
            "rules:\n- {apiGroups: [''], resources: [secrets], verbs: [get], resourceNames: [db]}\n\
             - {apiGroups: [apiextensions.k8s.io], resources: [customresourcedefinitions], verbs: [create]}\n",
        );
        let secret = lookup("v1", "Secret");
        assert!(n.check(&req(Verb::Get, &secret, Some("db"))).is_allowed());
        let Decision::Deny(why) = n.check(&req(Verb::Get, &secret, Some("other"))) else {
            panic!()
        };
        assert!(
            why.starts_with("\"get\" on secrets \"other\" is not"),
            "{why}"
        );
        assert!(why.contains("secrets get [names: db]"), "{why}");
        let crd = lookup("apiextensions.k8s.io/v1", "CustomResourceDefinition");
        assert!(n.check(&req(Verb::Create, &crd, Some("x"))).is_allowed());
        assert!(!n.check(&req(Verb::Delete, &crd, Some("x"))).is_allowed());
    }

    #[test]
    fn roles_may_grant_only_what_is_declared() {
        let n = needs("rules:\n- {apiGroups: [''], resources: [configmaps], verbs: [get]}\n");
        let ok =
            serde_json::json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]);
        assert!(n.check_role_rules("Role \"r\"", &ok).is_allowed());
        let more =
            serde_json::json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]);
        let Decision::Deny(why) = n.check_role_rules("Role \"r\"", &more) else {
            panic!()
        };
        assert!(
            why.contains(
                "grants \"get\" on secrets, which is not among the needs the step declares"
            ),
            "{why}"
        );
    }

    #[test]
    fn http_goes_only_where_the_declaration_says() {
        let none = needs("rules: []\n");
        let api = Destination {
            https: true,
            host: "api.example.com",
            port: 443,
        };
        let Decision::Deny(why) = none.check_outbound(&api) else {
            panic!("allowed")
        };
        assert_eq!(
            why,
            "https://api.example.com:443 is not among the needs the step declares \
             (stepbox:needs: no Kubernetes objects); declare it under `outbound:`, \
             e.g. outbound: [\"https://api.example.com\"]"
        );
        let some = needs("rules: []\noutbound: [https://api.example.com]\n");
        assert!(some.check_outbound(&api).is_allowed());
        let other = Destination {
            https: true,
            host: "evil.example.com",
            port: 443,
        };
        assert!(!some.check_outbound(&other).is_allowed());
        assert!(
            needs("rules: []\noutbound: ['*://*:*']\n")
                .check_outbound(&other)
                .is_allowed(),
            "a wildcard leaves it to the policy"
        );
        assert_eq!(StepNeeds::from_text(&some.to_json()).unwrap(), some);
        assert_eq!(
            some.describe(),
            "stepbox:needs: no Kubernetes objects; outbound https://api.example.com"
        );
        let err = StepNeeds::from_text(&format!("{HEAD}outbound: [ftp://x]\n")).unwrap_err();
        assert!(
            err.to_string().contains("outbound[0]: \"ftp://x\""),
            "{err}"
        );
    }

    #[test]
    fn a_declaration_round_trips_as_json() {
        let n = needs(
            "rules:\n- {apiGroups: [apps], resources: [deployments, deployments/scale], verbs: [get, patch]}\n\
             helm: true\npodSecurity: restricted\n",
        );
        assert_eq!(StepNeeds::from_text(&n.to_json()).unwrap(), n);
        assert!(n.to_json().starts_with(
            "{\"apiVersion\":\"stepbox.dev/v1alpha1\",\"kind\":\"StepNeeds\",\"rules\":"
        ));
        assert_eq!(n.pod_security(), Some(PodSecurityLevel::Restricted));
        assert_eq!(
            n.describe(),
            "stepbox:needs: deployments.apps get, patch; deployments/scale.apps get, patch; helm; podSecurity restricted"
        );
        assert_eq!(
            needs("rules: []\n").describe(),
            "stepbox:needs: no Kubernetes objects"
        );
    }

    #[test]
    fn bad_declarations_say_what_to_write() {
        for (body, want) in [
            ("rules: []\nextra: 1\n", "unknown field `extra`"),
            (
                "rules: [{apiGroups: [''], resources: [pods], verbs: ['*']}]\n",
                "rules[0].verbs[0]: \"*\" is a wildcard",
            ),
            (
                "rules: [{apiGroups: ['*'], resources: [pods], verbs: [get]}]\n",
                "rules[0].apiGroups[0]",
            ),
            (
                "rules: [{apiGroups: [''], resources: ['*/scale'], verbs: [get]}]\n",
                "rules[0].resources[0]",
            ),
            (
                "rules: [{apiGroups: [''], resources: [pods], verbs: [destroy]}]\n",
                "rules[0].verbs[0]: unknown verb \"destroy\"",
            ),
            (
                "rules: [{apiGroups: [''], resources: [pods], verbs: []}]\n",
                "rules[0].verbs: must list",
            ),
            (
                "podSecurity: strict\n",
                "podSecurity: unknown level \"strict\"",
            ),
        ] {
            let err = StepNeeds::from_text(&format!("{HEAD}{body}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{body} => {err}");
        }
        let err = StepNeeds::from_text("apiVersion: v1\nkind: StepNeeds\n").unwrap_err();
        assert!(err.to_string().contains("apiVersion: expected"), "{err}");
        let err = StepNeeds::from_text("apiVersion: stepbox.dev/v1alpha1\nkind: StepPolicy\n")
            .unwrap_err();
        assert!(
            err.to_string().contains("kind: expected \"StepNeeds\""),
            "{err}"
        );
        let big = format!("{HEAD}# {}\n", "x".repeat(MAX_DECLARATION_BYTES));
        assert!(
            StepNeeds::from_text(&big)
                .unwrap_err()
                .to_string()
                .contains("more than")
        );
    }
}
