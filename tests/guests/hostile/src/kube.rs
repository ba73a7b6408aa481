//! Kubernetes attacks: the namespace, cluster-scoped kinds, RBAC escalation,
//! kinds outside the policy, and manifests built to hurt the parser.
//!
//! Data-driven cases take their manifest, kind and name from inputs
//! (`manifest`, `api-version`, `kind`, `name`, `patch`, `selector`); the
//! generated ones build their text here.

use std::time::Duration;

use stepbox_sdk::kube::{self, KindRef, WaitFor, raw};
use stepbox_sdk::{Context, Error, Result, run};

use crate::record;

fn kind() -> Result<KindRef> {
    Ok(KindRef::new(
        run::require_input("api-version")?,
        run::require_input("kind")?,
    ))
}

pub(crate) fn run(ctx: &Context, case: &str) -> Result<()> {
    match case {
        // Apply `manifest`; outputs `applied` (the number of objects).
        "kube-apply" => {
            let r = kube::apply(&run::require_input("manifest")?);
            run::set_output("applied", r.as_ref().map_or(0, Vec::len).to_string())?;
            record(&r)
        }
        // List `kind` (with `selector`); outputs `names`: "namespace/name,...".
        "kube-list" => {
            let r = raw::list(&kind()?, run::input("selector").as_deref());
            if let Ok(items) = &r {
                let names: Vec<String> = items
                    .iter()
                    .map(|json| {
                        let v: stepbox_sdk::serde_json::Value =
                            stepbox_sdk::serde_json::from_str(json).unwrap_or_default();
                        format!(
                            "{}/{}",
                            v["metadata"]["namespace"].as_str().unwrap_or(""),
                            v["metadata"]["name"].as_str().unwrap_or("")
                        )
                    })
                    .collect();
                run::set_output("names", names.join(","))?;
            }
            record(&r)
        }
        "kube-get" => record(&raw::get(&kind()?, &run::require_input("name")?)),
        "kube-delete" => record(&raw::delete(&kind()?, &run::require_input("name")?)),
        "kube-patch" => record(&raw::patch(
            &kind()?,
            &run::require_input("name")?,
            &run::require_input("patch")?,
        )),
        // "Billion laughs": nine levels of nine aliases each.
        "kube-yaml-bomb" => {
            let mut text = String::from(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\nx0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
            );
            for i in 1..10 {
                let p = i - 1;
                text.push_str(&format!(
                    "x{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
                ));
            }
            text.push_str("data: {k: *a9}\n");
            record(&kube::apply(&text))
        }
        // A ConfigMap whose data value nests 10,000 JSON objects deep.
        "kube-deep-json" => {
            let depth = 10_000;
            let text = format!(
                "{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"deep\"}},\"data\":{}{}}}",
                "{\"a\":".repeat(depth) + "1",
                "}".repeat(depth)
            );
            record(&kube::apply(&text))
        }
        // The same depth in a merge patch.
        "kube-deep-patch" => {
            let depth = 10_000;
            let patch = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
            record(&raw::patch(
                &KindRef::new("v1", "ConfigMap"),
                &run::require_input("name")?,
                &patch,
            ))
        }
        // One ConfigMap of 9 MiB.
        "kube-oversized" => {
            let text = format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: huge}}\ndata:\n  big: {}\n",
                "x".repeat(9 << 20)
            );
            record(&kube::apply(&text))
        }
        // Get an object with a 64 KiB name, forever: every call leaves an
        // audit line in the host.
        "kube-flood" => {
            let name = "n".repeat(64 << 10);
            let cm = KindRef::new("v1", "ConfigMap");
            loop {
                let _ = raw::get(&cm, &name);
            }
        }
        // Wait for an object that never comes, with the longest timeout the
        // interface allows.
        "kube-wait-forever" => record(&raw::wait(
            &KindRef::new("v1", "ConfigMap"),
            "never",
            &WaitFor::Exists,
            Duration::from_secs(u64::from(u32::MAX)),
        )),
        _ => {
            let _ = ctx;
            Err(Error::invalid(format!("unknown case {case:?}")))
        }
    }
}
