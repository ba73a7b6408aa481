//! Kubeconfigs for helm on a live cluster ([`HelmCluster::Kubeconfig`]).
//!
//! The host writes helm a kubeconfig of its own in a private directory, so
//! a kubeconfig read from elsewhere is made self-contained first: the
//! context to use becomes `current-context`, and relative file paths
//! (`certificate-authority`, `client-certificate`, `client-key`,
//! `tokenFile`, a relative exec `command`) are resolved against the
//! directory of the file they came from. Inside a pod the kubeconfig points
//! at the service account's token file (which the kubelet rotates and helm
//! re-reads) and CA.

use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use super::HelmCluster;

/// Why a kubeconfig for helm could not be made.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    /// The file could not be read.
    #[error("cannot read kubeconfig {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a kubeconfig.
    #[error("kubeconfig {path} is not a kubeconfig: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The context asked for is not in the file.
    #[error("kubeconfig {path} has no context {context:?} (it has: {available})")]
    NoContext {
        /// The file.
        path: PathBuf,
        /// The context asked for.
        context: String,
        /// The contexts it has.
        available: String,
    },
    /// Not inside a pod: the API server's address is not in the
    /// environment.
    #[error(
        "not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set"
    )]
    NotInCluster,
}

/// Fields of a kubeconfig's cluster and user entries that name files.
const CLUSTER_FILES: &[&str] = &["certificate-authority"];
const USER_FILES: &[&str] = &["client-certificate", "client-key", "tokenFile"];

impl HelmCluster {
    /// helm on the cluster of the kubeconfig at `path`, with `context` (or
    /// the file's current context) made current and relative paths
    /// resolved (see the [module docs](self)).
    ///
    /// # Errors
    /// [`KubeconfigError`] when the file cannot be read or parsed, or has no
    /// such context.
    pub fn from_kubeconfig_file(
        path: &Path,
        context: Option<&str>,
    ) -> Result<Self, KubeconfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| KubeconfigError::Read {
            path: path.into(),
            source,
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(HelmCluster::Kubeconfig(
            self_contained(&text, &base, context).map_err(|e| match e {
                Problem::Parse(reason) => KubeconfigError::Parse {
                    path: path.into(),
                    reason,
                },
                Problem::NoContext { context, available } => KubeconfigError::NoContext {
                    path: path.into(),
                    context,
                    available,
                },
            })?,
        ))
    }

    /// helm inside a pod: the API server from `KUBERNETES_SERVICE_HOST` and
    /// `KUBERNETES_SERVICE_PORT`, the token and CA from
    /// `service_account_dir` (usually
    /// `/var/run/secrets/kubernetes.io/serviceaccount`).
    ///
    /// # Errors
    /// [`KubeconfigError::NotInCluster`] outside a pod.
    pub fn in_cluster(service_account_dir: &Path) -> Result<Self, KubeconfigError> {
        let host = std::env::var("KUBERNETES_SERVICE_HOST")
            .ok()
            .filter(|h| !h.is_empty());
        let port = std::env::var("KUBERNETES_SERVICE_PORT")
            .ok()
            .filter(|p| !p.is_empty());
        let (Some(host), Some(port)) = (host, port) else {
            return Err(KubeconfigError::NotInCluster);
        };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        Ok(HelmCluster::Kubeconfig(in_cluster_kubeconfig(
            &format!("https://{host}:{port}"),
            service_account_dir,
        )))
    }
}

/// A kubeconfig for `server` authenticating with the service account
/// token file in `dir`, trusting its `ca.crt`.
pub(crate) fn in_cluster_kubeconfig(server: &str, dir: &Path) -> String {
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "in-cluster", "cluster": {
            "server": server,
            "certificate-authority": dir.join("ca.crt"),
        }}],
        "users": [{"name": "service-account", "user": {"tokenFile": dir.join("token")}}],
        "contexts": [{"name": "in-cluster", "context": {"cluster": "in-cluster", "user": "service-account"}}],
        "current-context": "in-cluster",
    });
    serde_yaml_ng::to_string(&config).unwrap_or_default()
}

enum Problem {
    Parse(String),
    NoContext { context: String, available: String },
}

/// The kubeconfig `text` (from a file in `base`) with `context` current and
/// relative file paths made absolute.
fn self_contained(text: &str, base: &Path, context: Option<&str>) -> Result<String, Problem> {
    let mut doc: Value =
        serde_yaml_ng::from_str(text).map_err(|e| Problem::Parse(e.to_string()))?;
    let top = doc
        .as_mapping_mut()
        .ok_or_else(|| Problem::Parse("the top level is not a mapping".into()))?;
    if let Some(context) = context {
        let names: Vec<String> = entries(top, "contexts")
            .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
            .collect();
        if !names.iter().any(|n| n == context) {
            return Err(Problem::NoContext {
                context: context.to_string(),
                available: names.join(", "),
            });
        }
        top.insert("current-context".into(), context.into());
    }
    for (list, inner, fields) in [
        ("clusters", "cluster", CLUSTER_FILES),
        ("users", "user", USER_FILES),
    ] {
        if let Some(items) = top.get_mut(list).and_then(Value::as_sequence_mut) {
            for item in items {
                if let Some(entry) = item.get_mut(inner).and_then(Value::as_mapping_mut) {
                    absolutize(entry, fields, base);
                    if let Some(exec) = entry.get_mut("exec").and_then(Value::as_mapping_mut) {
                        absolutize_command(exec, base);
                    }
                }
            }
        }
    }
    serde_yaml_ng::to_string(&doc).map_err(|e| Problem::Parse(e.to_string()))
}

fn entries<'a>(top: &'a Mapping, list: &str) -> impl Iterator<Item = &'a Value> {
    top.get(list)
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
}

fn absolutize(entry: &mut Mapping, fields: &[&str], base: &Path) {
    for field in fields {
        if let Some(Value::String(p)) = entry.get_mut(*field)
            && !p.is_empty()
            && Path::new(p.as_str()).is_relative()
        {
            *p = base.join(p.as_str()).to_string_lossy().into_owned();
        }
    }
}

/// An exec plugin's `command` with a directory part (`./bin/get-token`) is
/// relative to the kubeconfig; a bare name is looked up on `PATH`.
fn absolutize_command(exec: &mut Mapping, base: &Path) {
    if let Some(Value::String(cmd)) = exec.get_mut("command")
        && cmd.contains('/')
        && Path::new(cmd.as_str()).is_relative()
    {
        *cmd = base.join(cmd.as_str()).to_string_lossy().into_owned();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters:
  - name: prod
    cluster:
      server: https://prod.example:6443
      certificate-authority: certs/ca.pem
  - name: dev
    cluster:
      server: https://dev.example:6443
      certificate-authority: /etc/ssl/dev.pem
users:
  - name: ops
    user:
      client-certificate: ops.crt
      client-key: ops.key
  - name: cloud
    user:
      exec:
        apiVersion: client.authentication.k8s.io/v1
        command: ./bin/token
        args: [get]
  - name: plain
    user:
      exec:
        apiVersion: client.authentication.k8s.io/v1
        command: aws
contexts:
  - name: prod
    context: {cluster: prod, user: ops}
  - name: dev
    context: {cluster: dev, user: cloud}
current-context: prod
";

    #[test]
    fn contexts_become_current_and_paths_absolute() {
        let out = self_contained(KUBECONFIG, Path::new("/home/me/.kube"), Some("dev"))
            .ok()
            .unwrap();
        let v: Value = serde_yaml_ng::from_str(&out).unwrap();
        assert_eq!(v["current-context"], "dev");
        assert_eq!(
            v["clusters"][0]["cluster"]["certificate-authority"],
            "/home/me/.kube/certs/ca.pem"
        );
        assert_eq!(
            v["clusters"][1]["cluster"]["certificate-authority"],
            "/etc/ssl/dev.pem"
        );
        assert_eq!(
            v["users"][0]["user"]["client-key"],
            "/home/me/.kube/ops.key"
        );
        assert_eq!(
            v["users"][1]["user"]["exec"]["command"],
            "/home/me/.kube/./bin/token"
        );
        assert_eq!(v["users"][2]["user"]["exec"]["command"], "aws");
    }

    #[test]
    fn unknown_contexts_are_named() {
        match self_contained(KUBECONFIG, Path::new("/k"), Some("staging")) {
            Err(Problem::NoContext { context, available }) => {
                assert_eq!(context, "staging");
                assert_eq!(available, "prod, dev");
            }
            _ => panic!("expected NoContext"),
        }
        assert!(matches!(
            self_contained("- a\n", Path::new("/k"), None),
            Err(Problem::Parse(_))
        ));
    }

    #[test]
    fn in_cluster_uses_the_token_file() {
        let yaml = in_cluster_kubeconfig(
            "https://10.0.0.1:443",
            Path::new("/var/run/secrets/kubernetes.io/serviceaccount"),
        );
        let v: Value = serde_yaml_ng::from_str(&yaml).unwrap();
        assert_eq!(
            v["clusters"][0]["cluster"]["server"],
            "https://10.0.0.1:443"
        );
        assert_eq!(
            v["users"][0]["user"]["tokenFile"],
            "/var/run/secrets/kubernetes.io/serviceaccount/token"
        );
        assert_eq!(v["current-context"], "in-cluster");
    }

    #[test]
    fn files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, KUBECONFIG).unwrap();
        let HelmCluster::Kubeconfig(yaml) = HelmCluster::from_kubeconfig_file(&path, None).unwrap()
        else {
            panic!("a kubeconfig")
        };
        assert!(
            yaml.contains(
                &dir.path()
                    .join("certs/ca.pem")
                    .to_string_lossy()
                    .into_owned()
            ),
            "{yaml}"
        );
        let err = HelmCluster::from_kubeconfig_file(&dir.path().join("nope"), None).unwrap_err();
        assert!(matches!(err, KubeconfigError::Read { .. }), "{err}");
    }
}
