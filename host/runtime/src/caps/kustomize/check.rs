//! What a kustomization may name, checked before kustomize runs: every
//! kustomization reachable from the one asked for, on the private copy.
//!
//! kustomize's own load restrictor (`LoadRestrictionsRootOnly`) keeps the
//! files a kustomization loads inside its directory, but not the bases it
//! names, which may be any directory; and it would fetch remote bases and
//! render helm charts. So the host refuses, naming the file and the field:
//!
//! - a path (resource, base, component, patch, generator file, ...) that
//!   leads outside the step's root (`/packages` or `/workspace`);
//! - a remote base or resource (a URL, `github.com/...`, `git@...`): the
//!   run has no network;
//! - `helmCharts`, `helmChartInflationGenerator`, `helmGlobals`: charts go
//!   through the `helm` interface, where every object is admitted;
//! - generators, transformers and validators that are KRM functions (exec
//!   or container plugins): a step may not run programs on the host.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use serde_yaml_ng::Value;

/// The names kustomize reads a kustomization from, in its order.
pub(super) const KUSTOMIZATION_FILES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Kustomizations followed at most (bases of bases...).
const MAX_KUSTOMIZATIONS: usize = 200;

/// Checks the kustomizations from `dir` down, inside `root`; `guest` shows
/// a host path as the step sees it. Returns every refusal (empty: all
/// allowed), or an `Err` for a kustomization that cannot be read.
pub(super) fn check(
    root: &Path,
    dir: &Path,
    guest: &dyn Fn(&Path) -> String,
) -> Result<Vec<String>, String> {
    let mut walk = Walk {
        root,
        guest,
        seen: HashSet::new(),
        refusals: Vec::new(),
    };
    walk.kustomization(dir, true)?;
    Ok(walk.refusals)
}

struct Walk<'a> {
    root: &'a Path,
    guest: &'a dyn Fn(&Path) -> String,
    seen: HashSet<PathBuf>,
    refusals: Vec<String>,
}

/// `base.join(rel)` with `.` and `..` resolved lexically (the copy holds
/// no links).
fn normalize(base: &Path, rel: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in base.join(rel).components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// A remote location kustomize would fetch.
fn is_remote(entry: &str) -> bool {
    entry.contains("://")
        || entry.starts_with("git@")
        || entry.starts_with("github.com/")
        || entry.starts_with("gitlab.com/")
        || entry.starts_with("bitbucket.org/")
        || entry.contains("?ref=")
        || entry.contains(".git//")
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::Sequence(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(s)) => vec![s.as_str()],
        _ => Vec::new(),
    }
}

fn items(v: Option<&Value>) -> impl Iterator<Item = &Value> {
    v.and_then(Value::as_sequence).into_iter().flatten()
}

impl Walk<'_> {
    fn refuse(&mut self, file: &Path, field: &str, why: String) {
        self.refusals
            .push(format!("{} {field}: {why}", (self.guest)(file)));
    }

    /// Checks that `entry` (a path relative to `dir`) stays inside the
    /// root; returns where it leads when it does.
    fn path(&mut self, file: &Path, dir: &Path, field: &str, entry: &str) -> Option<PathBuf> {
        if is_remote(entry) {
            self.refuse(
                file,
                field,
                format!("{entry:?} is remote; a run has no network: put the base into the package"),
            );
            return None;
        }
        if Path::new(entry).is_absolute() {
            self.refuse(
                file,
                field,
                format!("{entry:?} is an absolute path; name files relative to the kustomization"),
            );
            return None;
        }
        let target = normalize(dir, entry);
        if !target.starts_with(self.root) {
            let root = (self.guest)(self.root);
            self.refuse(
                file,
                field,
                format!("{entry:?} points outside {root}; a kustomization may only use files of the step's filesystem"),
            );
            return None;
        }
        Some(target)
    }

    fn kustomization(&mut self, dir: &Path, first: bool) -> Result<(), String> {
        if !self.seen.insert(dir.to_path_buf()) {
            return Ok(());
        }
        if self.seen.len() > MAX_KUSTOMIZATIONS {
            return Err(format!(
                "more than {MAX_KUSTOMIZATIONS} kustomizations are reachable from it"
            ));
        }
        let Some(file) = KUSTOMIZATION_FILES
            .iter()
            .map(|f| dir.join(f))
            .find(|f| f.is_file())
        else {
            return if first {
                Err(format!("{} holds no kustomization.yaml", (self.guest)(dir)))
            } else {
                // A directory of plain manifests is a resource kustomize
                // reads as such (it refuses it if it cannot).
                Ok(())
            };
        };
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("cannot read {}: {e}", (self.guest)(&file)))?;
        let doc: Value = serde_yaml_ng::from_str(&text)
            .map_err(|e| format!("{} is not valid YAML: {e}", (self.guest)(&file)))?;
        let Some(map) = doc.as_mapping() else {
            return Err(format!("{} is not a YAML mapping", (self.guest)(&file)));
        };
        let get = |k: &str| map.get(k);

        for field in ["helmCharts", "helmChartInflationGenerator", "helmGlobals"] {
            if get(field).is_some() {
                self.refuse(
                    &file,
                    field,
                    "helm charts are not rendered through kustomize; install them with the helm interface, where every object is admitted".into(),
                );
            }
        }
        for field in ["resources", "bases", "components"] {
            for entry in strings(get(field)) {
                if let Some(target) = self.path(&file, dir, field, entry)
                    && target.is_dir()
                {
                    self.kustomization(&target, false)?;
                }
            }
        }
        for field in ["crds", "configurations", "patchesStrategicMerge"] {
            for entry in strings(get(field))
                .into_iter()
                .filter(|e| !e.contains('\n'))
            {
                self.path(&file, dir, field, entry);
            }
        }
        for field in ["generators", "transformers", "validators"] {
            for entry in strings(get(field))
                .into_iter()
                .filter(|e| !e.contains('\n'))
            {
                if let Some(target) = self.path(&file, dir, field, entry) {
                    self.plugin(&file, field, &target)?;
                }
            }
            // Inline plugin configurations.
            for entry in items(get(field)).filter(|v| v.is_mapping()) {
                if is_function(entry) {
                    self.refuse(&file, field, FUNCTION.into());
                }
            }
        }
        for field in ["patches", "patchesJson6902", "replacements"] {
            for item in items(get(field)) {
                if let Some(p) = item.get("path").and_then(Value::as_str) {
                    self.path(&file, dir, field, p);
                }
            }
        }
        if let Some(p) = get("openapi")
            .and_then(|o| o.get("path"))
            .and_then(Value::as_str)
        {
            self.path(&file, dir, "openapi", p);
        }
        for field in ["configMapGenerator", "secretGenerator"] {
            for item in items(get(field)) {
                let mut paths: Vec<&str> = strings(item.get("files"))
                    .into_iter()
                    .map(|f| f.split_once('=').map_or(f, |(_, p)| p))
                    .collect();
                paths.extend(strings(item.get("envs")));
                paths.extend(strings(item.get("env")));
                for p in paths {
                    self.path(&file, dir, field, p);
                }
            }
        }
        Ok(())
    }

    /// A generator, transformer or validator file: refused when it is a
    /// KRM function (a program kustomize would run).
    fn plugin(&mut self, file: &Path, field: &str, target: &Path) -> Result<(), String> {
        if target.is_dir() {
            return self.kustomization(target, false);
        }
        let Ok(text) = std::fs::read_to_string(target) else {
            return Ok(());
        };
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            if let Ok(v) = Value::deserialize(doc)
                && is_function(&v)
            {
                self.refuse(file, field, FUNCTION.into());
            }
        }
        Ok(())
    }
}

use serde::Deserialize;

const FUNCTION: &str = "exec and container plugins (KRM functions) are not run: a step may not run programs on the host";

/// A plugin configuration that names a function to run.
fn is_function(v: &Value) -> bool {
    let annotations = v.get("metadata").and_then(|m| m.get("annotations"));
    let annotated = ["config.kubernetes.io/function", "config.k8s.io/function"]
        .iter()
        .any(|k| annotations.and_then(|a| a.get(*k)).is_some());
    let spec_fn = v.get("spec").and_then(|s| s.get("function")).is_some();
    annotated || spec_fn
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let p = d.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        d
    }

    fn refusals(d: &tempfile::TempDir, dir: &str) -> Vec<String> {
        let root = d.path().to_path_buf();
        let guest = |p: &Path| format!("/packages/{}", p.strip_prefix(&root).unwrap().display());
        check(d.path(), &d.path().join(dir), &guest).unwrap()
    }

    #[test]
    fn overlays_and_generators_inside_the_root_pass() {
        let d = tree(&[
            ("base/kustomization.yaml", "resources: [web.yaml]\n"),
            ("base/web.yaml", "kind: ConfigMap\n"),
            (
                "overlays/prod/kustomization.yaml",
                "resources: [../../base]\nnamePrefix: prod-\npatches: [{path: replicas.yaml}]\n\
                 configMapGenerator: [{name: cfg, files: [app.properties, key=other.txt], envs: [vars.env]}]\n",
            ),
        ]);
        assert_eq!(refusals(&d, "overlays/prod"), Vec::<String>::new());
    }

    #[test]
    fn paths_out_of_the_root_remote_bases_helm_and_functions_are_refused() {
        let d = tree(&[
            (
                "k/kustomization.yaml",
                "resources: [../../etc, https://github.com/x/y//base?ref=v1, github.com/x/y]\n\
                 helmCharts: [{name: web}]\n\
                 configMapGenerator: [{name: c, files: [pw=../../../etc/passwd]}]\n\
                 generators: [fn.yaml]\n",
            ),
            (
                "k/fn.yaml",
                "apiVersion: v1\nkind: X\nmetadata:\n  name: f\n  annotations:\n    config.kubernetes.io/function: |\n      exec: {path: /bin/sh}\n",
            ),
        ]);
        let r = refusals(&d, "k");
        let all = r.join("\n");
        assert!(
            all.contains("resources: \"../../etc\" points outside /packages/"),
            "{all}"
        );
        assert!(all.contains("is remote; a run has no network"), "{all}");
        assert!(
            all.contains("helmCharts: helm charts are not rendered"),
            "{all}"
        );
        assert!(
            all.contains("configMapGenerator: \"../../../etc/passwd\" points outside"),
            "{all}"
        );
        assert!(
            all.contains("generators: exec and container plugins"),
            "{all}"
        );
        assert_eq!(r.len(), 6, "{all}");
    }

    #[test]
    fn a_directory_without_a_kustomization_is_an_error() {
        let d = tree(&[("x/a.yaml", "kind: A\n")]);
        let root = d.path().to_path_buf();
        let guest = |p: &Path| p.strip_prefix(&root).unwrap().display().to_string();
        let e = check(d.path(), &d.path().join("x"), &guest).unwrap_err();
        assert!(e.contains("holds no kustomization.yaml"), "{e}");
    }
}
