//! Makes one kube call chosen by the input `case`, most of them calls the
//! default policy refuses, and reports what came back instead of failing:
//! outputs `outcome` ("ok" or the error kind, e.g. "forbidden") and
//! `message` (the error's message, "" for ok).

use stepbox_sdk::kube::{self, KindRef};
use stepbox_sdk::{Context, Error, Result, run};

fn run(ctx: &Context) -> Result<()> {
    let case = run::require_input("case")?;
    let outcome = match case.as_str() {
        "other-namespace" => apply(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sneaky\n  namespace: kube-system\ndata:\n  a: b\n",
        ),
        "cluster-scoped" => apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: evil\n"),
        "cluster-role" => apply(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: evil\nrules:\n  - apiGroups: [\"*\"]\n    resources: [\"*\"]\n    verbs: [\"*\"]\n",
        ),
        "crd" => apply(CRD),
        "kind-not-allowed" => apply(&format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: reader\n  namespace: {}\nrules:\n  - apiGroups: [\"\"]\n    resources: [\"configmaps\"]\n    verbs: [\"get\", \"list\"]\n",
            ctx.namespace
        )),
        "multi-doc-one-bad" => {
            let outcome = apply(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  x: \"1\"\n\
                 ---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  namespace: other\ndata:\n  x: \"2\"\n\
                 ---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  x: \"3\"\n",
            );
            let a_exists = match kube::raw::get(&KindRef::new("v1", "ConfigMap"), "a") {
                Ok(_) => "true",
                Err(e) if e.is_not_found() => "false",
                Err(e) => e.kind(),
            };
            run::set_output("a-exists", a_exists)?;
            outcome
        }
        "get-missing" => kube::raw::get(&KindRef::new("v1", "ConfigMap"), "nope").map(drop),
        "bad-yaml" => apply("kind: [unclosed"),
        "delete-forbidden" => kube::raw::delete(
            &KindRef::new("rbac.authorization.k8s.io/v1", "ClusterRole"),
            "admin",
        )
        .map(drop),
        other => return Err(Error::invalid(format!("unknown case {other:?}"))),
    };
    let (kind, message) = match &outcome {
        Ok(()) => ("ok", ""),
        Err(e) => (e.kind(), e.message()),
    };
    run::set_output("outcome", kind)?;
    run::set_output("message", message)?;
    Ok(())
}

fn apply(manifests: &str) -> Result<()> {
    kube::apply(manifests).map(drop)
}

const CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
";

stepbox_sdk::step!(run);
