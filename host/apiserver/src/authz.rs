//! Authorization of a dev cluster's requests: the administrator (its token
//! or client certificate) may do everything; everyone else (the service
//! accounts whose tokens it issued, and anonymous requests to the public
//! paths) is decided by the RBAC objects stored in the cluster, evaluated
//! by [`stepbox_k8s::rbac`] on the request's attributes
//! ([`RequestAttributes`]). A refusal is the API server's `403 Forbidden`
//! Status, in its words.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use stepbox_cluster::MemoryCluster;
use stepbox_k8s::rbac::{self, Decision, RbacObjects, UserInfo};
use stepbox_k8s::request::RequestAttributes;
use stepbox_k8s::resources::{RBAC_GROUP, lookup};

use crate::auth::Identity;
use crate::status::ApiError;

/// The user of requests without credentials.
fn anonymous() -> UserInfo {
    UserInfo {
        name: "system:anonymous".into(),
        groups: vec!["system:unauthenticated".into()],
    }
}

/// The RBAC objects stored in `cluster`.
pub(crate) fn rbac_objects(cluster: &MemoryCluster) -> RbacObjects {
    let all = |kind: &str| {
        cluster
            .list_with(&lookup(&format!("{RBAC_GROUP}/v1"), kind), "", None, None)
            .items
    };
    RbacObjects {
        roles: all("Role"),
        role_bindings: all("RoleBinding"),
        cluster_roles: all("ClusterRole"),
        cluster_role_bindings: all("ClusterRoleBinding"),
    }
}

/// The decision for `identity` (`None`: anonymous) making `request`.
pub(crate) fn decide(
    cluster: &MemoryCluster,
    identity: Option<&Identity>,
    request: &RequestAttributes,
) -> Decision {
    match identity {
        Some(Identity::Admin) => Decision::Allowed(
            "stepbox dev-cluster: its token and client certificate are the cluster administrator"
                .into(),
        ),
        Some(Identity::User(user)) => rbac::authorize(&rbac_objects(cluster), user, request),
        None => rbac::authorize(&rbac_objects(cluster), &anonymous(), request),
    }
}

/// The `403 Forbidden` Status for `request` by `user`.
pub(crate) fn forbidden(user: &UserInfo, request: &RequestAttributes, reason: &str) -> ApiError {
    let message = rbac::forbidden_message(user, request, reason);
    let mut details = Map::new();
    if let RequestAttributes::Resource(r) = request {
        if let Some(name) = r.name.as_deref().filter(|n| !n.is_empty()) {
            details.insert("name".into(), json!(name));
        }
        if !r.group.is_empty() {
            details.insert("group".into(), json!(r.group));
        }
        details.insert("kind".into(), json!(r.resource));
    }
    ApiError::new(403, "Forbidden", message).with_details(Value::Object(details))
}

/// The authorization middleware of a dev cluster (after authentication).
pub(crate) async fn authorize(
    State(cluster): State<MemoryCluster>,
    req: Request,
    next: Next,
) -> Response {
    let identity = req.extensions().get::<Identity>().cloned();
    if identity == Some(Identity::Admin) {
        return next.run(req).await;
    }
    let request = crate::route::attributes(req.method(), req.uri());
    match decide(&cluster, identity.as_ref(), &request) {
        Decision::Allowed(_) => next.run(req).await,
        Decision::Denied(reason) => {
            let user = identity.map_or_else(anonymous, |i| i.user());
            tracing::debug!(user = %user.name, verb = request.verb(), "dev-cluster: forbidden");
            forbidden(&user, &request, &reason).into_response()
        }
    }
}
