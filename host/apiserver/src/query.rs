//! The query and the negotiated format of a request: query parameters
//! ([`Query`]: dry run, selectors, field manager) and how a response
//! encodes objects ([`Format`], from the `Accept` header).

use axum::http::{HeaderMap, header};
use stepbox_cluster::LabelSelector;
use stepbox_k8s::selector::FieldSelector;

use crate::status::ApiError;
use crate::table::IncludeObject;

/// How a response encodes objects, from the request's `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Plain JSON objects and lists.
    Json,
    /// `as=Table`: server-side printing (`kubectl get`).
    Table {
        /// `meta.k8s.io/v1` or `meta.k8s.io/v1beta1`.
        api_version: &'static str,
        /// What each row carries.
        include: IncludeObject,
    },
    /// `as=PartialObjectMetadata[List]`: metadata only.
    Metadata {
        /// `meta.k8s.io/v1` or `meta.k8s.io/v1beta1`.
        api_version: &'static str,
    },
}

impl Format {
    /// The first acceptable media type of an `Accept` header wins.
    pub fn negotiate(accept: Option<&str>, include: IncludeObject) -> Self {
        for range in accept.unwrap_or_default().split(',') {
            let mut parts = range.split(';').map(str::trim);
            let mime = parts.next().unwrap_or_default();
            if !matches!(mime, "application/json" | "*/*" | "application/*") {
                continue;
            }
            let (mut as_, mut g, mut v) = ("", "", "");
            for p in parts {
                match p.split_once('=') {
                    Some(("as", x)) => as_ = x,
                    Some(("g", x)) => g = x,
                    Some(("v", x)) => v = x,
                    _ => {}
                }
            }
            let api_version = match (g, v) {
                ("meta.k8s.io", "v1") => "meta.k8s.io/v1",
                ("meta.k8s.io", "v1beta1") => "meta.k8s.io/v1beta1",
                _ if as_.is_empty() => return Self::Json,
                _ => continue,
            };
            match as_ {
                "" => return Self::Json,
                "Table" => {
                    return Self::Table {
                        api_version,
                        include,
                    };
                }
                "PartialObjectMetadata" | "PartialObjectMetadataList" => {
                    return Self::Metadata { api_version };
                }
                _ => continue,
            }
        }
        Self::Json
    }
}

/// The query parameters of one request (repeated keys: the last wins).
#[derive(Debug, Default)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub(crate) fn parse(q: Option<&str>) -> Self {
        Self(
            form_urlencoded::parse(q.unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub(crate) fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    pub(crate) fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "Invalid dry run value: {other:?}: supported values: \"All\""
            ))),
        }
    }

    pub(crate) fn labels(&self) -> Result<Option<LabelSelector>, ApiError> {
        self.get("labelSelector")
            .map(LabelSelector::parse)
            .transpose()
            .map_err(|e| ApiError::bad_request(e.to_string()))
    }

    pub(crate) fn fields(&self) -> Result<Option<FieldSelector>, ApiError> {
        self.get("fieldSelector")
            .map(FieldSelector::parse)
            .transpose()
            .map_err(|e| ApiError::bad_request(e.to_string()))
    }
}

/// The field manager of a write: `fieldManager`, else the client's
/// User-Agent up to its first `/`, as Kubernetes defaults it.
pub(crate) fn field_manager(query: &Query, headers: &HeaderMap) -> Option<String> {
    if let Some(m) = query.get("fieldManager") {
        return Some(m.chars().take(128).collect());
    }
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split('/').next())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(128).collect())
}
