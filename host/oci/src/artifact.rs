//! What a step and a package look like in a registry, and the checks of a
//! manifest before anything it names is downloaded.
//!
//! A step is the CNCF wasm OCI artifact (the TAG runtime wasm working
//! group's layout, as wkg and oci-wasm write it):
//!
//! ```json
//! {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
//!  "config": {"mediaType": "application/vnd.wasm.config.v0+json", "digest": "sha256:…", "size": 236},
//!  "layers": [{"mediaType": "application/wasm", "digest": "sha256:…", "size": 463122}],
//!  "annotations": {"org.opencontainers.image.created": "…", "org.opencontainers.image.title": "deploy-manifests"}}
//! ```
//!
//! whose config says what the component is:
//!
//! ```json
//! {"created": "…", "architecture": "wasm", "os": "wasip2", "layerDigests": ["sha256:…"],
//!  "component": {"exports": ["stepbox:step/…"], "imports": ["stepbox:step/kube@0.1.0", "…"], "target": "stepbox:step/step@0.1.0"}}
//! ```
//!
//! A package has config `application/vnd.stepbox.package.config.v1+json`
//! and one layer `application/vnd.stepbox.package.layer.v1.tar`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{Error, Reference, Result, digest_of};

/// The OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The config of a wasm component artifact.
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// The layer of a wasm component artifact: the component itself.
pub const WASM_LAYER: &str = "application/wasm";
/// The config of a stepbox package artifact.
pub const PACKAGE_CONFIG: &str = "application/vnd.stepbox.package.config.v1+json";
/// The layer of a stepbox package artifact: a tar of the package directory.
pub const PACKAGE_LAYER: &str = "application/vnd.stepbox.package.layer.v1.tar";
/// The largest config or manifest accepted.
pub const MAX_SMALL_BLOB: u64 = 1024 * 1024;

/// What a component imports and exports, for its config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentDescription {
    /// Imported interfaces (`stepbox:step/kube@0.1.0`, `wasi:…`).
    pub imports: Vec<String>,
    /// Exported interfaces or functions.
    pub exports: Vec<String>,
    /// The world it targets, when known.
    pub target: Option<String>,
}

/// What an artifact holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A step: one wasm component.
    Step,
    /// A package: one tar of a directory.
    Package,
}

impl Kind {
    /// The config and layer media types.
    pub fn media_types(self) -> (&'static str, &'static str) {
        match self {
            Kind::Step => (WASM_CONFIG, WASM_LAYER),
            Kind::Package => (PACKAGE_CONFIG, PACKAGE_LAYER),
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Step => "a step (wasm component)",
            Kind::Package => "a stepbox package",
        }
    }
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The content's media type.
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Bytes.
    pub size: u64,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    /// The descriptor of `bytes` of `media_type`.
    pub fn of(media_type: &str, bytes: &[u8]) -> Self {
        Self {
            media_type: media_type.to_string(),
            digest: digest_of(bytes),
            size: bytes.len() as u64,
            annotations: BTreeMap::new(),
        }
    }
}

/// An OCI image manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// [`OCI_MANIFEST`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The config.
    pub config: Descriptor,
    /// The layers.
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An artifact to push: its config, its one layer and its manifest.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The config's bytes.
    pub config: Vec<u8>,
    /// The layer's bytes.
    pub layer: Vec<u8>,
    /// The manifest, as it will be pushed (its digest is the artifact's).
    pub manifest: Vec<u8>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Artifact {
    /// A step: `wasm` is the component, `title` its name.
    pub fn step(
        wasm: Vec<u8>,
        description: &ComponentDescription,
        title: &str,
        annotations: BTreeMap<String, String>,
    ) -> Self {
        let created = now();
        let config = json!({
            "created": created,
            "architecture": "wasm",
            "os": "wasip2",
            "layerDigests": [digest_of(&wasm)],
            "component": {
                "exports": description.exports,
                "imports": description.imports,
                "target": description.target,
            },
        });
        Self::assemble(
            Kind::Step,
            serde_json::to_vec(&config).unwrap_or_default(),
            wasm,
            &created,
            title,
            annotations,
        )
    }

    /// A package: `tar` is the directory's tar, `title` its name.
    pub fn package(tar: Vec<u8>, title: &str, annotations: BTreeMap<String, String>) -> Self {
        let created = now();
        let config = json!({"created": created, "layerDigests": [digest_of(&tar)]});
        Self::assemble(
            Kind::Package,
            serde_json::to_vec(&config).unwrap_or_default(),
            tar,
            &created,
            title,
            annotations,
        )
    }

    fn assemble(
        kind: Kind,
        config: Vec<u8>,
        layer: Vec<u8>,
        created: &str,
        title: &str,
        extra: BTreeMap<String, String>,
    ) -> Self {
        let (config_type, layer_type) = kind.media_types();
        let mut annotations = BTreeMap::from([
            (
                "org.opencontainers.image.created".to_string(),
                created.to_string(),
            ),
            (
                "org.opencontainers.image.title".to_string(),
                title.to_string(),
            ),
        ]);
        annotations.extend(extra);
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.to_string()),
            config: Descriptor::of(config_type, &config),
            layers: vec![Descriptor::of(layer_type, &layer)],
            annotations,
        };
        Self {
            manifest: serde_json::to_vec(&manifest).unwrap_or_default(),
            config,
            layer,
        }
    }

    /// The manifest's digest: the artifact's.
    pub fn digest(&self) -> String {
        digest_of(&self.manifest)
    }
}

/// Reads `bytes` as the manifest of `kind` and checks it before anything
/// it names is downloaded: an OCI image manifest (not an index), the
/// config and layer media types of `kind`, exactly one layer, and that
/// layer at most `max_layer` bytes. Returns it.
///
/// # Errors
/// [`Error::Artifact`] naming the reference and what is wrong.
pub fn check(reference: &Reference, bytes: &[u8], kind: Kind, max_layer: u64) -> Result<Manifest> {
    let wrong = |detail: String| Error::Artifact {
        reference: reference.to_string(),
        detail,
    };
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| wrong(format!("the manifest is not JSON: {e}")))?;
    if value.get("manifests").is_some() {
        return Err(wrong(format!(
            "is an image index (a multi-platform image?), not {}",
            kind.noun()
        )));
    }
    let manifest: Manifest = serde_json::from_value(value)
        .map_err(|e| wrong(format!("not an OCI image manifest: {e}")))?;
    if manifest.schema_version != 2 {
        return Err(wrong(format!(
            "manifest schemaVersion {} is not 2",
            manifest.schema_version
        )));
    }
    let (config_type, layer_type) = kind.media_types();
    if manifest.config.media_type != config_type {
        return Err(wrong(format!(
            "is not {}: its config is {:?}, not {config_type:?} (push it with `stepbox push`, or any tool writing the CNCF wasm artifact layout)",
            kind.noun(),
            manifest.config.media_type
        )));
    }
    match manifest.layers.as_slice() {
        [layer] if layer.media_type == layer_type => {}
        [layer] => {
            return Err(wrong(format!(
                "its layer is {:?}, not {layer_type:?}",
                layer.media_type
            )));
        }
        layers => {
            return Err(wrong(format!(
                "has {} layers; {} has exactly one",
                layers.len(),
                kind.noun()
            )));
        }
    }
    let layer = &manifest.layers[0];
    if layer.size > max_layer {
        return Err(wrong(format!(
            "its layer is {} bytes, more than the {max_layer} bytes allowed: not downloaded",
            layer.size
        )));
    }
    if manifest.config.size > MAX_SMALL_BLOB {
        return Err(wrong(format!(
            "its config is {} bytes, more than {MAX_SMALL_BLOB}: not downloaded",
            manifest.config.size
        )));
    }
    for d in [&manifest.config, layer] {
        if !crate::reference::is_sha256_digest(&d.digest) {
            return Err(wrong(format!("{:?} is not a sha256 digest", d.digest)));
        }
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r() -> Reference {
        Reference::parse("127.0.0.1:5000/steps/deploy:1").unwrap()
    }

    #[test]
    fn a_step_round_trips_and_is_checked() {
        let description = ComponentDescription {
            imports: vec!["stepbox:step/kube@0.1.0".into()],
            exports: vec!["run".into()],
            target: Some("stepbox:step/step@0.1.0".into()),
        };
        let a = Artifact::step(b"\0asm".to_vec(), &description, "deploy", BTreeMap::new());
        let m = check(&r(), &a.manifest, Kind::Step, 100).unwrap();
        assert_eq!(m.layers[0].digest, digest_of(b"\0asm"));
        assert_eq!(m.annotations["org.opencontainers.image.title"], "deploy");
        let config: serde_json::Value = serde_json::from_slice(&a.config).unwrap();
        assert_eq!(config["component"]["imports"][0], "stepbox:step/kube@0.1.0");
        assert_eq!(config["os"], "wasip2");

        let err = check(&r(), &a.manifest, Kind::Package, 100)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a stepbox package"), "{err}");
        let err = check(&r(), &a.manifest, Kind::Step, 3)
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than the 3 bytes allowed"), "{err}");
        let err = check(
            &r(),
            br#"{"schemaVersion":2,"manifests":[]}"#,
            Kind::Step,
            3,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("image index"), "{err}");
    }
}
