//! A hostile step: input `case` picks one attack on the host, and the step
//! records what it observed as outputs instead of failing, so the tests can
//! assert the exact outcome:
//!
//! - `outcome`: `"ok"`, or for a refused capability call the error kind
//!   (`"forbidden"`, `"invalid"`, ...), or for a refused WASI call `"denied"`;
//! - `message`: the error's text (`""` for ok);
//! - `io-kind`: for WASI calls, the `std::io::ErrorKind` of the error;
//! - case-specific outputs, named in each module.
//!
//! Attacks that cannot be survived (loops, floods, bombs) never return: the
//! host must end them with a limit.

mod env;
mod fs;
mod kube;
mod resources;
mod secrets;

use stepbox_sdk::{Context, Error, Result, run};

fn run(ctx: &Context) -> Result<()> {
    let case = run::require_input("case")?;
    let group = case.split('-').next().unwrap_or_default();
    match group {
        "fs" => fs::run(&case),
        "kube" => kube::run(ctx, &case),
        "res" => resources::run(&case),
        "env" => env::run(&case),
        "secret" => secrets::run(&case),
        _ => Err(Error::invalid(format!("unknown case {case:?}"))),
    }
}

/// Records a capability call's result as `outcome` and `message`.
pub(crate) fn record<T>(result: &Result<T>) -> Result<()> {
    let (kind, message) = match result {
        Ok(_) => ("ok", ""),
        Err(e) => (e.kind(), e.message()),
    };
    run::set_output("outcome", kind)?;
    run::set_output("message", message)
}

/// Records a WASI call's result as `<name>` (`"ok"` or `"denied"`) and, when
/// denied, `<name>-kind` and `<name>-message`.
pub(crate) fn record_io<T>(name: &str, result: &std::io::Result<T>) -> Result<()> {
    match result {
        Ok(_) => run::set_output(name, "ok"),
        Err(e) => {
            run::set_output(name, "denied")?;
            run::set_output(&format!("{name}-kind"), format!("{:?}", e.kind()))?;
            run::set_output(&format!("{name}-message"), e.to_string())
        }
    }
}

stepbox_sdk::step!(run);
