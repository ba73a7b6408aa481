//! Outbound HTTP, to the destinations the run's policy allows.
//!
//! A small blocking client over `wasi:http/outgoing-handler` (the
//! [`wasip2`] bindings): build a [`Request`], [`Request::send`] it, read
//! the whole [`Response`]. The host refuses every destination its policy's
//! `outbound` allow-list does not name, with an [`Error::Forbidden`] that
//! names the list; it holds each request to the run's size and time limits
//! ([`Error::LimitExceeded`], [`Error::Timeout`]) and audits it.
//!
//! Redirects are followed here (at most [`Request::max_redirects`], 5 by
//! default), each hop a new request the host checks against the list like
//! the first, so a redirect to a destination the policy does not allow
//! fails with [`Error::Forbidden`].
//!
//! ```no_run
//! use stepbox_sdk::prelude::*;
//!
//! # fn demo() -> stepbox_sdk::Result<()> {
//! let health = http::get("https://api.example.com/health")?;
//! info!("{} {}", health.status, health.text());
//!
//! let token = run::secret("token").unwrap_or_default();
//! let hook = http::Request::post("https://hooks.example.com/deploys", br#"{"done":true}"#.to_vec())
//!     .header("content-type", "application/json")
//!     .header("authorization", format!("Bearer {token}"))
//!     .send()?;
//! if !hook.is_success() {
//!     return Err(Error::step(format!("the webhook answered {}", hook.status)));
//! }
//! # Ok(())
//! # }
//! ```

use std::io::{Read, Write};
use std::time::Duration;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};

use crate::{Error, Result};

/// Redirects followed by default.
pub const DEFAULT_MAX_REDIRECTS: u32 = 5;

/// One HTTP request to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Option<Duration>,
    max_redirects: u32,
}

/// A whole HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code (3xx only when redirects were not followed).
    pub status: u16,
    /// The headers, names in lowercase, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The URL that answered (after redirects).
    pub url: String,
}

impl Response {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// True for a 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body parsed as JSON.
    ///
    /// # Errors
    /// [`Error::Invalid`] when it is not JSON of that shape.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::invalid(format!(
                "the response of {} is not the JSON expected: {e}",
                self.url
            ))
        })
    }
}

/// `GET url`, redirects followed.
///
/// # Errors
/// As [`Request::send`].
pub fn get(url: &str) -> Result<Response> {
    Request::get(url).send()
}

/// Sends `request` ([`Request::send`]).
///
/// # Errors
/// As [`Request::send`].
pub fn request(request: Request) -> Result<Response> {
    request.send()
}

impl Request {
    /// A request of `method` (`GET`, `POST`, ...) to `url`
    /// (`http://` or `https://`).
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            method: method.into().to_ascii_uppercase(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: None,
            max_redirects: DEFAULT_MAX_REDIRECTS,
        }
    }

    /// `GET url`.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new("GET", url)
    }

    /// `POST url` with `body`.
    pub fn post(url: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Self::new("POST", url).body(body)
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Gives up on the answer after `timeout` (the host's
    /// `limits.httpTimeout` holds in any case).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Follows at most `n` redirects (0: the 3xx response is returned).
    pub fn max_redirects(mut self, n: u32) -> Self {
        self.max_redirects = n;
        self
    }

    /// Sends the request and reads the whole response, following
    /// redirects.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when the policy does not allow the destination
    /// (or one a redirect leads to), [`Error::LimitExceeded`] past the
    /// run's size limits, [`Error::Timeout`] past its time limit,
    /// [`Error::Unavailable`] when the server cannot be reached,
    /// [`Error::Invalid`] for a malformed URL or header.
    pub fn send(self) -> Result<Response> {
        let mut current = self;
        let mut redirects = 0;
        loop {
            let response = current.send_once()?;
            let location = response.header("location").map(str::to_string);
            let Some(location) =
                location.filter(|_| matches!(response.status, 301 | 302 | 303 | 307 | 308))
            else {
                return Ok(response);
            };
            if redirects >= current.max_redirects {
                return Ok(response);
            }
            redirects += 1;
            let url = resolve(&current.url, &location)?;
            if response.status == 303
                || (matches!(response.status, 301 | 302) && current.method == "POST")
            {
                current.method = "GET".into();
                current.body.clear();
            }
            current.url = url;
        }
    }

    fn send_once(&self) -> Result<Response> {
        let url = Url::parse(&self.url)?;
        let fields = Fields::new();
        for (name, value) in &self.headers {
            fields
                .append(&name.to_ascii_lowercase(), value.as_bytes())
                .map_err(|e| Error::invalid(format!("header {name:?}: {e:?}")))?;
        }
        if !self.body.is_empty() {
            let _ = fields.set(
                "content-length",
                &[self.body.len().to_string().into_bytes()],
            );
        }
        let request = OutgoingRequest::new(fields);
        let method = match self.method.as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.to_string()),
        };
        let invalid = |what: &str| Error::invalid(format!("{}: invalid {what}", self.url));
        request
            .set_method(&method)
            .map_err(|()| invalid("method"))?;
        request
            .set_scheme(Some(&if url.https {
                Scheme::Https
            } else {
                Scheme::Http
            }))
            .map_err(|()| invalid("scheme"))?;
        request
            .set_authority(Some(&url.authority))
            .map_err(|()| invalid("host"))?;
        request
            .set_path_with_query(Some(&url.path))
            .map_err(|()| invalid("path"))?;
        let body = request
            .body()
            .map_err(|()| Error::step("the request body was taken twice"))?;
        let options = self.timeout.map(|t| {
            let o = RequestOptions::new();
            let nanos = u64::try_from(t.as_nanos()).unwrap_or(u64::MAX);
            let _ = o.set_connect_timeout(Some(nanos));
            let _ = o.set_first_byte_timeout(Some(nanos));
            let _ = o.set_between_bytes_timeout(Some(nanos));
            o
        });
        let pending = outgoing_handler::handle(request, options).map_err(|e| self.error(&e))?;
        if !self.body.is_empty() {
            let mut stream = body
                .write()
                .map_err(|()| Error::step("the request body stream was taken twice"))?;
            // A write error is the host refusing the body (its size limit):
            // the response below says why.
            let _ = stream
                .write_all(&self.body)
                .and_then(|()| Write::flush(&mut stream));
            drop(stream);
        }
        let _ = OutgoingBody::finish(body, None);
        pending.subscribe().block();
        let response = match pending.get() {
            Some(Ok(Ok(r))) => r,
            Some(Ok(Err(e))) => return Err(self.error(&e)),
            Some(Err(())) | None => {
                return Err(Error::step(format!(
                    "{}: the response was read twice",
                    self.url
                )));
            }
        };
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
            .collect();
        let incoming = response
            .consume()
            .map_err(|()| Error::step("the response body was taken twice"))?;
        let mut body = Vec::new();
        {
            let mut stream = incoming
                .stream()
                .map_err(|()| Error::step("the response body stream was taken twice"))?;
            if let Err(e) = stream.read_to_end(&mut body) {
                drop(stream);
                let trailers = wasip2::http::types::IncomingBody::finish(incoming);
                trailers.subscribe().block();
                if let Some(Ok(Err(code))) = trailers.get() {
                    return Err(self.error(&code));
                }
                return Err(Error::Unavailable(format!(
                    "{}: reading the response: {e}",
                    self.url
                )));
            }
        }
        Ok(Response {
            status,
            headers,
            body,
            url: self.url.clone(),
        })
    }

    /// The SDK error for a `wasi:http` error code: the host's own refusals
    /// carry their kind in the message (`forbidden: ...`).
    fn error(&self, code: &ErrorCode) -> Error {
        if let ErrorCode::InternalError(Some(message)) = code {
            for (kind, make) in [
                ("forbidden: ", Error::Forbidden as fn(String) -> Error),
                ("limit-exceeded: ", Error::LimitExceeded),
                ("timeout: ", Error::Timeout),
                ("unavailable: ", Error::Unavailable),
                ("invalid: ", Error::Invalid),
            ] {
                if let Some(rest) = message.strip_prefix(kind) {
                    return make(rest.to_string());
                }
            }
        }
        let what = format!("{} {}", self.method, self.url);
        match code {
            ErrorCode::HttpResponseBodySize(limit) | ErrorCode::HttpRequestBodySize(limit) => {
                Error::LimitExceeded(format!(
                    "{what}: the body is larger than the run allows ({} bytes)",
                    limit.map_or_else(|| "?".into(), |l| l.to_string())
                ))
            }
            ErrorCode::HttpResponseTimeout
            | ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::ConnectionWriteTimeout => {
                Error::Timeout(format!("{what}: no complete answer in time ({code:?})"))
            }
            other => Error::Unavailable(format!("{what}: {other:?}")),
        }
    }
}

/// The parts of a URL a request needs.
struct Url {
    https: bool,
    authority: String,
    path: String,
}

impl Url {
    fn parse(url: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(format!(
                "{url:?} is not an http:// or https:// URL (e.g. https://api.example.com/health)"
            ))
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            _ => return Err(bad()),
        };
        let cut = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(cut);
        if authority.is_empty() {
            return Err(bad());
        }
        let path = path.split('#').next().unwrap_or("");
        let path = if path.is_empty() || path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        Ok(Self {
            https,
            authority: authority.to_string(),
            path,
        })
    }
}

/// The URL a `Location` names, relative to `base`.
fn resolve(base: &str, location: &str) -> Result<String> {
    if location.contains("://") {
        return Ok(location.to_string());
    }
    let url = Url::parse(base)?;
    let origin = format!(
        "{}://{}",
        if url.https { "https" } else { "http" },
        url.authority
    );
    if let Some(rest) = location.strip_prefix("//") {
        return Ok(format!(
            "{}://{rest}",
            if url.https { "https" } else { "http" }
        ));
    }
    if location.starts_with('/') {
        return Ok(format!("{origin}{location}"));
    }
    let path = url.path.split('?').next().unwrap_or("/");
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    Ok(format!("{origin}{dir}{location}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_what_a_request_needs() {
        let u = Url::parse("https://api.example.com:8443/v1/x?y=1#frag").unwrap();
        assert!(u.https);
        assert_eq!(u.authority, "api.example.com:8443");
        assert_eq!(u.path, "/v1/x?y=1");
        assert_eq!(Url::parse("http://h").unwrap().path, "/");
        assert_eq!(Url::parse("http://h?q").unwrap().path, "/?q");
        for bad in ["ftp://h/", "h/x", "https:///x"] {
            let e = Url::parse(bad).err().unwrap();
            assert!(e.is_invalid(), "{bad}: {e}");
        }
    }

    #[test]
    fn redirect_locations_resolve_against_the_request() {
        let base = "http://a.example:8080/dir/page?x=1";
        assert_eq!(
            resolve(base, "https://b.example/").unwrap(),
            "https://b.example/"
        );
        assert_eq!(resolve(base, "/top").unwrap(), "http://a.example:8080/top");
        assert_eq!(
            resolve(base, "next").unwrap(),
            "http://a.example:8080/dir/next"
        );
        assert_eq!(
            resolve(base, "//c.example/z").unwrap(),
            "http://c.example/z"
        );
    }
}
