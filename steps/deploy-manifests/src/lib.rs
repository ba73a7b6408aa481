//! `deploy-manifests`: applies every manifest of a package, the way
//! `kubectl apply -f DIR -R` followed by `kubectl rollout status` would, but
//! inside the run's namespace and policy.
//!
//! 1. Reads the package: a kustomization (input `kustomization`, a
//!    directory of the package, or the package itself when it holds a
//!    `kustomization.yaml`) rendered by the host's kustomize, else every
//!    `.yaml`, `.yml` and `.json` file under `/packages` (recursively,
//!    sorted by path, hidden files and directories skipped).
//! 2. Replaces `#{Name}` placeholders with the run's inputs; unknown names
//!    fail the run, listed per file.
//! 3. Parses every document of every file before anything is applied.
//! 4. Applies them all in one call, so the host checks every object against
//!    the policy before it applies any. With `prune=true` the objects carry
//!    the inventory's label and the inventory is applied with them.
//! 5. With `prune=true`, deletes what the inventory's last run applied and
//!    the package no longer holds (`prune`).
//! 6. Unless `wait=false`, waits for every applied Deployment, StatefulSet,
//!    DaemonSet and Job to roll out (complete, for a Job); when one does
//!    not, logs why (`diagnose`).

mod diagnose;
mod prune;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use stepbox_sdk::prelude::*;
use stepbox_sdk::serde_json::{Value, json};

const PACKAGES: &str = "/packages";
const APPLIED_FILE: &str = "/workspace/applied.json";

fn run(ctx: &Context) -> stepbox_sdk::Result<()> {
    let wait = run::bool_input("wait", true)?;
    let timeout = Duration::from_secs(run::u64_input("timeout", 300)?);
    let prune = run::bool_input("prune", false)?;
    let inputs = run::inputs();

    run::progress(0, "reading manifests");
    let (files, mut documents) = match kustomization(Path::new(PACKAGES))? {
        Some(dir) => {
            info!("rendering the kustomization {dir}");
            (1, rendered(&dir, &inputs)?)
        }
        None => load(Path::new(PACKAGES), &inputs)?,
    };
    if documents.is_empty() {
        return Err(Error::step(format!(
            "no manifests found under {PACKAGES}; pass --package DIR"
        )));
    }
    debug!("{} documents in {files} files", documents.len());
    run::progress(20, &format!("applying {} objects", documents.len()));

    let inventory = if prune {
        let id = run::input("inventory").unwrap_or_else(|| "default".into());
        let inventory = prune::Inventory::load(prune::inventory_id(&ctx.step_name, &id)?)?;
        inventory.label(&mut documents);
        Some(inventory)
    } else {
        None
    };
    let members = prune::Inventory::members(&documents);
    let mut manifests = documents
        .iter()
        .map(yaml::to_string)
        .collect::<stepbox_sdk::Result<Vec<_>>>()?;
    if let Some(inventory) = &inventory {
        // Listing the old objects too until they are pruned: a run that
        // fails half-way leaves nothing it made out of the inventory.
        let listed = prune::union(&members, &inventory.previous);
        manifests.push(yaml::to_string(&inventory.parent(&listed))?);
    }
    let mut applied = kube::apply(&manifests.join("\n---\n"))?;
    if inventory.is_some() {
        // The inventory itself is bookkeeping, not one of the package's.
        applied.pop();
    }
    for object in &applied {
        info!("{} {}", object.kubectl_name(), object.action);
    }
    run::progress(50, &format!("applied {} objects", applied.len()));

    if let Some(inventory) = &inventory {
        let gone = inventory.gone(&members);
        let deleted = inventory.prune(&gone)?;
        if !gone.is_empty() {
            kube::apply(&yaml::to_string(&inventory.parent(&members))?)
                .map_err(|e| e.context("writing the inventory"))?;
        }
        run::set_output("pruned", deleted.len().to_string())?;
    }

    if wait {
        let workloads: Vec<&Applied> = applied.iter().filter(|a| is_workload(a)).collect();
        for (i, workload) in workloads.iter().enumerate() {
            let name = workload.kubectl_name();
            let (waiting, done) = if workload.kind == "Job" {
                ("complete", "completed")
            } else {
                ("roll out", "rolled out")
            };
            info!(
                "waiting for {name} to {waiting} (timeout {}s)",
                timeout.as_secs()
            );
            if let Err(e) = kube::raw::wait(
                &workload.kind_ref(),
                &workload.name,
                &WaitFor::Rollout,
                timeout,
            ) {
                let why = diagnose::rollout(workload)
                    .map(|w| {
                        format!(" ({w}; the log has its conditions, events and container logs)")
                    })
                    .unwrap_or_default();
                return Err(e.context(format!("waiting for {name}{why}")));
            }
            let percent = 50 + 45 * (i + 1) / workloads.len();
            run::progress(
                u8::try_from(percent).unwrap_or(95),
                &format!("{name} {done}"),
            );
        }
    }

    let objects: Vec<Value> = applied
        .iter()
        .map(|a| json!({"apiVersion": a.api_version, "kind": a.kind, "name": a.name, "action": a.action.as_str()}))
        .collect();
    let objects = Value::Array(objects);
    run::set_output("applied", applied.len().to_string())?;
    run::set_output("objects", objects.to_string())?;
    publish(&objects);
    run::progress(100, "done");
    Ok(())
}

/// Reads, substitutes and parses every manifest under `root`: the number of
/// files and their documents, in order.
fn load(
    root: &Path,
    inputs: &BTreeMap<String, String>,
) -> stepbox_sdk::Result<(usize, Vec<Value>)> {
    let files = manifest_files(root)?;
    let mut texts = Vec::with_capacity(files.len());
    let mut unknown = Vec::new();
    for file in &files {
        let name = display_name(root, file);
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {name}"))?;
        match substitute(&text, inputs) {
            Ok(text) => texts.push((name, text)),
            Err(e) if e.is_invalid() => unknown.push(format!("{name}: {}", e.message())),
            Err(e) => return Err(e.context(name)),
        }
    }
    if !unknown.is_empty() {
        return Err(Error::invalid(unknown.join("; ")));
    }

    let mut documents = Vec::new();
    for (name, text) in &texts {
        let parsed = if name.to_ascii_lowercase().ends_with(".json") {
            json_documents(text)
        } else {
            yaml::documents(text)
        };
        documents.extend(parsed.context(name)?);
    }
    Ok((files.len(), documents))
}

/// The kustomization to render: input `kustomization` (a directory of the
/// package), else the package itself when it holds one; `None` for plain
/// manifests.
fn kustomization(root: &Path) -> stepbox_sdk::Result<Option<String>> {
    if let Some(dir) = run::input("kustomization").filter(|d| !d.is_empty()) {
        let dir = dir.trim_start_matches("./").trim_end_matches('/');
        let path = if dir.starts_with('/') {
            dir.to_string()
        } else {
            format!("{}/{dir}", root.display())
        };
        return Ok(Some(path));
    }
    let holds_one = ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .any(|f| root.join(f).is_file());
    Ok(holds_one.then(|| root.display().to_string()))
}

/// The documents a kustomization renders, with `#{Name}` placeholders
/// filled.
fn rendered(dir: &str, inputs: &BTreeMap<String, String>) -> stepbox_sdk::Result<Vec<Value>> {
    let text = kustomize::build(dir)?;
    let text = substitute(&text, inputs).map_err(|e| e.context(format!("kustomization {dir}")))?;
    yaml::documents(&text).map_err(|e| e.context(format!("kustomization {dir}")))
}

/// Writes the applied objects to the workspace and publishes them as the
/// artifact `applied`; a failure there is logged, not fatal: the objects are
/// applied and in the outputs already.
fn publish(objects: &Value) {
    let text = serde_json::to_string_pretty(objects).unwrap_or_else(|_| objects.to_string());
    if let Err(e) = std::fs::write(APPLIED_FILE, text + "\n") {
        warn!("could not write {APPLIED_FILE}: {e}");
        return;
    }
    if let Err(e) = run::artifact("applied", APPLIED_FILE) {
        warn!("could not publish the artifact applied: {e}");
    }
}

/// Every manifest file under `dir`, sorted by path. A missing `dir` has none.
fn manifest_files(dir: &Path) -> stepbox_sdk::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    if dir.is_dir() {
        collect(dir, dir, &mut files)?;
    }
    files.sort();
    Ok(files)
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) -> stepbox_sdk::Result<()> {
    let listing = || format!("listing {}", display_name(root, dir));
    for entry in std::fs::read_dir(dir).with_context(listing)? {
        let entry = entry.with_context(listing)?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry
            .file_type()
            .with_context(|| format!("reading {}", display_name(root, &path)))?;
        if kind.is_dir() {
            collect(root, &path, files)?;
        } else if is_manifest(&path) {
            files.push(path);
        }
    }
    Ok(())
}

fn is_manifest(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        ["yaml", "yml", "json"]
            .iter()
            .any(|m| e.eq_ignore_ascii_case(m))
    })
}

/// A path as the user knows it: relative to the package directory.
fn display_name(root: &Path, path: &Path) -> String {
    match path.strip_prefix(root) {
        Ok(p) if p.as_os_str().is_empty() => path.display().to_string(),
        Ok(p) => p.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

/// The JSON values of a `.json` file (one, or several one after another).
fn json_documents(text: &str) -> stepbox_sdk::Result<Vec<Value>> {
    let mut docs = Vec::new();
    for (index, doc) in serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .enumerate()
    {
        let doc = doc.map_err(|e| Error::invalid(format!("document {}: {e}", index + 1)))?;
        if !doc.is_null() {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// Objects that roll out: the workload kinds and Jobs.
fn is_workload(a: &Applied) -> bool {
    let group = a.api_version.split_once('/').map_or("", |(g, _)| g);
    matches!(
        (group, a.kind.as_str()),
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet") | ("batch", "Job")
    )
}

stepbox_sdk::step!(run);

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("example")
    }

    fn image(value: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("image".to_string(), value.to_string())])
    }

    #[test]
    fn the_example_holds_five_objects_with_the_image_substituted() {
        let (files, docs) = load(&example(), &image("nginx:1.27")).unwrap();
        assert!(files >= 3, "several files");
        let objects: Vec<(String, String)> = docs
            .iter()
            .map(|d| {
                (
                    d["kind"].as_str().unwrap().into(),
                    d["metadata"]["name"].as_str().unwrap().into(),
                )
            })
            .collect();
        let expected = [
            ("ConfigMap", "web-config"),
            ("Deployment", "web"),
            ("Service", "web"),
            ("Deployment", "worker"),
            ("Job", "migrate"),
        ];
        assert_eq!(
            objects,
            expected.map(|(k, n)| (k.to_string(), n.to_string()))
        );
        assert_eq!(docs[1]["spec"]["replicas"], 2);
        assert_eq!(
            docs[1]["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1.27"
        );
        assert!(!docs.iter().any(|d| d.to_string().contains("#{")));
    }

    #[test]
    fn unknown_inputs_are_listed_per_file() {
        let e = load(&example(), &BTreeMap::new()).unwrap_err();
        assert!(e.is_invalid());
        for file in [
            "10-web.yaml: unknown inputs: image",
            "20-worker.yaml",
            "30-migrate.yaml",
        ] {
            assert!(e.message().contains(file), "{e}");
        }
        assert!(!e.message().contains("00-config.yaml"), "{e}");
    }

    #[test]
    fn files_are_found_recursively_in_order_skipping_hidden_and_other_files() {
        let dir =
            std::env::temp_dir().join(format!("deploy-manifests-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (name, text) in [
            ("b/2.yml", "kind: B\n"),
            ("a.JSON", "{\"kind\": \"A1\"} {\"kind\": \"A2\"}"),
            ("b/1.yaml", "kind: B1\n---\n---\nkind: B2\n"),
            (".hidden/x.yaml", "kind: Hidden\n"),
            ("notes.txt", "kind: Text\n"),
            ("c/bad.yaml", "kind: C\n---\nkind: [unclosed\n"),
        ] {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let e = load(&dir, &BTreeMap::new()).unwrap_err();
        assert!(e.is_invalid());
        assert!(e.message().starts_with("c/bad.yaml: document 2: "), "{e}");
        std::fs::remove_file(dir.join("c/bad.yaml")).unwrap();
        let (files, docs) = load(&dir, &BTreeMap::new()).unwrap();
        assert_eq!(files, 3);
        let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["A1", "A2", "B1", "B2", "B"]);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            load(&dir, &BTreeMap::new()).unwrap(),
            (0, vec![]),
            "a missing directory has no manifests"
        );
    }

    #[test]
    fn workloads_are_the_kinds_that_roll_out() {
        let applied = |api_version: &str, kind: &str| Applied {
            api_version: api_version.into(),
            kind: kind.into(),
            name: "x".into(),
            action: Action::Created,
            resource_version: "1".into(),
        };
        assert!(is_workload(&applied("apps/v1", "Deployment")));
        assert!(is_workload(&applied("apps/v1", "StatefulSet")));
        assert!(is_workload(&applied("apps/v1", "DaemonSet")));
        assert!(is_workload(&applied("batch/v1", "Job")));
        assert!(!is_workload(&applied("batch/v1", "CronJob")));
        assert!(!is_workload(&applied("v1", "Service")));
        assert!(!is_workload(&applied("example.com/v1", "Deployment")));
    }
}
