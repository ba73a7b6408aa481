//! Who may talk to the dev cluster: a bearer token, or a client
//! certificate signed by the cluster's CA.
//!
//! A request is authenticated when its `Authorization: Bearer` token is the
//! cluster's token, or when its TLS connection presented a client
//! certificate (rustls already verified it against the CA). A wrong token
//! is `401 Unauthorized` even where anonymous access is allowed, as in
//! Kubernetes; without any credentials only the health endpoints and
//! `/version` answer.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use std::sync::Arc;

use crate::status::ApiError;

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

/// Paths anyone may read, as Kubernetes' `system:public-info-viewer` role
/// allows.
const PUBLIC: &[&str] = &["/healthz", "/livez", "/readyz", "/version"];

/// Compares in time independent of where the strings differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The authentication middleware.
pub async fn authenticate(State(token): State<Arc<str>>, req: Request, next: Next) -> Response {
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
    let allowed = match bearer {
        Some(t) => same(t.as_bytes(), token.as_bytes()),
        None => by_cert || PUBLIC.contains(&req.uri().path()),
    };
    if !allowed {
        tracing::debug!(path = %req.uri().path(), "dev-cluster: unauthorized request");
        return ApiError::unauthorized().into_response();
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
