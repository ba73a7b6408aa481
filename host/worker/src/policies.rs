//! The policies a worker runs StepRuns with: named StepPolicy files of
//! its own configuration (the chart's policies ConfigMap, mounted as a
//! directory). A StepRun names one; it can never bring its own.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use stepbox::policy::Policy;

use crate::Error;

/// Named policies and the default one.
#[derive(Debug, Clone)]
pub struct PolicySet {
    policies: BTreeMap<String, Arc<Policy>>,
    default: String,
}

impl PolicySet {
    /// `policies` with `default` the one a StepRun that names none gets.
    ///
    /// # Errors
    /// [`Error::Config`] when `default` is not among them.
    pub fn new(policies: BTreeMap<String, Policy>, default: &str) -> Result<Self, Error> {
        if !policies.contains_key(default) {
            return Err(Error::Config(format!(
                "the default policy {default:?} is not among the policies ({}); \
                 pass --default-policy with one of them",
                list(policies.keys())
            )));
        }
        Ok(Self {
            policies: policies
                .into_iter()
                .map(|(k, v)| (k, Arc::new(v)))
                .collect(),
            default: default.to_string(),
        })
    }

    /// Every `NAME.yaml` (or `.yml`, `.json`) StepPolicy file of `dir`, named
    /// NAME. Hidden entries (a mounted ConfigMap's `..data`) are skipped.
    ///
    /// # Errors
    /// [`Error::Config`] naming the directory or the file that is wrong.
    pub fn load_dir(dir: &Path, default: &str) -> Result<Self, Error> {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            Error::Config(format!(
                "cannot read the policies directory {}: {e} (pass --policies DIR holding NAME.yaml StepPolicy files)",
                dir.display()
            ))
        })?;
        let mut policies = BTreeMap::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if file_name.starts_with('.') {
                continue;
            }
            let Some((name, ext)) = file_name.rsplit_once('.') else {
                continue;
            };
            if !matches!(ext, "yaml" | "yml" | "json") || !path.is_file() {
                continue;
            }
            let policy = Policy::load(&path)
                .map_err(|e| Error::Config(format!("policy file {}: {e}", path.display())))?;
            policies.insert(name.to_string(), policy);
        }
        if policies.is_empty() {
            return Err(Error::Config(format!(
                "the policies directory {} holds no NAME.yaml StepPolicy file",
                dir.display()
            )));
        }
        Self::new(policies, default)
    }

    /// The policy `name` names (the default for `None`), with its name.
    ///
    /// # Errors
    /// A message naming the unknown policy and the known ones.
    pub fn get(&self, name: Option<&str>) -> Result<(&str, Arc<Policy>), String> {
        let name = name.unwrap_or(&self.default);
        match self.policies.get_key_value(name) {
            Some((k, p)) => Ok((k.as_str(), p.clone())),
            None => Err(format!(
                "spec.policy {name:?} is not a policy of this worker (it has: {})",
                list(self.policies.keys())
            )),
        }
    }

    /// The policies by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Policy)> {
        self.policies.iter().map(|(k, v)| (k.as_str(), v.as_ref()))
    }

    /// The default policy's name.
    pub fn default_name(&self) -> &str {
        &self.default
    }
}

fn list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    names.map(String::as_str).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOYER: &str = "apiVersion: stepbox.dev/v1alpha1\nkind: StepPolicy\nrules:\n- {apiGroups: [''], resources: [configmaps], verbs: [get, create]}\n";

    #[test]
    fn a_directory_of_policy_files_as_a_configmap_mounts_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("..2026_12_07")).unwrap();
        std::fs::write(dir.path().join("..2026_12_07/deployer.yaml"), DEPLOYER).unwrap();
        std::os::unix::fs::symlink("..2026_12_07", dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/deployer.yaml", dir.path().join("deployer.yaml"))
            .unwrap();
        std::fs::write(dir.path().join("README"), "not a policy").unwrap();
        let set = PolicySet::load_dir(dir.path(), "deployer").unwrap();
        assert_eq!(set.iter().map(|(n, _)| n).collect::<Vec<_>>(), ["deployer"]);
        let (name, policy) = set.get(None).unwrap();
        assert_eq!(name, "deployer");
        assert_eq!(policy.rules.len(), 1);
        let e = set.get(Some("admin")).unwrap_err();
        assert!(e.contains("\"admin\"") && e.contains("deployer"), "{e}");
    }

    #[test]
    fn a_missing_default_or_a_broken_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("deployer.yaml"), DEPLOYER).unwrap();
        let e = PolicySet::load_dir(dir.path(), "default")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"default\"") && e.contains("--default-policy"),
            "{e}"
        );
        std::fs::write(dir.path().join("broken.yaml"), "rules: 3").unwrap();
        let e = PolicySet::load_dir(dir.path(), "deployer")
            .unwrap_err()
            .to_string();
        assert!(e.contains("broken.yaml"), "{e}");
        let empty = tempfile::tempdir().unwrap();
        let e = PolicySet::load_dir(empty.path(), "default")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no NAME.yaml"), "{e}");
    }
}
