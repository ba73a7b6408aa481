//! Write stepbox deployment steps in Rust.
//!
//! A step is a WASI component (target `wasm32-wasip2`) that exports one
//! function, `run`, and reaches the outside world only through the
//! capabilities the host grants: Kubernetes objects in the run's namespace
//! ([`kube`]), helm releases there ([`helm`]), its own inputs, secrets, outputs and log ([`run`]), and a
//! filesystem with `/packages` (read-only) and `/workspace` (read-write).
//! Everything a step may change is checked against the run's policy; a
//! refused call is an [`Error::Forbidden`] value, never a crash.
//!
//! # A complete step
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [package]
//! name = "scale-web"
//! version = "0.1.0"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! stepbox-sdk = { path = "../../guest-sdk" }
//!
//! [profile.release]
//! opt-level = "s"
//! lto = true
//! strip = "debuginfo"
//! codegen-units = 1
//! panic = "abort"
//! ```
//!
//! `src/lib.rs`:
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use stepbox_sdk::k8s_openapi::api::apps::v1::Deployment;
//! use stepbox_sdk::prelude::*;
//!
//! fn run(ctx: &Context) -> Result<()> {
//!     let name = run::input("deployment").unwrap_or_else(|| "web".to_string());
//!     let replicas = run::u64_input("replicas", 2)?;
//!     info!("scaling {name} in {} to {replicas}", ctx.namespace);
//!
//!     // A missing Deployment is an error value like any other.
//!     let current = match kube::get::<Deployment>(&name) {
//!         Ok(d) => d.spec.and_then(|s| s.replicas).unwrap_or(1),
//!         Err(e) if e.is_not_found() => return Err(Error::step(format!("there is no Deployment {name}"))),
//!         Err(e) => return Err(e),
//!     };
//!
//!     let patch = serde_json::json!({ "spec": { "replicas": replicas } });
//!     let _: Deployment = kube::patch(&name, &patch)?;
//!     run::progress(50, "patched");
//!
//!     kube::wait::<Deployment>(&name, WaitFor::Rollout, Duration::from_secs(120))?;
//!     run::set_output("previous-replicas", current.to_string())?;
//!     run::progress(100, "rolled out");
//!     Ok(())
//! }
//!
//! stepbox_sdk::step!(run);
//! ```
//!
//! Build and try it on the embedded namespace (nothing real changes):
//!
//! ```text
//! cargo build --release --target wasm32-wasip2
//! stepbox run target/wasm32-wasip2/release/scale_web.wasm --input replicas=3 --seed cluster.yaml
//! ```
//!
//! # What is where
//! - [`step!`] exports your `run` function; [`Context`] tells it about the run.
//! - [`kube`]: typed and raw Kubernetes calls, [`kube::apply`] of manifests.
//! - [`helm`]: helm releases from charts under `/packages` or `/workspace`,
//!   every rendered object checked against the policy first.
//! - [`kustomize`]: kustomizations under `/packages` or `/workspace`
//!   rendered to manifests (and applied).
//! - [`http`]: outbound HTTP requests, to the destinations the policy's
//!   `outbound` allow-list names.
//! - [`run`]: inputs, secrets, outputs, progress, artifacts; the log macros
//!   [`trace!`], [`debug!`], [`info!`], [`warn!`], [`error!`].
//! - [`yaml`]: multi-document YAML to JSON values; [`substitute()`] fills
//!   `#{Name}` placeholders from inputs.
//! - [`Error`], [`Result`], [`ResultExt`]: one error type whose kinds are
//!   the host's.
//! - [`prelude`]: `use stepbox_sdk::prelude::*;` for all of the above.
//!
//! A component imports only the capabilities it uses: a step that never
//! calls [`kube`] has no `kube` import (nor `helm` without [`helm`] calls),
//! and `stepbox inspect` shows that.

#![deny(missing_docs)]

mod error;
pub mod helm;
pub mod http;
pub mod kube;
pub mod kustomize;
#[doc(hidden)]
pub mod needs;
pub mod run;
mod template;
pub mod yaml;

pub use error::{Error, Result, ResultExt};
pub use template::substitute;

/// The `k8s-openapi` crate (feature `v1_33`) the typed [`kube`] helpers use.
pub use k8s_openapi;
/// The `serde_json` crate, for JSON values and patches.
pub use serde_json;

/// The bindings `wit-bindgen` generates from `wit/`. Not a stable API: use
/// the modules of this crate.
#[doc(hidden)]
pub mod wit {
    wit_bindgen::generate!({
        path: "../wit",
        world: "step",
        pub_export_macro: true,
        export_macro_name: "__export_step",
        default_bindings_module: "stepbox_sdk::wit",
    });
}

/// What the host tells a step about the run it is part of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// The Kubernetes namespace every kube call is confined to.
    pub namespace: String,
    /// The step's name (from the component file name unless given).
    pub step_name: String,
    /// A unique id for this run.
    pub run_id: String,
    /// True when nothing real is changed: the embedded namespace, or a live
    /// cluster with server-side dry-run.
    pub dry_run: bool,
}

impl From<wit::stepbox::step::types::RunContext> for Context {
    fn from(ctx: wit::stepbox::step::types::RunContext) -> Self {
        Context {
            namespace: ctx.namespace,
            step_name: ctx.step_name,
            run_id: ctx.run_id,
            dry_run: ctx.dry_run,
        }
    }
}

/// Exports a function as the step's `run`.
///
/// The function takes a [`&Context`](Context) and returns
/// `Result<(), E>` for any `E: Display` ([`Error`], `String`,
/// `anyhow::Error`, ...). An `Err` fails the run with the error's text
/// (`{:#}`, so `anyhow` shows its whole chain); for [`Error`] that is e.g.
/// `forbidden: <message>`.
///
/// ```no_run
/// fn run(ctx: &stepbox_sdk::Context) -> stepbox_sdk::Result<()> {
///     stepbox_sdk::info!("hello from {} in {}", ctx.step_name, ctx.namespace);
///     Ok(())
/// }
///
/// stepbox_sdk::step!(run);
/// ```
#[macro_export]
macro_rules! step {
    ($run:path $(,)?) => {
        const _: () = {
            struct __StepboxStep;

            impl $crate::wit::Guest for __StepboxStep {
                fn run(
                    ctx: $crate::wit::stepbox::step::types::RunContext,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    $crate::__private::run_step(ctx, $run)
                }
            }

    $crate::wit::__export_step!(__StepboxStep with_types_in $crate::wit);
        };
    };
}

/// Declares what the step needs: the Kubernetes objects it touches (rules
/// shaped like a Role's, without wildcards), whether it calls helm, and
/// optionally a stricter Pod Security level for the pods it writes.
///
/// The declaration (YAML or JSON, the format of a `step.yaml`) is written
/// into the component as a custom section named `stepbox:needs`; `stepbox
/// inspect` shows it. A run may then do only what both its policy and the
/// declaration allow: a call outside the declaration is
/// [`Error::Forbidden`] naming it, and `stepbox rbac` prints the Role the
/// step needs on a cluster. Declare once per step, here or in a
/// `step.yaml` beside `Cargo.toml`, not both.
///
/// ```no_run
/// stepbox_sdk::needs!(
///     "apiVersion: stepbox.dev/v1alpha1
/// kind: StepNeeds
/// rules:
/// - apiGroups: ['']
///   resources: [configmaps]
///   verbs: [get, create, patch]
/// helm: false
/// "
/// );
/// ```
///
/// The text may come from a file: `stepbox_sdk::needs!(include_str!("../needs.yaml"));`.
/// It is checked when the step is built with `stepbox build` and when it
/// is loaded; a bad declaration stops the step from loading, with a
/// message naming the field.
#[macro_export]
macro_rules! needs {
    ($text:expr $(,)?) => {
        const _: () = {
            const __STEPBOX_NEEDS_TEXT: &str = $text;
            #[used]
            #[unsafe(link_section = "stepbox:needs")]
            static __STEPBOX_NEEDS: [u8; __STEPBOX_NEEDS_TEXT.len()] =
                $crate::needs::bytes::<{ __STEPBOX_NEEDS_TEXT.len() }>(__STEPBOX_NEEDS_TEXT);
        };
    };
}

#[doc(hidden)]
pub mod __private {
    use std::fmt::Display;

    /// Calls the step's function and turns its error into the export's text.
    pub fn run_step<E: Display>(
        ctx: crate::wit::stepbox::step::types::RunContext,
        run: impl FnOnce(&crate::Context) -> Result<(), E>,
    ) -> Result<(), String> {
        run(&crate::Context::from(ctx)).map_err(|e| format!("{e:#}"))
    }
}

/// `use stepbox_sdk::prelude::*;` brings the modules, types and macros a
/// step usually needs.
pub mod prelude {
    pub use crate::helm;
    pub use crate::http;
    pub use crate::kube::{self, Action, Applied, KindRef, WaitFor};
    pub use crate::kustomize;
    pub use crate::run;
    pub use crate::yaml;
    pub use crate::{Context, Error, Result, ResultExt, substitute};
    pub use crate::{debug, error, info, trace, warn};
    pub use serde_json;
}
