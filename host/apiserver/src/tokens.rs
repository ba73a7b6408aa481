//! Service-account tokens: `kubectl create token SA -n NS` (a
//! `TokenRequest` to `POST /api/v1/namespaces/NS/serviceaccounts/SA/token`,
//! kube-rs' `Api::<ServiceAccount>::create_token_request`).
//!
//! A token is opaque (random, 256 bits) rather than a signed JWT: only this
//! server reads it. A request bearing one is authenticated as
//! `system:serviceaccount:NS:SA` (groups `system:serviceaccounts`,
//! `system:serviceaccounts:NS`, `system:authenticated`) and authorized by
//! the RBAC objects stored in the cluster (see `authz`). A token stops
//! working when it expires (`expirationSeconds`, default one hour, at
//! least ten minutes, as Kubernetes requires) or when its service account
//! is deleted (or replaced by one of the same name: a token is bound to
//! the account's uid). Tokens live as long as the server.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use stepbox_cluster::MemoryCluster;
use stepbox_k8s::rbac::UserInfo;
use stepbox_k8s::resources;

use crate::body::parse_body;
use crate::status::{ApiError, json_response};

/// Validity of a token when the request does not say (Kubernetes' default).
const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;

/// The shortest validity Kubernetes grants.
const MIN_EXPIRATION_SECONDS: i64 = 600;

/// The longest validity Kubernetes grants (2^32 seconds).
const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;

#[derive(Debug, Clone)]
struct Issued {
    namespace: String,
    name: String,
    uid: String,
    expires: DateTime<Utc>,
}

/// The tokens a dev cluster issued, and who they stand for.
#[derive(Debug)]
pub(crate) struct ServiceAccountTokens {
    cluster: MemoryCluster,
    issued: Mutex<HashMap<String, Issued>>,
}

fn random_token() -> String {
    let mut s = String::with_capacity(64);
    for _ in 0..2 {
        s.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    s
}

impl ServiceAccountTokens {
    /// Tokens for the service accounts of `cluster`.
    pub(crate) fn new(cluster: MemoryCluster) -> Self {
        Self {
            cluster,
            issued: Mutex::new(HashMap::new()),
        }
    }

    fn service_account_uid(&self, namespace: &str, name: &str) -> Option<String> {
        let res = resources::lookup("v1", "ServiceAccount");
        let sa = self.cluster.get_object(&res, namespace, name)?;
        sa.pointer("/metadata/uid")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// A new token for service account `name` of `namespace`, valid for
    /// `seconds`; the token and when it expires.
    ///
    /// # Errors
    /// 404 when the service account does not exist; 422 for a validity
    /// shorter than ten minutes or longer than 2^32 seconds.
    pub(crate) fn issue(
        &self,
        namespace: &str,
        name: &str,
        seconds: Option<i64>,
    ) -> Result<(String, DateTime<Utc>, i64), ApiError> {
        let seconds = seconds.unwrap_or(DEFAULT_EXPIRATION_SECONDS);
        let invalid = |why: &str| {
            ApiError::new(
                422,
                "Invalid",
                format!(
                    "TokenRequest.authentication.k8s.io {name:?} is invalid: spec.expirationSeconds: Invalid value: \
                     {seconds}: {why}"
                ),
            )
        };
        if seconds < MIN_EXPIRATION_SECONDS {
            return Err(invalid("may not specify a duration less than 10 minutes"));
        }
        if seconds > MAX_EXPIRATION_SECONDS {
            return Err(invalid(
                "may not specify a duration larger than 2^32 seconds",
            ));
        }
        let sa = resources::lookup("v1", "ServiceAccount");
        let uid = self
            .service_account_uid(namespace, name)
            .ok_or_else(|| ApiError::not_found(&sa, name))?;
        let token = random_token();
        let expires = Utc::now() + chrono::Duration::seconds(seconds);
        let mut issued = self
            .issued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Utc::now();
        issued.retain(|_, i| i.expires > now);
        issued.insert(
            token.clone(),
            Issued {
                namespace: namespace.to_string(),
                name: name.to_string(),
                uid,
                expires,
            },
        );
        Ok((token, expires, seconds))
    }

    /// Who `token` stands for: `None` for a token this server did not
    /// issue, one expired, or one whose service account is gone.
    pub(crate) fn authenticate(&self, token: &str) -> Option<UserInfo> {
        let issued = self
            .issued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(token)
            .cloned()?;
        if issued.expires <= Utc::now() {
            return None;
        }
        let uid = self.service_account_uid(&issued.namespace, &issued.name)?;
        (uid == issued.uid).then(|| UserInfo::service_account(&issued.namespace, &issued.name))
    }
}

/// `POST .../serviceaccounts/{name}/token`: a `TokenRequest` answered with
/// a token (`201 Created`, as Kubernetes answers).
pub(crate) fn create_token(
    tokens: Option<&ServiceAccountTokens>,
    namespace: &str,
    name: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<axum::response::Response, ApiError> {
    let tokens = tokens.ok_or_else(|| {
        ApiError::method_not_allowed(&format!(
            "serviceaccounts/{name}/token: this server issues no service account tokens"
        ))
    })?;
    let request = if body.is_empty() {
        json!({})
    } else {
        parse_body(headers, body)?
    };
    let seconds = match request.pointer("/spec/expirationSeconds") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_i64().ok_or_else(|| {
            ApiError::bad_request("spec.expirationSeconds must be an integer number of seconds")
        })?),
    };
    let (token, expires, seconds) = tokens.issue(namespace, name, seconds)?;
    let audiences = request
        .pointer("/spec/audiences")
        .filter(|a| a.as_array().is_some_and(|a| !a.is_empty()))
        .cloned()
        .unwrap_or_else(|| json!(["https://kubernetes.default.svc.cluster.local"]));
    let answer = json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": null},
        "spec": {
            "audiences": audiences,
            "expirationSeconds": seconds,
            "boundObjectRef": request.pointer("/spec/boundObjectRef").cloned().unwrap_or(Value::Null),
        },
        "status": {
            "token": token,
            "expirationTimestamp": expires.to_rfc3339_opts(SecondsFormat::Secs, true),
        },
    });
    Ok(json_response(StatusCode::CREATED, &answer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepbox_cluster::memory::{DeleteOptions, WriteOptions};

    #[test]
    fn tokens_stand_for_existing_service_accounts() {
        let cluster = MemoryCluster::new();
        let tokens = ServiceAccountTokens::new(cluster.clone());
        let sa = resources::lookup("v1", "ServiceAccount");
        let err = tokens.issue("ci", "worker", None).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (404, "serviceaccounts \"worker\" not found")
        );
        let account =
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "worker"}});
        cluster
            .create(&sa, "ci", &account, &WriteOptions::default())
            .unwrap();
        let (token, expires, seconds) = tokens.issue("ci", "worker", None).unwrap();
        assert_eq!(seconds, 3600);
        assert!(expires > Utc::now() + chrono::Duration::seconds(3500));
        assert_eq!(token.len(), 64);
        let user = tokens.authenticate(&token).unwrap();
        assert_eq!(user.name, "system:serviceaccount:ci:worker");
        assert_eq!(
            user.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:ci",
                "system:authenticated"
            ]
        );
        assert!(tokens.authenticate("other").is_none());
        let err = tokens.issue("ci", "worker", Some(60)).unwrap_err();
        assert_eq!(err.code, 422);
        assert!(
            err.message
                .ends_with("may not specify a duration less than 10 minutes"),
            "{}",
            err.message
        );
        // A service account deleted, or made anew, takes its tokens along.
        cluster
            .delete_with(&sa, "ci", "worker", &DeleteOptions::default())
            .unwrap();
        assert!(tokens.authenticate(&token).is_none());
        cluster
            .create(&sa, "ci", &account, &WriteOptions::default())
            .unwrap();
        assert!(tokens.authenticate(&token).is_none());
    }
}
