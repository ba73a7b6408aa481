//! Registry credentials from the docker config file, as `docker login`
//! writes it: `--registry-config FILE`, else `$DOCKER_CONFIG/config.json`,
//! else `~/.docker/config.json`.
//!
//! ```json
//! {"auths": {"127.0.0.1:5000": {"auth": "base64(user:password)"},
//!            "registry.example": {"username": "u", "password": "p"},
//!            "other.example": {"registrytoken": "<bearer token>"}}}
//! ```
//!
//! A registry asking for a bearer token gets one from its token service
//! with these credentials (the client does the exchange). Credential
//! helpers (`credsStore`, `credHelpers`) are run as docker runs them:
//! `docker-credential-NAME get` with the registry on stdin.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

use crate::{Error, Result};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
    registrytoken: Option<String>,
}

/// Where credentials come from.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// The docker config file; `None`: the default places.
    pub config: Option<PathBuf>,
}

/// The config file docker would read.
pub fn default_config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => dirs::home_dir().map(|h| h.join(".docker/config.json")),
    }
}

/// The key docker files a registry under: host and port, Docker Hub's
/// historical URL for its aliases.
fn normalize(key: &str) -> String {
    let key = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = key.split('/').next().unwrap_or(key);
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        other => other.to_string(),
    }
}

impl Credentials {
    /// The credentials for `registry` (`HOST[:PORT]`): anonymous when the
    /// config has none (or there is no config file).
    ///
    /// # Errors
    /// [`Error::Local`] for a config file that cannot be read or parsed,
    /// or an entry stepbox cannot use (an identity token), naming the file.
    pub fn for_registry(&self, registry: &str) -> Result<RegistryAuth> {
        let (path, explicit) = match &self.config {
            Some(p) => (p.clone(), true),
            None => match default_config_path() {
                Some(p) => (p, false),
                None => return Ok(RegistryAuth::Anonymous),
            },
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(RegistryAuth::Anonymous);
            }
            Err(e) => return Err(local(&path, format!("cannot read the docker config: {e}"))),
        };
        let config: ConfigFile = serde_json::from_str(&text)
            .map_err(|e| local(&path, format!("not a docker config file: {e}")))?;
        let wanted = normalize(registry);
        if let Some(helper) = config
            .cred_helpers
            .iter()
            .find(|(k, _)| normalize(k) == wanted)
            .map(|(_, v)| v)
            .or(config.creds_store.as_ref())
        {
            return from_helper(helper, registry, &path);
        }
        let Some(entry) = config
            .auths
            .iter()
            .find(|(k, _)| normalize(k) == wanted)
            .map(|(_, v)| v)
        else {
            return Ok(RegistryAuth::Anonymous);
        };
        entry_auth(entry, registry, &path)
    }
}

fn local(path: &Path, detail: String) -> Error {
    Error::Local {
        path: path.display().to_string(),
        detail,
    }
}

fn entry_auth(entry: &AuthEntry, registry: &str, path: &Path) -> Result<RegistryAuth> {
    if let Some(token) = &entry.registrytoken {
        return Ok(RegistryAuth::Bearer(token.clone()));
    }
    if entry.identitytoken.is_some() {
        return Err(local(
            path,
            format!(
                "the entry for {registry} holds an identity token, which stepbox cannot exchange; log in with a user name and password (or a registry token)"
            ),
        ));
    }
    if let (Some(user), Some(password)) = (&entry.username, &entry.password) {
        return Ok(RegistryAuth::Basic(user.clone(), password.clone()));
    }
    if let Some(auth) = &entry.auth {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                local(
                    path,
                    format!("the auth of {registry} is not base64 of user:password"),
                )
            })?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or_else(|| local(path, format!("the auth of {registry} is not user:password")))?;
        return Ok(RegistryAuth::Basic(user.to_string(), password.to_string()));
    }
    Ok(RegistryAuth::Anonymous)
}

/// Runs `docker-credential-HELPER get`.
fn from_helper(helper: &str, registry: &str, path: &Path) -> Result<RegistryAuth> {
    use std::io::Write;
    let program = format!("docker-credential-{helper}");
    let mut child = std::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| {
            local(
                path,
                format!("names credential helper {program}, which cannot run: {e}"),
            )
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(registry.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| local(path, format!("{program} failed: {e}")))?;
    if !out.status.success() {
        // "credentials not found" is anonymous, as docker treats it.
        return Ok(RegistryAuth::Anonymous);
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        username: String,
        secret: String,
    }
    let answer: Answer = serde_json::from_slice(&out.stdout).map_err(|e| {
        local(
            path,
            format!("{program} answered something else than credentials: {e}"),
        )
    })?;
    if answer.username == "<token>" {
        return Err(local(
            path,
            format!(
                "{program} gave an identity token for {registry}, which stepbox cannot exchange"
            ),
        ));
    }
    Ok(RegistryAuth::Basic(answer.username, answer.secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(json: &str) -> (tempfile::TempDir, Credentials) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, json).unwrap();
        (dir, Credentials { config: Some(path) })
    }

    #[test]
    fn entries_become_auth() {
        let (_d, c) = creds(
            r#"{"auths": {"127.0.0.1:5000": {"auth": "YWxpY2U6d29uZGVybGFuZA=="},
                          "https://reg.example/v2/": {"username": "u", "password": "p"},
                          "tok.example": {"registrytoken": "t"},
                          "id.example": {"identitytoken": "x"}}}"#,
        );
        assert_eq!(
            c.for_registry("127.0.0.1:5000").unwrap(),
            RegistryAuth::Basic("alice".into(), "wonderland".into())
        );
        assert_eq!(
            c.for_registry("reg.example").unwrap(),
            RegistryAuth::Basic("u".into(), "p".into())
        );
        assert_eq!(
            c.for_registry("tok.example").unwrap(),
            RegistryAuth::Bearer("t".into())
        );
        assert_eq!(
            c.for_registry("other.example").unwrap(),
            RegistryAuth::Anonymous
        );
        let err = c.for_registry("id.example").unwrap_err().to_string();
        assert!(
            err.contains("identity token") && err.contains("config.json"),
            "{err}"
        );
    }

    #[test]
    fn a_broken_file_is_named() {
        let (_d, c) = creds("{nope");
        let err = c.for_registry("x.example").unwrap_err().to_string();
        assert!(
            err.contains("config.json") && err.contains("not a docker config"),
            "{err}"
        );
        let missing = Credentials {
            config: Some("/nonexistent/config.json".into()),
        };
        assert!(
            missing.for_registry("x.example").is_err(),
            "an explicit file must exist"
        );
    }
}
