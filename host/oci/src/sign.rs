//! Signatures in cosign's key-based format, so a step signed with `cosign
//! sign --key` verifies here, and one signed here verifies with `cosign
//! verify --key`:
//!
//! - the **payload** is the simple-signing JSON naming the repository and
//!   the manifest digest (`critical.image.docker-manifest-digest`);
//! - the **signature** is ECDSA P-256 over SHA-256 of the payload's exact
//!   bytes, ASN.1 DER, base64 in the layer annotation
//!   `dev.cosignproject.cosign/signature`;
//! - it is stored as an OCI artifact tagged `sha256-<hex>.sig` in the same
//!   repository, one layer (`application/vnd.dev.cosign.simplesigning.v1+json`)
//!   per signature.
//!
//! Keys: the public key as PEM `PUBLIC KEY`; the private key as cosign
//! writes it (`ENCRYPTED SIGSTORE PRIVATE KEY`: scrypt and NaCl secretbox,
//! the password from `COSIGN_PASSWORD`), or an unencrypted PKCS#8 or SEC1
//! PEM (as openssl makes them; `cosign import-key-pair` takes those too).

use std::path::Path;

use base64::Engine;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey};
use serde::Deserialize;
use serde_json::json;

use crate::artifact::{Descriptor, Manifest, OCI_MANIFEST};
use crate::{Error, Reference, Result};

/// The layer annotation holding a signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The media type of a signature layer (the payload).
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The config media type of a signature artifact.
pub const SIGNATURE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The `critical.type` of a cosign payload.
pub const PAYLOAD_TYPE: &str = "cosign container image signature";
/// The environment variable holding the password of an encrypted key.
pub const PASSWORD_ENV: &str = "COSIGN_PASSWORD";

fn key_error(path: &Path, detail: impl Into<String>) -> Error {
    Error::Signature {
        reference: path.display().to_string(),
        detail: detail.into(),
    }
}

/// The blocks of a PEM file: (label, decoded body).
fn pem_blocks(text: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines().map(str::trim) {
        if let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            current = Some((label.to_string(), String::new()));
        } else if line.starts_with("-----END ") {
            if let Some((label, body)) = current.take()
                && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(body)
            {
                out.push((label, bytes));
            }
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
        }
    }
    out
}

#[derive(Deserialize)]
struct Encrypted {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    salt: String,
}

#[derive(Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// A key to sign with.
pub struct PrivateKey(SigningKey);

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(..)")
    }
}

impl PrivateKey {
    /// Reads a private key file (see the [module docs](self)); an
    /// encrypted one is opened with `password` (`None`: `$COSIGN_PASSWORD`).
    ///
    /// # Errors
    /// [`Error::Signature`] naming the file: unreadable, not a P-256 key,
    /// or a wrong password.
    pub fn load(path: &Path, password: Option<&str>) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| key_error(path, format!("cannot read the key: {e}")))?;
        let blocks = pem_blocks(&text);
        let Some((label, body)) = blocks.first() else {
            return Err(key_error(path, "is not a PEM key file"));
        };
        let key = match label.as_str() {
            "ENCRYPTED SIGSTORE PRIVATE KEY" | "ENCRYPTED COSIGN PRIVATE KEY" => {
                let env = std::env::var(PASSWORD_ENV).ok();
                let password = password.or(env.as_deref()).ok_or_else(|| {
                    key_error(
                        path,
                        format!("is encrypted: set {PASSWORD_ENV} to its password"),
                    )
                })?;
                let der = decrypt(path, body, password)?;
                SigningKey::from_pkcs8_der(&der)
            }
            "PRIVATE KEY" => SigningKey::from_pkcs8_der(body),
            "EC PRIVATE KEY" => p256::SecretKey::from_sec1_der(body)
                .map(SigningKey::from)
                .map_err(|_| p256::pkcs8::Error::KeyMalformed),
            other => {
                return Err(key_error(
                    path,
                    format!("holds a {other}, not a private key"),
                ));
            }
        };
        key.map(Self)
            .map_err(|e| key_error(path, format!("is not an ECDSA P-256 private key: {e}")))
    }

    /// Signs `payload`: the base64 of the DER signature.
    pub fn sign(&self, payload: &[u8]) -> String {
        let signature: Signature = self.0.sign(payload);
        base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
    }
}

/// cosign's private key encryption: scrypt, then NaCl secretbox.
fn decrypt(path: &Path, body: &[u8], password: &str) -> Result<Vec<u8>> {
    use crypto_secretbox::aead::{Aead, KeyInit};
    let bad = |detail: &str| key_error(path, detail.to_string());
    let doc: Encrypted = serde_json::from_slice(body)
        .map_err(|_| bad("is not a cosign key (the encrypted body is not JSON)"))?;
    if doc.kdf.name != "scrypt" || doc.cipher.name != "nacl/secretbox" {
        return Err(bad(
            "uses a key encryption stepbox does not know (want scrypt and nacl/secretbox)",
        ));
    }
    let KdfParams { n, r, p } = doc.kdf.params;
    if !matches!(n, 32768 | 65536 | 131072) || r != 8 || p != 1 {
        return Err(bad("has scrypt parameters cosign would not write"));
    }
    let b64 = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|_| bad("is not a cosign key (bad base64)"))
    };
    let salt = b64(&doc.kdf.salt)?;
    let nonce = b64(&doc.cipher.nonce)?;
    let ciphertext = b64(&doc.ciphertext)?;
    if nonce.len() != 24 {
        return Err(bad("is not a cosign key (the nonce is not 24 bytes)"));
    }
    let params = scrypt::Params::new(n.trailing_zeros() as u8, r, p, 32)
        .map_err(|_| bad("has bad scrypt parameters"))?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password.as_bytes(), &salt, &params, &mut key)
        .map_err(|_| bad("cannot derive the key"))?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(crypto_secretbox::Key::from_slice(&key));
    cipher
        .decrypt(
            crypto_secretbox::Nonce::from_slice(&nonce),
            ciphertext.as_slice(),
        )
        .map_err(|_| {
            key_error(
                path,
                format!("cannot be opened with this password (check {PASSWORD_ENV})"),
            )
        })
}

/// A key to verify with.
#[derive(Debug, Clone)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Reads a public key file (PEM `PUBLIC KEY`, as `cosign.pub`).
    ///
    /// # Errors
    /// [`Error::Signature`] naming the file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| key_error(path, format!("cannot read the key: {e}")))?;
        let blocks = pem_blocks(&text);
        let der = blocks
            .iter()
            .find(|(label, _)| label == "PUBLIC KEY")
            .map(|(_, der)| der)
            .ok_or_else(|| key_error(path, "holds no PEM PUBLIC KEY"))?;
        VerifyingKey::from_public_key_der(der)
            .map(Self)
            .map_err(|e| key_error(path, format!("is not an ECDSA P-256 public key: {e}")))
    }

    fn verifies(&self, payload: &[u8], signature_b64: &str) -> bool {
        let Ok(der) = base64::engine::general_purpose::STANDARD.decode(signature_b64.trim()) else {
            return false;
        };
        let Ok(signature) = Signature::from_der(&der) else {
            return false;
        };
        // Go's ECDSA may produce high-S signatures: both forms are valid.
        let signature = signature.normalize_s().unwrap_or(signature);
        self.0.verify(payload, &signature).is_ok()
    }
}

/// The tag a signature of `digest` is stored under.
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replace(':', "-"))
}

/// The simple-signing payload for `digest` in `reference`'s repository.
pub fn payload(reference: &Reference, digest: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "critical": {
            "identity": {"docker-reference": reference.repository_name()},
            "image": {"docker-manifest-digest": digest},
            "type": PAYLOAD_TYPE,
        },
        "optional": null,
    }))
    .unwrap_or_default()
}

/// A signature artifact: (config, payload, manifest) bytes, the manifest
/// to push as [`signature_tag`].
pub fn signature_artifact(
    key: &PrivateKey,
    reference: &Reference,
    digest: &str,
) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let payload = payload(reference, digest);
    let config = serde_json::to_vec(&json!({
        "architecture": "", "os": "", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [crate::digest_of(&payload)]},
    }))
    .unwrap_or_default();
    let mut layer = Descriptor::of(SIMPLE_SIGNING, &payload);
    layer
        .annotations
        .insert(SIGNATURE_ANNOTATION.into(), key.sign(&payload));
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_string()),
        config: Descriptor::of(SIGNATURE_CONFIG, &config),
        layers: vec![layer],
        annotations: Default::default(),
    };
    (
        config,
        payload,
        serde_json::to_vec(&manifest).unwrap_or_default(),
    )
}

/// Checks a signature artifact of `digest`: some layer's payload names
/// `digest` and its signature verifies with `key`. `fetch` reads a layer
/// (by descriptor) from the registry.
///
/// # Errors
/// [`Error::Signature`] saying why none verifies.
pub async fn verify<F, Fut>(
    key: &PublicKey,
    reference: &Reference,
    digest: &str,
    manifest: &[u8],
    fetch: F,
) -> Result<()>
where
    F: Fn(Descriptor) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<u8>>>,
{
    let fail = |detail: String| Error::Signature {
        reference: reference.to_string(),
        detail,
    };
    let manifest: Manifest = serde_json::from_slice(manifest)
        .map_err(|e| fail(format!("its signature artifact is not a manifest: {e}")))?;
    let mut reasons = Vec::new();
    for layer in manifest
        .layers
        .iter()
        .filter(|l| l.media_type == SIMPLE_SIGNING)
    {
        let Some(signature) = layer.annotations.get(SIGNATURE_ANNOTATION) else {
            reasons.push("a signature layer without a signature".to_string());
            continue;
        };
        if layer.size > crate::artifact::MAX_SMALL_BLOB {
            reasons.push("an oversized payload".to_string());
            continue;
        }
        let payload = fetch(layer.clone()).await?;
        if !key.verifies(&payload, signature) {
            reasons.push("a signature made with another key (or over other content)".to_string());
            continue;
        }
        let claims: serde_json::Value = serde_json::from_slice(&payload).unwrap_or_default();
        let signed = claims
            .pointer("/critical/image/docker-manifest-digest")
            .and_then(|v| v.as_str());
        let kind = claims.pointer("/critical/type").and_then(|v| v.as_str());
        if kind != Some(PAYLOAD_TYPE) {
            reasons.push(format!("a signed payload of type {kind:?}"));
        } else if signed != Some(digest) {
            reasons.push(format!(
                "a signature of another artifact ({})",
                signed.unwrap_or("none")
            ));
        } else {
            return Ok(());
        }
    }
    if reasons.is_empty() {
        reasons.push("no signature layers".into());
    }
    Err(fail(format!(
        "the signature of {digest} does not verify with the given key: {}",
        reasons.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_signature_made_here_verifies_and_others_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let secret = SigningKey::from_bytes(&[7u8; 32].into()).unwrap();
        let der = p256::pkcs8::EncodePrivateKey::to_pkcs8_der(&secret).unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(der.as_bytes())
        );
        std::fs::write(dir.path().join("k.pem"), pem).unwrap();
        let public = p256::pkcs8::EncodePublicKey::to_public_key_pem(
            secret.verifying_key(),
            p256::pkcs8::LineEnding::LF,
        )
        .unwrap();
        std::fs::write(dir.path().join("k.pub"), public).unwrap();
        let key = PrivateKey::load(&dir.path().join("k.pem"), None).unwrap();
        let pubkey = PublicKey::load(&dir.path().join("k.pub")).unwrap();
        let r = Reference::parse("127.0.0.1:5000/steps/deploy:1").unwrap();
        let digest = crate::digest_of(b"manifest");
        let (_, payload, manifest) = signature_artifact(&key, &r, &digest);
        let fetch = |_d: Descriptor| {
            let p = payload.clone();
            async move { Ok(p) }
        };
        verify(&pubkey, &r, &digest, &manifest, fetch)
            .await
            .unwrap();
        let other = crate::digest_of(b"other");
        let err = verify(&pubkey, &r, &other, &manifest, fetch)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("a signature of another artifact"),
            "{err}"
        );
        let tampered = |_d: Descriptor| async { Ok(b"{}".to_vec()) };
        let err = verify(&pubkey, &r, &digest, &manifest, tampered)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("another key"), "{err}");
    }
}
