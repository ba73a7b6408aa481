//! `stepbox rbac`: the namespaced Role (and RoleBinding) some steps need on
//! a cluster, from what they declare (`stepbox:needs`), as YAML for
//! `kubectl apply`; and the steps' declarations for `stepbox check --step`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use stepbox::needs::role::{self, DeclaredStep, NeededRules};
use stepbox::policy::Policy;

use crate::{CacheArgs, build, oci};

/// `stepbox rbac STEP… --namespace NS [--policy P] [--service-account SA]`.
#[derive(Debug, Args)]
pub struct RbacArgs {
    /// The steps: .wasm components, step directories (built first) or
    /// references pulled into the blob cache. The Role grants what any of
    /// them declares.
    #[arg(required = true, value_name = "STEP")]
    steps: Vec<String>,
    /// The namespace the Role is for.
    #[arg(long, short = 'n')]
    namespace: String,
    /// Keep only what this policy grants (a need the policy refuses is
    /// refused to the step anyway); it also stands in for steps that
    /// declare nothing.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Also print a RoleBinding of the Role to this service account of the
    /// namespace.
    #[arg(long, value_name = "NAME")]
    service_account: Option<String>,
    /// The name of the Role (and RoleBinding).
    #[arg(long, default_value = "stepbox-steps")]
    name: String,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    registry: oci::RegistryArgs,
}

/// Prints the Role (and RoleBinding) as YAML documents on stdout; notes
/// (what was left out and why) go to stderr.
pub async fn rbac(args: RbacArgs) -> Result<u8> {
    let policy = args
        .policy
        .as_deref()
        .map(|p| Policy::load(p).with_context(|| format!("policy {}", p.display())))
        .transpose()?;
    let steps = declared_steps(&args.steps, &args.cache, &args.registry).await?;
    let needed = needed(&steps, policy.as_ref(), &args.namespace)?;
    let objects = role::role_objects(
        &args.name,
        &args.namespace,
        &needed.rules,
        args.service_account.as_deref(),
    );
    let mut out = String::new();
    for object in &objects {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(object).context("cannot write the Role as YAML")?);
    }
    print!("{out}");
    Ok(0)
}

/// The rules `steps` need in `namespace` (within `policy`), with the notes
/// printed to stderr.
pub fn needed(
    steps: &[DeclaredStep],
    policy: Option<&Policy>,
    namespace: &str,
) -> Result<NeededRules> {
    let needed = role::needed_rules(steps, policy, namespace)?;
    for note in &needed.notes {
        eprintln!("note: {note}");
    }
    Ok(needed)
}

/// Each step argument's declaration: a component is read, a directory
/// built first, a reference pulled.
pub async fn declared_steps(
    steps: &[String],
    cache: &CacheArgs,
    registry: &oci::RegistryArgs,
) -> Result<Vec<DeclaredStep>> {
    let mut declared = Vec::with_capacity(steps.len());
    for arg in steps {
        let step =
            oci::resolve_step(arg, registry, &oci::VerifyArgs::default(), false, false).await?;
        let wasm = component_of(&step.path, cache)?;
        let bytes =
            std::fs::read(&wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
        let needs = stepbox::needs::section::read(&bytes).with_context(|| {
            format!(
                "{}: fix the declaration (its step.yaml or stepbox_sdk::needs!) and build it again",
                wasm.display()
            )
        })?;
        declared.push(DeclaredStep {
            name: arg.clone(),
            needs,
        });
    }
    Ok(declared)
}

/// The component of a step argument: the file, or a directory's build.
fn component_of(path: &Path, cache: &CacheArgs) -> Result<PathBuf> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let opts = build::BuildOptions {
        release: true,
        show_progress: true,
        toolchains: cache.toolchains(),
    };
    build::build_step(path, &opts)
}
