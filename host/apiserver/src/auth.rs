//! Who may talk to the dev cluster: a bearer token, or a client
//! certificate signed by the cluster's CA.
//!
//! A request is authenticated when its `Authorization: Bearer` token is the
//! cluster's token or when its TLS connection presented a client
//! certificate (rustls already verified it against the CA): both are the
//! cluster's administrator ([`Identity::Admin`], allowed everything). A dev
//! cluster also takes the service-account tokens it issued
//! ([`crate::tokens`]): those are [`Identity::User`], authorized by RBAC
//! (`authz`). A wrong token is `401 Unauthorized` even where anonymous
//! access is allowed, as in Kubernetes; without any credentials only the
//! health endpoints and `/version` answer.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use stepbox_k8s::rbac::{AUTHENTICATED_GROUP, UserInfo};

use std::sync::Arc;

use crate::status::ApiError;
use crate::tokens::ServiceAccountTokens;

/// How a kubeconfig authenticates to the dev cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Auth {
    /// `Authorization: Bearer <token>` (the default).
    #[default]
    Token,
    /// The client certificate signed by the cluster's CA.
    ClientCert,
}

/// Marks a request whose connection presented a client certificate the CA
/// signed (set per connection by the server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientCertificate;

/// Who made a request (a request extension set by [`authenticate`]; absent
/// for anonymous requests to the public paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Identity {
    /// The cluster's token or client certificate: allowed everything.
    Admin,
    /// A service account, by a token the cluster issued.
    User(UserInfo),
}

impl Identity {
    /// The user as RBAC and reviews name it.
    pub(crate) fn user(&self) -> UserInfo {
        match self {
            Self::Admin => UserInfo {
                name: "stepbox:admin".into(),
                groups: vec!["system:masters".into(), AUTHENTICATED_GROUP.into()],
            },
            Self::User(u) => u.clone(),
        }
    }
}

/// The credentials a server accepts.
#[derive(Debug)]
pub(crate) struct Authenticator {
    /// The administrator's token.
    pub(crate) token: String,
    /// The service-account tokens it issued (dev clusters only).
    pub(crate) service_accounts: Option<Arc<ServiceAccountTokens>>,
}

/// Paths anyone may read, as Kubernetes' `system:public-info-viewer` role
/// allows.
const PUBLIC: &[&str] = &["/healthz", "/livez", "/readyz", "/version"];

/// Compares in time independent of where the strings differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The authentication middleware: sets the request's [`Identity`].
pub(crate) async fn authenticate(
    State(authn): State<Arc<Authenticator>>,
    mut req: Request,
    next: Next,
) -> Response {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_string())
        });
    let by_cert = req.extensions().get::<ClientCertificate>().is_some();
    let identity = match &bearer {
        Some(t) if same(t.as_bytes(), authn.token.as_bytes()) => Some(Identity::Admin),
        Some(t) => authn
            .service_accounts
            .as_ref()
            .and_then(|sa| sa.authenticate(t))
            .map(Identity::User),
        None if by_cert => Some(Identity::Admin),
        None => None,
    };
    match identity {
        Some(identity) => {
            req.extensions_mut().insert(identity);
        }
        None if bearer.is_none() && PUBLIC.contains(&req.uri().path()) => {}
        None => {
            tracing::debug!(path = %req.uri().path(), "dev-cluster: unauthorized request");
            return ApiError::unauthorized().into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_tokens() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
    }
}
