//! Pushing and pulling artifacts: [`Distribution`] holds the registry
//! options, the credentials and the blob cache.
//!
//! Registries as they are: HTTPS with the system's roots and any CA given;
//! plain HTTP only for loopback registries (unless a CA is given) and for
//! registries named insecure; credentials from the docker config file;
//! basic auth, and bearer tokens fetched from the registry's token service
//! with those credentials.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};

use crate::artifact::{self, Artifact, Descriptor, Kind, OCI_MANIFEST};
use crate::auth::Credentials;
use crate::sign::{self, PrivateKey, PublicKey};
use crate::{BlobCache, Error, Reference, Result};

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// The docker config file with credentials (`None`: `$DOCKER_CONFIG`
    /// or `~/.docker/config.json`).
    pub config: Option<PathBuf>,
    /// Registries (`HOST` or `HOST:PORT`) reached over plain HTTP.
    pub insecure: Vec<String>,
    /// CA certificates (PEM files) to trust besides the system's. With one
    /// given, loopback registries are reached over HTTPS too.
    pub ca_files: Vec<PathBuf>,
}

/// What a pull must satisfy.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Refuse references by tag.
    pub require_digest: bool,
    /// Verify the artifact's signature with this key.
    pub verify_key: Option<PublicKey>,
    /// The largest layer accepted (checked before downloading).
    pub max_layer: u64,
}

/// An artifact in the blob cache.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The reference, pinned to its digest.
    pub reference: Reference,
    /// The manifest digest (the artifact's).
    pub digest: String,
    /// The layer's digest (a step's is the component's sha256).
    pub layer_digest: String,
    /// The layer's file (a step), or the unpacked directory (a package).
    pub path: PathBuf,
    /// The tag could not be resolved at the registry, and the digest it
    /// resolved to before was used.
    pub offline_tag: bool,
    /// Keeps the artifact's files from another process's collection
    /// (`stepbox cache prune`) while held: keep it while the run uses
    /// them.
    pub hold: crate::CacheHold,
}

/// Registries, credentials and the blob cache.
pub struct Distribution {
    options: RegistryOptions,
    credentials: Credentials,
    cache: BlobCache,
    clients: Mutex<HashMap<String, Client>>,
}

impl std::fmt::Debug for Distribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Distribution")
            .field("options", &self.options)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

fn is_loopback(registry: &str) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => registry,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Distribution {
    /// A distribution client with `options`, keeping blobs in `cache`.
    pub fn new(options: RegistryOptions, cache: BlobCache) -> Self {
        // The TLS stack's crypto: ring (an error means one is installed).
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self {
            credentials: Credentials {
                config: options.config.clone(),
            },
            options,
            cache,
            clients: Mutex::default(),
        }
    }

    /// The blob cache.
    pub fn cache(&self) -> &BlobCache {
        &self.cache
    }

    fn plain_http(&self, registry: &str) -> bool {
        let host = registry.split(':').next().unwrap_or(registry);
        self.options
            .insecure
            .iter()
            .any(|i| i == registry || i == host)
            || (is_loopback(registry) && self.options.ca_files.is_empty())
    }

    fn client(&self, r: &Reference) -> Result<Client> {
        let registry = r.registry().to_string();
        if let Some(c) = self
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&registry)
        {
            return Ok(c.clone());
        }
        let mut extra = Vec::new();
        for ca in &self.options.ca_files {
            let data = std::fs::read(ca).map_err(|e| Error::Local {
                path: ca.display().to_string(),
                detail: format!("cannot read the CA certificate: {e}"),
            })?;
            extra.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data,
            });
        }
        let config = ClientConfig {
            protocol: if self.plain_http(&registry) {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            extra_root_certificates: extra,
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(120)),
            ..ClientConfig::default()
        };
        let client = Client::try_from(config).map_err(|e| Error::Registry {
            reference: r.to_string(),
            detail: format!("cannot set up a registry client: {e}"),
        })?;
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(registry, client.clone());
        Ok(client)
    }

    fn auth(&self, r: &Reference) -> Result<RegistryAuth> {
        self.credentials.for_registry(r.registry())
    }

    /// The digest `r` names, asking the registry for a tag (and
    /// remembering the answer); with the registry gone, the digest the tag
    /// resolved to before. Refuses tags when `require_digest`.
    ///
    /// # Errors
    /// [`Error::TagNotAllowed`], or the registry's error.
    pub async fn resolve(&self, r: &Reference, require_digest: bool) -> Result<(String, bool)> {
        if let Some(d) = r.digest() {
            return Ok((d.to_string(), false));
        }
        if require_digest {
            return Err(Error::TagNotAllowed {
                reference: r.to_string(),
            });
        }
        let client = self.client(r)?;
        match client.fetch_manifest_digest(r.oci(), &self.auth(r)?).await {
            Ok(d) => {
                self.cache.remember_tag(r, &d);
                Ok((d, false))
            }
            Err(e) => {
                let e = map_error(r, e);
                match (&e, self.cache.tag(r)) {
                    (Error::Registry { .. }, Some(d)) => {
                        tracing::warn!(reference = %r, digest = %d, "the registry cannot be reached: using the digest the tag resolved to before ({e})");
                        Ok((d, true))
                    }
                    _ => Err(e),
                }
            }
        }
    }

    /// The manifest `digest` of `r`'s repository: from the cache, else the
    /// registry (checked against the digest, then cached).
    async fn manifest(&self, r: &Reference, digest: &str) -> Result<Vec<u8>> {
        if let Some(bytes) = self.cache.read(digest) {
            return Ok(bytes);
        }
        let pinned = r.with_digest(digest);
        let client = self.client(r)?;
        let (bytes, _) = client
            .pull_manifest_raw(pinned.oci(), &self.auth(r)?, &[OCI_MANIFEST])
            .await
            .map_err(|e| not_cached(r, digest, map_error(r, e)))?;
        if bytes.len() as u64 > artifact::MAX_SMALL_BLOB {
            return Err(Error::Artifact {
                reference: r.to_string(),
                detail: "the manifest is larger than 1 MiB: refused".into(),
            });
        }
        self.cache.put(r, digest, &bytes)?;
        Ok(bytes.to_vec())
    }

    /// A blob of `r`'s repository into the cache (if not there yet).
    async fn blob(&self, r: &Reference, desc: &Descriptor) -> Result<PathBuf> {
        if let Some(p) = self.cache.get(&desc.digest) {
            return Ok(p);
        }
        let client = self.client(r)?;
        // Authenticate first: a failure then says so, rather than a bare 401.
        let _ = client
            .auth(r.oci(), &self.auth(r)?, RegistryOperation::Pull)
            .await;
        let layer = oci_client::manifest::OciDescriptor {
            media_type: desc.media_type.clone(),
            digest: desc.digest.clone(),
            size: desc.size as i64,
            ..Default::default()
        };
        let sized = client
            .pull_blob_stream(r.oci(), &layer)
            .await
            .map_err(|e| not_cached(r, &desc.digest, map_error(r, e)))?;
        if sized.content_length.is_some_and(|n| n > desc.size) {
            return Err(Error::Artifact {
                reference: r.to_string(),
                detail: format!(
                    "the registry offers {} bytes for blob {}, which its manifest says is {} bytes: refused",
                    sized.content_length.unwrap_or_default(),
                    desc.digest,
                    desc.size
                ),
            });
        }
        self.cache
            .put_stream(r, &desc.digest, desc.size, sized.stream)
            .await
    }

    /// Pulls the artifact `r` names (of `kind`) into the cache, checked
    /// (media types, one layer, sizes, digests) and, with a key, verified.
    ///
    /// # Errors
    /// Each [`Error`] names the reference and what to do.
    pub async fn pull(&self, r: &Reference, kind: Kind, opts: &PullOptions) -> Result<Pulled> {
        let hold = self.cache.hold().await;
        let (digest, offline_tag) = self.resolve(r, opts.require_digest).await?;
        let bytes = self.manifest(r, &digest).await?;
        let manifest = artifact::check(r, &bytes, kind, opts.max_layer)?;
        if let Some(key) = &opts.verify_key {
            self.verify(r, &digest, key).await?;
        }
        let layer = &manifest.layers[0];
        let blob = self.blob(r, layer).await?;
        // Used now: collection removes the least recently used first.
        self.cache.touch(&digest);
        self.cache.touch(&layer.digest);
        let path = match kind {
            Kind::Step => blob,
            Kind::Package => {
                let dir = self.cache.package_dir(&layer.digest);
                if !dir.is_dir() {
                    let tar = std::fs::read(&blob).map_err(|e| Error::Local {
                        path: blob.display().to_string(),
                        detail: format!("cannot read the package layer: {e}"),
                    })?;
                    crate::package::unpack(&tar, &dir)?;
                }
                dir
            }
        };
        Ok(Pulled {
            reference: r.with_digest(&digest),
            digest,
            layer_digest: layer.digest.clone(),
            path,
            offline_tag,
            hold,
        })
    }

    /// Verifies the cosign signature of `digest` in `r`'s repository.
    async fn verify(&self, r: &Reference, digest: &str, key: &PublicKey) -> Result<()> {
        let sig_ref = r.with_tag(&sign::signature_tag(digest));
        let (sig_digest, _) = self.resolve(&sig_ref, false).await.map_err(|e| match e {
            Error::NotFound { .. } => Error::Signature {
                reference: r.to_string(),
                detail: format!(
                    "{digest} is not signed (no {} in the repository)",
                    sign::signature_tag(digest)
                ),
            },
            other => other,
        })?;
        let manifest = self.manifest(&sig_ref, &sig_digest).await?;
        let sig_ref = &sig_ref;
        sign::verify(key, r, digest, &manifest, |desc| async move {
            let path = self.blob(sig_ref, &desc).await?;
            std::fs::read(&path).map_err(|e| Error::Local {
                path: path.display().to_string(),
                detail: format!("cannot read: {e}"),
            })
        })
        .await
    }

    /// Pushes `artifact` to `r` (a tag or a repository), signed with `key`
    /// if given; returns `r` pinned to the artifact's digest.
    ///
    /// # Errors
    /// The registry's errors, naming the reference.
    pub async fn push(
        &self,
        r: &Reference,
        artifact: &Artifact,
        key: Option<&PrivateKey>,
    ) -> Result<Reference> {
        let client = self.client(r)?;
        let auth = self.auth(r)?;
        client
            .auth(r.oci(), &auth, RegistryOperation::Push)
            .await
            .map_err(|e| map_error(r, e))?;
        let manifest: artifact::Manifest =
            serde_json::from_slice(&artifact.manifest).map_err(|e| Error::Artifact {
                reference: r.to_string(),
                detail: format!("cannot read back the manifest: {e}"),
            })?;
        self.push_blobs(
            &client,
            r,
            &[
                (&artifact.layer, &manifest.layers[0].digest),
                (&artifact.config, &manifest.config.digest),
            ],
        )
        .await?;
        let digest = artifact.digest();
        let target = if r.tag().is_some() {
            r.clone()
        } else {
            r.with_digest(&digest)
        };
        push_manifest(&client, &target, &artifact.manifest).await?;
        if let Some(key) = key {
            let (config, payload, sig_manifest) = sign::signature_artifact(key, r, &digest);
            self.push_blobs(
                &client,
                r,
                &[
                    (&payload, &crate::digest_of(&payload)),
                    (&config, &crate::digest_of(&config)),
                ],
            )
            .await?;
            push_manifest(
                &client,
                &r.with_tag(&sign::signature_tag(&digest)),
                &sig_manifest,
            )
            .await?;
        }
        Ok(r.with_digest(&digest))
    }

    async fn push_blobs(
        &self,
        client: &Client,
        r: &Reference,
        blobs: &[(&Vec<u8>, &String)],
    ) -> Result<()> {
        for (bytes, digest) in blobs {
            let exists = client.blob_exists(r.oci(), digest).await.unwrap_or(false);
            if !exists {
                client
                    .push_blob(r.oci(), bytes.to_vec(), digest)
                    .await
                    .map_err(|e| map_error(r, e))?;
            }
        }
        Ok(())
    }
}

async fn push_manifest(client: &Client, r: &Reference, bytes: &[u8]) -> Result<()> {
    client
        .push_manifest_raw(
            r.oci(),
            bytes.to_vec(),
            http::HeaderValue::from_static(OCI_MANIFEST),
        )
        .await
        .map(|_| ())
        .map_err(|e| map_error(r, e))
}

/// A registry that fails (or cannot be reached) for content not in the
/// cache: says so, and what to do (the cache may have been collected).
fn not_cached(r: &Reference, digest: &str, e: Error) -> Error {
    match e {
        Error::Registry { reference, detail } => Error::Registry {
            reference,
            detail: format!(
                "{digest} is not in the blob cache (never pulled here, or removed by `stepbox cache prune`) and the registry did not give it: {detail}; pull it again when the registry is reachable (`stepbox pull {r}`)"
            ),
        },
        e => e,
    }
}

/// The registry's errors, in words that name the reference.
fn map_error(r: &Reference, e: OciDistributionError) -> Error {
    let text = e.to_string();
    let lower = text.to_lowercase();
    let reference = r.to_string();
    let unauthorized = matches!(
        &e,
        OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_)
    ) || lower.contains("code: 401")
        || lower.contains("code: 403")
        || lower.contains("unauthorized")
        || lower.contains("authentication required");
    if unauthorized {
        return Error::Unauthorized {
            reference,
            detail: text,
        };
    }
    if [
        "manifest unknown",
        "name unknown",
        "blob unknown",
        "manifest_unknown",
        "name_unknown",
        "blob_unknown",
    ]
    .iter()
    .any(|n| lower.contains(n))
    {
        return Error::NotFound {
            reference,
            detail: format!("not in the registry: {text}"),
        };
    }
    if lower.contains("digest") {
        return Error::Artifact {
            reference,
            detail: format!("content does not match its digest: {text}"),
        };
    }
    Error::Registry {
        reference,
        detail: format!(
            "the registry could not be used: {text} (is it up, and is the address right? plain HTTP only for loopback or --insecure-registry)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_plain_http_unless_a_ca_is_given() {
        let cache = BlobCache::new(std::env::temp_dir());
        let d = Distribution::new(RegistryOptions::default(), cache.clone());
        assert!(d.plain_http("127.0.0.1:5000"));
        assert!(d.plain_http("localhost:5000"));
        assert!(d.plain_http("[::1]:5000"));
        assert!(!d.plain_http("registry.example"));
        let d = Distribution::new(
            RegistryOptions {
                insecure: vec!["registry.example".into()],
                ca_files: vec!["/ca.pem".into()],
                ..Default::default()
            },
            cache,
        );
        assert!(d.plain_http("registry.example:5000"));
        assert!(
            !d.plain_http("127.0.0.1:5000"),
            "with a CA, loopback is HTTPS"
        );
    }
}
