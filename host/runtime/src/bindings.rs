//! Host bindings of the `stepbox:step` world, generated from `wit/`.
//!
//! This is the only place `bindgen!` runs; the capability modules implement
//! the generated `Host` traits on borrowed views of the run's state.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "step",
    imports: { default: async | trappable | tracing },
    exports: { default: async },
    trappable_error_type: {
        "stepbox:step/types.error" => crate::caps::CapError,
    },
});

pub use self::stepbox::step::*;
