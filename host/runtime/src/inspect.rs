//! What a component file is and what it asks for.
//!
//! A component's imports are its capability list: a step that does not
//! import `stepbox:step/kube` can never touch the cluster. [`describe`]
//! reports them, and [`check_step_world`] decides whether the host can run
//! the component as a step, with an error that says what is wrong.

use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use crate::needs::StepNeeds;

/// The stepbox interfaces this host implements (package `stepbox:step`,
/// any 0.1.x version).
pub const HOST_INTERFACES: &[&str] = &["types", "kube", "helm", "kustomize", "run"];

/// What kind of file some bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WasmKind {
    /// A WebAssembly component (component-model binary).
    Component,
    /// A core WebAssembly module (not a component).
    CoreModule,
    /// WebAssembly text format.
    Text,
    /// Not WebAssembly.
    NotWasm,
}

/// Tells a component from a core module from anything else by its header.
pub fn detect(bytes: &[u8]) -> WasmKind {
    if bytes.len() >= 8 && &bytes[..4] == b"\0asm" {
        // version (2 bytes) + layer (2 bytes): layer 1 is a component.
        if bytes[6..8] == [1, 0] {
            WasmKind::Component
        } else {
            WasmKind::CoreModule
        }
    } else if bytes
        .iter()
        .take(512)
        .skip_while(|b| b.is_ascii_whitespace())
        .take(1)
        .eq(b"(".iter())
    {
        WasmKind::Text
    } else {
        WasmKind::NotWasm
    }
}

/// Hex sha256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// One import or export of a component.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// Its name, e.g. `stepbox:step/kube@0.1.0` or `run`.
    pub name: String,
    /// `instance` (an interface), `func`, `type`, `resource`, `module`, `component`.
    pub kind: &'static str,
    /// For imports: does this host provide it?
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provided: Option<bool>,
    /// For `stepbox:step` interfaces: the capability it grants.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capability: Option<&'static str>,
}

/// What `stepbox inspect` shows.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentInfo {
    /// File size in bytes.
    pub size: u64,
    /// Hex sha256 of the file.
    pub sha256: String,
    /// What the file is.
    pub kind: WasmKind,
    /// Imports, in the component's order.
    pub imports: Vec<Item>,
    /// Exports.
    pub exports: Vec<Item>,
    /// The capabilities the step can use (from its imports).
    pub capabilities: Vec<&'static str>,
    /// What the step declares it needs (its `stepbox:needs` section):
    /// its runs get the policy intersected with it. `None` when it
    /// declares nothing (its runs get the policy's whole grant).
    pub needs: Option<StepNeeds>,
    /// Why the declaration could not be read, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needs_error: Option<String>,
    /// Whether it is a runnable stepbox step; if not, why.
    pub step_world: Result<(), String>,
}

fn kind_of(item: &ComponentItem) -> &'static str {
    match item {
        ComponentItem::ComponentFunc(_) => "func",
        ComponentItem::CoreFunc(_) => "core-func",
        ComponentItem::Module(_) => "module",
        ComponentItem::Component(_) => "component",
        ComponentItem::ComponentInstance(_) => "instance",
        ComponentItem::Type(_) => "type",
        ComponentItem::Resource(_) => "resource",
    }
}

/// `stepbox:step/kube@0.1.0` → `Some("kube")` when it is ours.
fn stepbox_interface(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("stepbox:step/")?;
    let (iface, version) = rest.split_once('@').unwrap_or((rest, ""));
    (version.is_empty() || version.starts_with("0.1.")).then_some(iface)
}

/// The capability an import grants, for `stepbox inspect`: a `stepbox:step`
/// interface, or the WASI filesystem and sockets.
fn capability(name: &str) -> Option<&'static str> {
    if let Some(iface) = stepbox_interface(name) {
        return match iface {
            "kube" => Some("kube: Kubernetes objects in the run's namespace"),
            "helm" => Some(
                "helm: helm releases in the run's namespace, charts from its filesystem, every object checked",
            ),
            "run" => Some("run: inputs, secrets, outputs, log, artifacts"),
            "kustomize" => Some(
                "kustomize: kustomizations of its filesystem rendered to manifests (no remote bases, no plugins)",
            ),
            _ => None,
        };
    }
    let base = name.split('@').next().unwrap_or(name);
    match base {
        "wasi:filesystem/types" | "wasi:filesystem/preopens" => {
            Some("filesystem: /workspace (read-write), /packages (read-only)")
        }
        "wasi:http/outgoing-handler" => {
            Some("http: outbound HTTP requests, to the destinations the policy's `outbound` allows")
        }
        "wasi:sockets/tcp" | "wasi:sockets/udp" | "wasi:sockets/ip-name-lookup" => {
            Some("sockets: imported, but denied by the host")
        }
        _ => None,
    }
}

fn host_provides(name: &str) -> bool {
    match stepbox_interface(name) {
        Some(iface) => HOST_INTERFACES.contains(&iface),
        // Of wasi:http, the client side only: a step sends requests (to
        // the policy's allow-list), it never serves them.
        None => {
            name.starts_with("wasi:")
                && (!name.starts_with("wasi:http/")
                    || name.starts_with("wasi:http/outgoing-handler@")
                    || name.starts_with("wasi:http/types@"))
        }
    }
}

/// Describes a compiled component, made of `bytes` whose hex sha256 is
/// `sha256` (from [`sha256_hex`]: callers have it already, and hashing a
/// component again is most of a cache hit's time).
pub fn describe(
    engine: &Engine,
    component: &Component,
    bytes: &[u8],
    sha256: String,
) -> ComponentInfo {
    let ty = component.component_type();
    let imports: Vec<Item> = ty
        .imports(engine)
        .map(|(name, ext)| Item {
            name: name.to_string(),
            kind: kind_of(&ext.ty),
            provided: Some(host_provides(name)),
            capability: capability(name),
        })
        .collect();
    let exports: Vec<Item> = ty
        .exports(engine)
        .map(|(name, ext)| Item {
            name: name.to_string(),
            kind: kind_of(&ext.ty),
            provided: None,
            capability: None,
        })
        .collect();
    let mut capabilities: Vec<&'static str> = imports.iter().filter_map(|i| i.capability).collect();
    capabilities.sort_unstable();
    capabilities.dedup();
    let step_world = check_step_world(&imports, &exports);
    let (needs, needs_error) = match crate::needs::section::read(bytes) {
        Ok(needs) => (needs, None),
        Err(e) => (None, Some(e.to_string())),
    };
    ComponentInfo {
        size: bytes.len() as u64,
        sha256,
        kind: WasmKind::Component,
        imports,
        exports,
        capabilities,
        needs,
        needs_error,
        step_world,
    }
}

/// Whether a component with these imports and exports is a stepbox step the
/// host can run; the error says what is wrong and what to do.
pub fn check_step_world(imports: &[Item], exports: &[Item]) -> Result<(), String> {
    let has_run = exports.iter().any(|e| e.name == "run" && e.kind == "func");
    if !has_run {
        let what = if exports.iter().any(|e| e.name.starts_with("wasi:cli/run")) {
            "it is a WASI command (world wasi:cli/command, exporting wasi:cli/run)".to_string()
        } else if exports.is_empty() {
            "it exports nothing".to_string()
        } else {
            let names: Vec<&str> = exports.iter().map(|e| e.name.as_str()).collect();
            format!("it exports {}", names.join(", "))
        };
        return Err(format!(
            "not a stepbox step: {what}, but a step must export the `run` function of world \
             stepbox:step/step@0.1.0. Build it against stepbox-sdk and export it with \
             `stepbox_sdk::step!(run);`"
        ));
    }
    let missing: Vec<&str> = imports
        .iter()
        .filter(|i| i.provided == Some(false))
        .map(|i| i.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the component imports {} which this host does not provide (it provides \
             stepbox:step/{{{}}}@0.1.x and WASI 0.2); rebuild the step against a \
             stepbox-sdk that matches this host",
            missing.join(", "),
            HOST_INTERFACES.join(",")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_headers() {
        assert_eq!(detect(b"\0asm\x0d\0\x01\0rest"), WasmKind::Component);
        assert_eq!(detect(b"\0asm\x01\0\0\0"), WasmKind::CoreModule);
        assert_eq!(detect(b"  (module)"), WasmKind::Text);
        assert_eq!(detect(b"\x7fELF...."), WasmKind::NotWasm);
        assert_eq!(detect(b""), WasmKind::NotWasm);
    }

    #[test]
    fn our_interfaces() {
        assert_eq!(stepbox_interface("stepbox:step/kube@0.1.0"), Some("kube"));
        assert_eq!(stepbox_interface("stepbox:step/kube@0.2.0"), None);
        assert!(host_provides("wasi:cli/environment@0.2.6"));
        assert!(!host_provides("acme:secret/vault@1.0.0"));
        assert!(host_provides("stepbox:step/helm@0.1.0"));
        assert!(!host_provides("stepbox:step/vault@0.1.0"));
        assert!(host_provides("wasi:http/outgoing-handler@0.2.4"));
        assert!(host_provides("wasi:http/types@0.2.4"));
        assert!(!host_provides("wasi:http/incoming-handler@0.2.4"));
    }

    #[test]
    fn capabilities_include_the_filesystem_and_sockets() {
        let cap = |name| capability(name).map(|c| c.split(':').next().unwrap_or(c));
        assert_eq!(cap("stepbox:step/kube@0.1.0"), Some("kube"));
        assert_eq!(cap("stepbox:step/helm@0.1.2"), Some("helm"));
        assert_eq!(cap("stepbox:step/run@0.1.0"), Some("run"));
        assert_eq!(cap("stepbox:step/types@0.1.0"), None);
        assert_eq!(cap("wasi:filesystem/preopens@0.2.6"), Some("filesystem"));
        assert_eq!(cap("wasi:filesystem/types@0.2.12"), Some("filesystem"));
        assert_eq!(cap("wasi:sockets/tcp@0.2.9"), Some("sockets"));
        assert_eq!(cap("wasi:sockets/ip-name-lookup@0.2.9"), Some("sockets"));
        assert_eq!(cap("wasi:cli/stdout@0.2.6"), None);
        assert_eq!(
            cap("stepbox:step/kube@0.2.0"),
            None,
            "not ours: another major version"
        );
    }
}
