//! Makes one kind of host call `count` times and reports, as the output
//! `elapsed-ns`, how long the loop took by the guest's monotonic clock: the
//! cost of a guest → host → backend → guest round trip without the run's
//! start-up around it.
//!
//! Inputs:
//! - `op`: `get` (kube.get of ConfigMap `name`, default `settings`),
//!   `input` (run.input, the cheapest host call), `apply` (kube.apply of
//!   every document in `/packages/manifests.yaml`, once per iteration),
//!   `none` (an empty loop);
//! - `count`: iterations (default 1).
//!
//! A failed call fails the run with its error, so a bench cannot time
//! errors by mistake.

use std::time::Instant;

use stepbox_sdk::kube::{self, KindRef};
use stepbox_sdk::{Context, Error, Result, run};

fn run(_ctx: &Context) -> Result<()> {
    let op = run::input("op").unwrap_or_else(|| "get".into());
    let count = run::u64_input("count", 1)?;
    let name = run::input("name").unwrap_or_else(|| "settings".into());
    let elapsed = match op.as_str() {
        "get" => {
            let kind = KindRef::new("v1", "ConfigMap");
            let started = Instant::now();
            for _ in 0..count {
                std::hint::black_box(kube::raw::get(&kind, &name)?);
            }
            started.elapsed()
        }
        "input" => {
            let started = Instant::now();
            for _ in 0..count {
                std::hint::black_box(run::input("op"));
            }
            started.elapsed()
        }
        "apply" => {
            let manifests = std::fs::read_to_string("/packages/manifests.yaml")
                .map_err(|e| Error::invalid(format!("reading /packages/manifests.yaml: {e}")))?;
            let started = Instant::now();
            for _ in 0..count {
                std::hint::black_box(kube::raw::apply(&manifests)?);
            }
            started.elapsed()
        }
        "none" => {
            let started = Instant::now();
            for i in 0..count {
                std::hint::black_box(i);
            }
            started.elapsed()
        }
        other => return Err(Error::invalid(format!("unknown op {other:?}"))),
    };
    run::set_output("elapsed-ns", elapsed.as_nanos().to_string())
}

stepbox_sdk::step!(run);
