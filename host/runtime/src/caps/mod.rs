//! The capabilities a step imports, one module each, all the same shape:
//! a context type holding what the run may use, a `host` module that is the
//! only code touching the generated WIT traits and exports one
//! `add_to_linker`, and every call going *policy check → backend call →
//! audit record*.
//!
//! | WIT interface        | module          | backend                    |
//! |----------------------|-----------------|----------------------------|
//! | `stepbox:step/types` | [`error`]       | (the error conversion)     |
//! | `stepbox:step/kube`  | [`kube`]        | [`stepbox_cluster`]        |
//! | `stepbox:step/helm`  | [`helm`]        | the `helm` binary          |
//! | `stepbox:step/kustomize` | [`kustomize`] | `kubectl kustomize`      |
//! | `stepbox:step/run`   | [`run`]         | the run's [`RunRecorder`]  |
//! | `wasi:http/outgoing-handler` | [`http`] | the policy's `outbound` allow-list, then the network |
//! | `wasi:filesystem`    | [`fs`]          | cap-std preopens           |
//!
//! kube and helm act on the same [`RunScope`] (namespace, policy, backend,
//! recorder). A policy breach is a WIT `error::forbidden` value the step can
//! handle; only limits and host faults become traps ([`CapError`]).
//!
//! The store of a run holds its [`Caps`]; `add_to_linker` adds every
//! interface, one line each.
//!
//! [`RunRecorder`]: crate::report::RunRecorder

pub mod error;
pub mod fs;
pub mod helm;
pub mod http;
pub mod kube;
pub mod kustomize;
pub mod run;
mod scope;
mod tool;

use wasmtime::component::Linker;

pub(crate) use error::masked;
pub use error::{CapError, ErrorKind, LimitTrap, Result, StepError};
pub use scope::RunScope;

/// The capabilities of one run, as its store holds them.
pub struct Caps {
    /// `stepbox:step/kube`.
    pub(crate) kube: kube::KubeCtx,
    /// `stepbox:step/helm`.
    pub(crate) helm: helm::HelmCtx,
    /// `stepbox:step/run`.
    pub(crate) run: run::RunCtx,
    /// `wasi:http/outgoing-handler`.
    pub(crate) http: http::HttpCtx,
    /// `stepbox:step/kustomize`.
    pub(crate) kustomize: kustomize::KustomizeCtx,
}

impl Caps {
    /// The capabilities of a run in `scope`: `run` for its inputs, secrets
    /// and outputs, `charts` where its helm charts are found, `helm` the
    /// helm binary and cluster (`None`: helm calls fail with
    /// `unavailable`), `http` where its HTTP requests may go, `kubectl`
    /// the binary whose kustomize renders kustomizations.
    pub(crate) fn new(
        scope: RunScope,
        run: run::RunCtx,
        charts: helm::ChartRoots,
        helm: Option<helm::HelmConfig>,
        http: http::HttpRules,
        kubectl: std::path::PathBuf,
    ) -> Self {
        Self {
            http: http::HttpCtx::new(http),
            kustomize: kustomize::KustomizeCtx::new(
                charts.clone(),
                kubectl,
                scope.recorder.clone(),
            ),
            kube: kube::KubeCtx::new(scope.clone()),
            helm: helm::HelmCtx::new(scope, charts, helm),
            run,
        }
    }
}

/// The data of a store that holds a run's [`Caps`].
pub(crate) trait HasCaps: Send + 'static {
    /// The run's capabilities.
    fn caps(&mut self) -> &Caps;
}

/// Adds every capability's interfaces to `linker` (WASI is added apart).
pub(crate) fn add_to_linker<T: HasCaps + wasmtime_wasi_http::WasiHttpView>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    error::add_to_linker(linker)?;
    kube::add_to_linker(linker)?;
    helm::add_to_linker(linker)?;
    kustomize::add_to_linker(linker)?;
    run::add_to_linker(linker)?;
    http::add_to_linker(linker)?;
    Ok(())
}
