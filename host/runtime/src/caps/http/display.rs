//! How an outbound request is shown in the audit and in errors: the URL
//! without credentials, and the header names with values masked. The
//! run's masker hides its secrets on top of this (the recorder masks every
//! audit line); this hides what looks like a credential even when it is
//! not one of the run's secrets.

use http::HeaderMap;

/// What replaces a hidden value.
const HIDDEN: &str = "********";

/// Header values longer than this are cut in the audit.
const MAX_VALUE_CHARS: usize = 64;

/// Headers at most listed in one audit line.
const MAX_HEADERS: usize = 16;

/// True for a header or query parameter whose value is a credential.
fn is_sensitive(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie"
    ) || [
        "token", "secret", "key", "password", "passwd", "auth", "sig",
    ]
    .iter()
    .any(|s| n.contains(s))
}

/// `uri` as the audit shows it: user information replaced, the values of
/// query parameters that look like credentials hidden.
pub(super) fn url(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("https");
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) => format!("{HIDDEN}@{host}"),
        None => authority.to_string(),
    };
    let path = uri.path();
    let query = match uri.query() {
        None => String::new(),
        Some(q) => {
            let parts: Vec<String> = q
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if is_sensitive(k) => format!("{k}={HIDDEN}"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("?{}", parts.join("&"))
        }
    };
    format!("{scheme}://{authority}{path}{query}")
}

/// The request's headers for the audit: `name: value` each, credentials
/// hidden, long values cut.
pub(super) fn headers(headers: &HeaderMap) -> String {
    let mut out: Vec<String> = headers
        .iter()
        .take(MAX_HEADERS)
        .map(|(name, value)| {
            let shown = if is_sensitive(name.as_str()) {
                HIDDEN.to_string()
            } else {
                let v = String::from_utf8_lossy(value.as_bytes());
                match v.char_indices().nth(MAX_VALUE_CHARS) {
                    Some((cut, _)) => format!("{}…", &v[..cut]),
                    None => v.into_owned(),
                }
            };
            format!("{name}: {shown}")
        })
        .collect();
    if headers.len() > MAX_HEADERS {
        out.push(format!("… {} more", headers.len() - MAX_HEADERS));
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_hidden() {
        let uri: http::Uri =
            "https://user:pw@api.example.com:8443/v1/x?page=2&access_token=abc&apiKey=k"
                .parse()
                .unwrap();
        assert_eq!(
            url(&uri),
            "https://********@api.example.com:8443/v1/x?page=2&access_token=********&apiKey=********"
        );
        let plain: http::Uri = "http://127.0.0.1:8080/health".parse().unwrap();
        assert_eq!(url(&plain), "http://127.0.0.1:8080/health");
    }

    #[test]
    fn credential_headers_are_hidden() {
        let mut h = HeaderMap::new();
        h.insert("accept", "text/plain".parse().unwrap());
        h.insert("authorization", "Bearer abc".parse().unwrap());
        h.insert("x-api-key", "k".parse().unwrap());
        h.insert("x-long", "a".repeat(100).parse().unwrap());
        let shown = headers(&h);
        assert!(shown.contains("accept: text/plain"), "{shown}");
        assert!(shown.contains("authorization: ********"), "{shown}");
        assert!(shown.contains("x-api-key: ********"), "{shown}");
        assert!(!shown.contains("Bearer"), "{shown}");
        assert!(
            shown.contains(&format!("x-long: {}…", "a".repeat(64))),
            "{shown}"
        );
    }
}
