//! Kustomizations rendered to manifests, as `kubectl kustomize DIR` does.
//!
//! The directory is under `/packages` or `/workspace`; bases, overlays,
//! components, patches, generators, images, `namePrefix`, `commonLabels`
//! work as in kustomize, because the host runs the kustomize that kubectl
//! embeds. It refuses ([`Error::Forbidden`](crate::Error::Forbidden),
//! naming the file and field) paths that leave the step's filesystem,
//! remote bases, `helmCharts` and plugins that run programs. Rendering
//! changes nothing; apply the result with [`kube::apply`],
//! where every object passes the policy.
//!
//! ```no_run
//! use stepbox_sdk::prelude::*;
//!
//! # fn demo() -> stepbox_sdk::Result<()> {
//! for object in kustomize::apply("/packages/overlays/prod")? {
//!     info!("{} {}", object.kubectl_name(), object.action);
//! }
//! # Ok(())
//! # }
//! ```

use crate::Result;
use crate::kube::{self, Applied};
use crate::wit::stepbox::step::kustomize as wit;

/// Renders the kustomization in `dir`; returns multi-document YAML.
pub fn build(dir: &str) -> Result<String> {
    Ok(wit::build(dir)?)
}

/// Renders the kustomization in `dir` and applies the result in one
/// [`kube::apply`] (every object checked before any is applied).
pub fn apply(dir: &str) -> Result<Vec<Applied>> {
    kube::apply(&build(dir)?)
}
