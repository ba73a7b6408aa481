//! Discovery: what the server serves, as `/version`, `/api`, `/api/v1`,
//! `/apis`, `/apis/<group>` and `/apis/<group>/<version>` describe it, plus
//! the smallest OpenAPI v3 that kubectl needs.
//!
//! The served kinds are the built-in table ([`resources::all`]) plus every
//! served version of each stored `CustomResourceDefinition`, so a CRD
//! applied through the server is usable right away.
//!
//! Both kinds of discovery are served: aggregated discovery
//! (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`, one request for
//! `/api` and one for `/apis`, what kubectl and kube-rs'
//! `Discovery::run_aggregated` ask for first), and the legacy documents
//! for clients that ask for plain `application/json`.
//!
//! # OpenAPI
//!
//! kubectl 1.33 uses OpenAPI v3 for two things here:
//! - **field validation**: if the PATCH operation of a kind lists the
//!   `fieldValidation` query parameter, kubectl leaves validation to the
//!   server (`fieldValidation=Strict`) instead of validating against schemas
//!   it would otherwise download from `/openapi/v2`;
//! - **strategic merge patches**: it computes them from OpenAPI schemas
//!   when the PATCH operation accepts `application/strategic-merge-patch+json`,
//!   else from the Go types compiled into kubectl.
//!
//! So each group-version document lists, per kind, a PATCH operation with
//! its group-version-kind, the `fieldValidation` parameter and the request
//! types `application/json-patch+json`, `application/merge-patch+json` and
//! `application/apply-patch+yaml`. kubectl then computes strategic merge
//! patches from its built-in types (merge patches for custom resources),
//! and `kubectl apply -f` works without `--validate=false`. `/openapi/v2`
//! answers 404, which kubectl tolerates.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use stepbox_cluster::MemoryCluster;
use stepbox_k8s::resources::{self, ResourceInfo};

/// The Kubernetes version the server claims (kubectl warns about clients
/// more than one minor version away).
pub const KUBE_MINOR: &str = "33";

/// One served resource: the kind plus what discovery says about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServedResource {
    /// Group, version, kind, plural and scope.
    pub info: ResourceInfo,
    /// The singular name (`deployment`).
    pub singular: String,
    /// kubectl short names (`deploy`).
    pub short_names: Vec<String>,
    /// Categories (`all` for the workload kinds `kubectl get all` lists).
    pub categories: Vec<String>,
    /// True when it has a `status` subresource.
    pub status: bool,
}

const ALL_CATEGORY: &[(&str, &str)] = &[
    ("", "pods"),
    ("", "services"),
    ("", "replicationcontrollers"),
    ("apps", "deployments"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("apps", "replicasets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
    ("autoscaling", "horizontalpodautoscalers"),
];

use stepbox_k8s::resources::CRD_GROUP;

/// Everything served: built-in kinds, then custom resources, preferred
/// versions first within a group.
pub fn served(cluster: &MemoryCluster) -> Vec<ServedResource> {
    let mut out: Vec<ServedResource> = resources::builtin()
        .iter()
        .map(|r| ServedResource {
            info: r.info(),
            singular: r.kind.to_lowercase(),
            short_names: r.short_names.iter().map(|s| (*s).to_string()).collect(),
            categories: if ALL_CATEGORY.contains(&(r.group, r.plural)) {
                vec!["all".to_string()]
            } else {
                Vec::new()
            },
            status: cluster.has_status_subresource(&r.info()),
        })
        .collect();
    let crd_res = resources::lookup("apiextensions.k8s.io/v1", "CustomResourceDefinition");
    for crd in cluster.list_with(&crd_res, "", None, None).items {
        out.extend(crd_resources(&crd));
    }
    out
}

/// The resources one CRD serves, storage version first.
fn crd_resources(crd: &Value) -> Vec<ServedResource> {
    let s = |p: &str| {
        crd.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (group, kind, plural) = (
        s("/spec/group"),
        s("/spec/names/kind"),
        s("/spec/names/plural"),
    );
    if group.is_empty() || kind.is_empty() || plural.is_empty() || group == CRD_GROUP {
        return Vec::new();
    }
    let singular = Some(s("/spec/names/singular"))
        .filter(|x| !x.is_empty())
        .unwrap_or_else(|| kind.to_lowercase());
    let strings = |p: &str| -> Vec<String> {
        crd.pointer(p)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let namespaced = s("/spec/scope") != "Cluster";
    let mut versions: Vec<&Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(true))
                .collect()
        })
        .unwrap_or_default();
    versions.sort_by_key(|v| v.get("storage").and_then(Value::as_bool) != Some(true));
    versions
        .iter()
        .filter_map(|v| Some((v.get("name").and_then(Value::as_str)?, v)))
        .map(|(version, v)| ServedResource {
            info: ResourceInfo::new(&group, version, &kind, &plural, namespaced),
            singular: singular.clone(),
            short_names: strings("/spec/names/shortNames"),
            categories: strings("/spec/names/categories"),
            status: v
                .pointer("/subresources/status")
                .is_some_and(|s| !s.is_null()),
        })
        .collect()
}

/// The served resource at `(group, version, plural)`.
pub fn find(
    cluster: &MemoryCluster,
    group: &str,
    version: &str,
    plural: &str,
) -> Option<ResourceInfo> {
    if let Some(r) = resources::by_plural_version(group, version, plural) {
        return Some(r);
    }
    served(cluster)
        .into_iter()
        .map(|s| s.info)
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The API groups (not core) with their versions, preferred first, in
/// first-seen order.
pub fn groups(served: &[ServedResource]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for s in served.iter().filter(|s| !s.info.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == s.info.group) {
            Some((_, versions)) => {
                if !versions.contains(&s.info.version) {
                    versions.push(s.info.version.clone());
                }
            }
            None => out.push((s.info.group.clone(), vec![s.info.version.clone()])),
        }
    }
    out
}

/// `GET /version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": KUBE_MINOR,
        "emulationMajor": "1",
        "emulationMinor": KUBE_MINOR,
        "gitVersion": format!("v1.{KUBE_MINOR}.0+stepbox-{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "none (stepbox dev-cluster)",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    })
}

/// `GET /api`.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_json(group: &str, versions: &[String]) -> Value {
    let gv = |v: &String| json!({"groupVersion": format!("{group}/{v}"), "version": v});
    json!({
        "name": group,
        "versions": versions.iter().map(gv).collect::<Vec<_>>(),
        "preferredVersion": versions.first().map(gv).unwrap_or(Value::Null),
    })
}

/// `GET /apis`.
pub fn group_list(served: &[ServedResource]) -> Value {
    let groups: Vec<Value> = groups(served)
        .iter()
        .map(|(g, vs)| group_json(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/<group>`; `None` for a group not served.
pub fn group(served: &[ServedResource], group: &str) -> Option<Value> {
    let groups = groups(served);
    let (_, versions) = groups.iter().find(|(g, _)| g == group)?;
    let mut v = group_json(group, versions);
    v["kind"] = json!("APIGroup");
    v["apiVersion"] = json!("v1");
    Some(v)
}

/// The verbs every served resource supports.
const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// `GET /api/v1` or `GET /apis/<group>/<version>`; `None` when nothing is
/// served there.
pub fn resource_list(served: &[ServedResource], group: &str, version: &str) -> Option<Value> {
    let items: Vec<Value> = served
        .iter()
        .filter(|s| s.info.group == group && s.info.version == version)
        .map(|s| {
            let mut r = json!({
                "name": s.info.plural,
                "singularName": s.singular,
                "namespaced": s.info.namespaced,
                "kind": s.info.kind,
                "verbs": VERBS,
            });
            if !s.short_names.is_empty() {
                r["shortNames"] = json!(s.short_names);
            }
            if !s.categories.is_empty() {
                r["categories"] = json!(s.categories);
            }
            r
        })
        .collect();
    let mut items = items;
    for s in served
        .iter()
        .filter(|s| s.info.group == group && s.info.version == version)
    {
        for sub in subresources(s) {
            let kind = &sub["responseKind"];
            let mut r = json!({
                "name": format!("{}/{}", s.info.plural, sub["subresource"].as_str().unwrap_or_default()),
                "singularName": "",
                "namespaced": s.info.namespaced,
                "kind": kind["kind"],
                "verbs": sub["verbs"],
            });
            if kind["group"] != json!(group) || kind["version"] != json!(version) {
                r["group"] = kind["group"].clone();
                r["version"] = kind["version"].clone();
            }
            items.push(r);
        }
    }
    if items.is_empty() {
        return None;
    }
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": resources::join_api_version(group, version),
        "resources": items,
    }))
}

/// The subresources of a served resource, as aggregated discovery lists
/// them: `status`, `scale`, and a ServiceAccount's `token`.
fn subresources(s: &ServedResource) -> Vec<Value> {
    let mut out = Vec::new();
    if s.status {
        out.push(json!({
            "subresource": "status",
            "responseKind": {"group": s.info.group, "version": s.info.version, "kind": s.info.kind},
            "verbs": ["get", "patch", "update"],
        }));
    }
    if scalable(&s.info) {
        out.push(json!({
            "subresource": "scale",
            "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
            "verbs": ["get", "patch", "update"],
        }));
    }
    if s.info.is("", "ServiceAccount") {
        out.push(json!({
            "subresource": "token",
            "responseKind": {"group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest"},
            "verbs": ["create"],
        }));
    }
    out
}

/// The kinds with a `scale` subresource.
pub fn scalable(info: &ResourceInfo) -> bool {
    matches!(
        (info.group.as_str(), info.kind.as_str()),
        ("apps", "Deployment" | "StatefulSet" | "ReplicaSet") | ("", "ReplicationController")
    )
}

/// The media type of aggregated discovery responses.
pub const AGGREGATED_MEDIA_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Aggregated discovery (`apidiscovery.k8s.io/v2`): of the core group for
/// `/api` (`core` true), of every named group for `/apis`.
pub fn aggregated(served: &[ServedResource], core: bool) -> Value {
    let groups: Vec<(String, Vec<String>)> = if core {
        vec![(String::new(), vec!["v1".to_string()])]
    } else {
        groups(served)
    };
    let items: Vec<Value> = groups
        .iter()
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|version| {
                    let resources: Vec<Value> = served
                        .iter()
                        .filter(|s| s.info.group == *group && s.info.version == *version)
                        .map(|s| {
                            let mut r = json!({
                                "resource": s.info.plural,
                                "responseKind": {"group": group, "version": version, "kind": s.info.kind},
                                "scope": if s.info.namespaced { "Namespaced" } else { "Cluster" },
                                "singularResource": s.singular,
                                "verbs": VERBS,
                            });
                            if !s.short_names.is_empty() {
                                r["shortNames"] = json!(s.short_names);
                            }
                            if !s.categories.is_empty() {
                                r["categories"] = json!(s.categories);
                            }
                            let subs = subresources(s);
                            if !subs.is_empty() {
                                r["subresources"] = json!(subs);
                            }
                            r
                        })
                        .collect();
                    json!({"version": version, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": group}, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

/// True when an `Accept` header asks for aggregated discovery before plain
/// JSON.
pub fn wants_aggregated(accept: Option<&str>) -> bool {
    for range in accept.unwrap_or_default().split(',') {
        let params: Vec<&str> = range.split(';').map(str::trim).collect();
        let has = |p: &str| params.contains(&p);
        if has("as=APIGroupDiscoveryList") && has("g=apidiscovery.k8s.io") && has("v=v2") {
            return true;
        }
        if params
            .first()
            .is_some_and(|m| matches!(*m, "application/json" | "*/*"))
            && !params.iter().any(|p| p.starts_with("as="))
        {
            return false;
        }
    }
    false
}

/// The OpenAPI v3 path of a group-version: `api/v1`, `apis/apps/v1`.
fn openapi_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn hash(doc: &Value) -> String {
    hex::encode_upper(Sha256::digest(doc.to_string().as_bytes()))
}

/// `GET /openapi/v3`: one entry per served group-version.
pub fn openapi_root(served: &[ServedResource]) -> Value {
    let mut paths = serde_json::Map::new();
    let mut gvs: Vec<(String, String)> = vec![(String::new(), "v1".to_string())];
    for (g, vs) in groups(served) {
        gvs.extend(vs.into_iter().map(|v| (g.clone(), v)));
    }
    for (g, v) in gvs {
        if let Some(doc) = openapi_group_version(served, &openapi_path(&g, &v)) {
            paths.insert(
                openapi_path(&g, &v),
                json!({"serverRelativeURL": format!("/openapi/v3/{}?hash={}", openapi_path(&g, &v), hash(&doc))}),
            );
        }
    }
    json!({"paths": paths})
}

/// `GET /openapi/v3/<path>` for `api/v1` or `apis/<group>/<version>`;
/// `None` when nothing is served there.
pub fn openapi_group_version(served: &[ServedResource], path: &str) -> Option<Value> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version) = match parts.as_slice() {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => return None,
    };
    let mut paths = serde_json::Map::new();
    let query = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}});
    let body = json!({"schema": {"type": "object"}});
    for s in served
        .iter()
        .filter(|s| s.info.group == group && s.info.version == version)
    {
        let prefix = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        let (url, mut params): (String, Vec<Value>) = if s.info.namespaced {
            (
                format!(
                    "{prefix}/namespaces/{{namespace}}/{}/{{name}}",
                    s.info.plural
                ),
                vec![
                    json!({"name": "namespace", "in": "path", "required": true, "schema": {"type": "string"}}),
                ],
            )
        } else {
            (format!("{prefix}/{}/{{name}}", s.info.plural), Vec::new())
        };
        params.push(
            json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}),
        );
        params.extend(
            [
                "dryRun",
                "fieldManager",
                "fieldValidation",
                "force",
                "pretty",
            ]
            .map(query),
        );
        let gvk = json!({"group": group, "version": version, "kind": s.info.kind});
        // kubectl looks for `fieldValidation` among the parameters of the
        // PATCH operation itself, not the path's.
        let op = |action: &str, verb: &str| {
            json!({
                "operationId": format!("{verb}{}", s.info.kind),
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
            })
        };
        let mut patch = op("patch", "patch");
        patch["requestBody"] = json!({"content": {
            "application/json-patch+json": body,
            "application/merge-patch+json": body,
            "application/apply-patch+yaml": body,
        }});
        let mut put = op("put", "replace");
        put["requestBody"] = json!({"content": {"application/json": body}});
        paths.insert(
            url,
            json!({
                "get": op("get", "read"),
                "put": put,
                "patch": patch,
                "delete": op("delete", "delete"),
            }),
        );
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (stepbox dev-cluster)", "version": format!("v1.{KUBE_MINOR}.0")},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_discovery() {
        let c = MemoryCluster::new();
        let s = served(&c);
        let core = resource_list(&s, "", "v1").unwrap();
        let pods = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "pods")
            .unwrap();
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        let gl = group_list(&s);
        let autoscaling = gl["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == "autoscaling")
            .unwrap();
        assert_eq!(autoscaling["preferredVersion"]["version"], "v2");
        assert_eq!(group(&s, "apps").unwrap()["kind"], "APIGroup");
        assert!(group(&s, "nope.example.com").is_none());
        assert!(resource_list(&s, "apps", "v9").is_none());
        assert_eq!(
            find(&c, "apps", "v1", "deployments").unwrap().kind,
            "Deployment"
        );
        assert!(find(&c, "apps", "v2", "deployments").is_none());
    }

    #[test]
    fn aggregated_discovery() {
        let c = MemoryCluster::new();
        let s = served(&c);
        let core = aggregated(&s, true);
        assert_eq!(core["items"].as_array().unwrap().len(), 1);
        assert_eq!(core["items"][0]["metadata"]["name"], "");
        let apis = aggregated(&s, false);
        let apps = apis["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["metadata"]["name"] == "apps")
            .unwrap();
        let deploy = apps["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "deployments")
            .unwrap();
        assert_eq!(deploy["scope"], "Namespaced");
        assert_eq!(deploy["subresources"][0]["subresource"], "status");
        assert_eq!(deploy["subresources"][1]["subresource"], "scale");
        let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert!(wants_aggregated(Some(kubectl)));
        assert!(!wants_aggregated(Some("application/json, */*")));
        assert!(!wants_aggregated(None));
    }

    #[test]
    fn crds_are_served() {
        let c = MemoryCluster::new();
        c.seed_yaml(
            r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, shortNames: [wg]}
  versions: [{name: v1beta1, served: true, storage: false}, {name: v1, served: true, storage: true, subresources: {status: {}}}]
"#,
            "default",
        )
        .unwrap();
        let s = served(&c);
        let g = group(&s, "example.com").unwrap();
        assert_eq!(g["preferredVersion"]["version"], "v1");
        assert_eq!(
            find(&c, "example.com", "v1beta1", "widgets").unwrap().kind,
            "Widget"
        );
        let names = |version: &str| -> Vec<String> {
            resource_list(&s, "example.com", version).unwrap()["resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["name"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(names("v1"), ["widgets", "widgets/status"]);
        assert_eq!(names("v1beta1"), ["widgets"]);
        let core = resource_list(&s, "", "v1").unwrap();
        let token = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "serviceaccounts/token")
            .unwrap();
        assert_eq!(
            (token["group"].as_str(), token["kind"].as_str()),
            (Some("authentication.k8s.io"), Some("TokenRequest"))
        );
        let doc = openapi_group_version(&s, "apis/example.com/v1").unwrap();
        assert!(
            doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"]
                .is_object()
        );
    }

    #[test]
    fn openapi_lists_field_validation() {
        let c = MemoryCluster::new();
        let s = served(&c);
        let root = openapi_root(&s);
        assert!(
            root["paths"]["apis/apps/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/apis/apps/v1?hash=")
        );
        let doc = openapi_group_version(&s, "api/v1").unwrap();
        let ns = &doc["paths"]["/api/v1/namespaces/{name}"];
        assert_eq!(
            ns["patch"]["x-kubernetes-group-version-kind"]["kind"],
            "Namespace"
        );
        assert!(
            ns["patch"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        assert!(
            ns["patch"]["requestBody"]["content"]
                .get("application/strategic-merge-patch+json")
                .is_none()
        );
        assert!(openapi_group_version(&s, "apis/apps").is_none());
    }
}
