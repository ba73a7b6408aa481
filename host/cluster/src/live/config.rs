//! Where a live run's credentials come from: a kubeconfig (and context),
//! or a pod's service account, resolved into a kube `Config`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::Config;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// The standard mount of a pod's service account.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Where the credentials of a live run come from.
#[derive(Debug, Clone, Default)]
pub enum LiveConfig {
    /// `$KUBECONFIG` / `~/.kube/config`, else in-cluster (kube's inference).
    #[default]
    Infer,
    /// A kubeconfig file, optionally with a context.
    Kubeconfig {
        /// The file; `None` means `$KUBECONFIG` / `~/.kube/config`.
        path: Option<PathBuf>,
        /// The context; `None` means the current context.
        context: Option<String>,
    },
    /// A pod's service account: token, CA and namespace files in `dir`
    /// (normally [`SERVICE_ACCOUNT_DIR`]), the API server from
    /// `KUBERNETES_SERVICE_HOST` / `KUBERNETES_SERVICE_PORT`.
    InCluster {
        /// The service account directory.
        dir: PathBuf,
    },
}

/// Errors building a client. Each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The kubeconfig could not be read or used.
    #[error("kubeconfig {path}: {reason}")]
    Kubeconfig {
        /// The file (or "default" for $KUBECONFIG / ~/.kube/config).
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// In-cluster credentials are missing or unreadable.
    #[error("in-cluster credentials: {0}")]
    InCluster(String),
    /// The client could not be built (TLS settings, proxy, ...).
    #[error("cannot build a Kubernetes client: {0}")]
    Client(String),
}

impl LiveConfig {
    /// Resolves the configuration into a kube `Config`.
    pub async fn load(&self) -> std::result::Result<Config, ConnectError> {
        let mut config = match self {
            LiveConfig::Infer => Config::infer()
                .await
                .map_err(|e| ConnectError::Kubeconfig {
                    path: "default".into(),
                    reason: format!("{e} (pass --kubeconfig FILE, or --in-cluster inside a pod)"),
                })?,
            LiveConfig::Kubeconfig { path, context } => {
                let options = KubeConfigOptions {
                    context: context.clone(),
                    ..Default::default()
                };
                match path {
                    Some(p) => {
                        let kc =
                            Kubeconfig::read_from(p).map_err(|e| ConnectError::Kubeconfig {
                                path: p.display().to_string(),
                                reason: format!("{e}"),
                            })?;
                        Config::from_custom_kubeconfig(kc, &options)
                            .await
                            .map_err(|e| ConnectError::Kubeconfig {
                                path: p.display().to_string(),
                                reason: kubeconfig_hint(&e.to_string()),
                            })?
                    }
                    None => Config::from_kubeconfig(&options).await.map_err(|e| {
                        ConnectError::Kubeconfig {
                            path: "default ($KUBECONFIG or ~/.kube/config)".into(),
                            reason: kubeconfig_hint(&e.to_string()),
                        }
                    })?,
                }
            }
            LiveConfig::InCluster { dir } => in_cluster(dir)?,
        };
        // Retries are ours: reads only (kube's layer would also repeat writes).
        config.default_retry = false;
        config
            .connect_timeout
            .get_or_insert(Duration::from_secs(10));
        Ok(config)
    }
}

fn kubeconfig_hint(reason: &str) -> String {
    if reason.contains("context") {
        format!("{reason} (list contexts with `kubectl config get-contexts`)")
    } else {
        reason.to_string()
    }
}

/// Builds an in-cluster config from a service account directory, the way
/// client-go does, but with the directory as a parameter so it can be
/// pointed elsewhere (tests, sidecars).
fn in_cluster(dir: &Path) -> std::result::Result<Config, ConnectError> {
    let host = std::env::var("KUBERNETES_SERVICE_HOST").map_err(|_| {
        ConnectError::InCluster(
            "KUBERNETES_SERVICE_HOST is not set: --in-cluster only works inside a pod".into(),
        )
    })?;
    let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host
    };
    let url: http::Uri = format!("https://{host}:{port}")
        .parse()
        .map_err(|e| ConnectError::InCluster(format!("bad KUBERNETES_SERVICE_HOST/PORT: {e}")))?;
    let token_file = dir.join("token");
    let ca_file = dir.join("ca.crt");
    let ns_file = dir.join("namespace");
    let read = |p: &Path| {
        std::fs::read(p)
            .map_err(|e| ConnectError::InCluster(format!("cannot read {}: {e}", p.display())))
    };
    read(&token_file)?;
    let ca = pem_certs(&read(&ca_file)?)
        .map_err(|e| ConnectError::InCluster(format!("{}: {e}", ca_file.display())))?;
    let namespace = std::fs::read_to_string(&ns_file)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "default".into());
    let mut config = Config::new(url);
    config.default_namespace = namespace;
    config.root_cert = Some(ca);
    config.root_cert_file = Some(ca_file);
    // kube re-reads a token file periodically, so rotated tokens are used.
    config.auth_info.token_file = Some(token_file.display().to_string());
    Ok(config)
}

/// DER certificates from PEM text.
fn pem_certs(pem: &[u8]) -> std::result::Result<Vec<Vec<u8>>, String> {
    use base64::Engine;
    let text = std::str::from_utf8(pem).map_err(|_| "the CA file is not PEM text".to_string())?;
    let mut certs = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            current = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            let b64 = current.take().ok_or("END without BEGIN")?;
            certs.push(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| e.to_string())?,
            );
        } else if let Some(c) = current.as_mut() {
            c.push_str(line);
        }
    }
    if certs.is_empty() {
        return Err("no PEM certificate found".into());
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_parsing() {
        let pem = b"-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_certs(pem).unwrap(), vec![vec![0u8, 1, 2]]);
        assert!(pem_certs(b"nothing").is_err());
    }
}
