//! `stepbox push` and `stepbox pull`, and steps and packages named by
//! reference in `stepbox run` and `stepbox inspect`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use stepbox::Runtime;
use stepbox::engine::MAX_COMPONENT_BYTES;
use stepbox::report::{Pinned, Sources};
use stepbox_oci::artifact::{Artifact, ComponentDescription, Kind};
use stepbox_oci::sign::{PrivateKey, PublicKey};
use stepbox_oci::{BlobCache, Distribution, PullOptions, Pulled, Reference, RegistryOptions};

/// How to reach registries (for push, pull, run and inspect).
#[derive(Debug, Args, Clone, Default)]
pub struct RegistryArgs {
    /// The docker config file with registry credentials [default:
    /// $DOCKER_CONFIG/config.json, else ~/.docker/config.json].
    #[arg(long, value_name = "FILE", global = true)]
    registry_config: Option<PathBuf>,
    /// Reach this registry (HOST or HOST:PORT) over plain HTTP (loopback
    /// registries are, unless --registry-ca is given). Repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST", global = true)]
    insecure: Vec<String>,
    /// Trust this CA certificate (PEM) for registries. Repeatable.
    #[arg(long = "registry-ca", value_name = "FILE", global = true)]
    ca: Vec<PathBuf>,
    /// Where pulled blobs are kept [default: $STEPBOX_OCI_CACHE, else ~/.cache/stepbox/oci].
    #[arg(long, value_name = "DIR", global = true)]
    oci_cache: Option<PathBuf>,
}

impl RegistryArgs {
    /// The distribution client these options make.
    pub fn distribution(&self) -> Distribution {
        Distribution::new(
            RegistryOptions {
                config: self.registry_config.clone(),
                insecure: self.insecure.clone(),
                ca_files: self.ca.clone(),
            },
            BlobCache::new(
                self.oci_cache
                    .clone()
                    .unwrap_or_else(BlobCache::default_dir),
            ),
        )
    }
}

/// What a pull checks (for pull and run).
#[derive(Debug, Args, Clone, Default)]
pub struct VerifyArgs {
    /// Verify the cosign-format signature of the step (and package) with
    /// this public key (PEM, as cosign.pub); one that fails is not used.
    #[arg(long, value_name = "FILE")]
    verify_key: Option<PathBuf>,
    /// Refuse references by tag: only REF@sha256:… (also the policy's
    /// `requireDigest`).
    #[arg(long)]
    require_digest: bool,
}

impl VerifyArgs {
    /// The pull options, `require_digest` also when the policy says so.
    pub fn pull_options(&self, require_digest: bool, max_layer: u64) -> Result<PullOptions> {
        let verify_key = match &self.verify_key {
            Some(p) => Some(PublicKey::load(p)?),
            None => None,
        };
        Ok(PullOptions {
            require_digest: self.require_digest || require_digest,
            verify_key,
            max_layer,
        })
    }
}

/// Options of `stepbox push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The step (a .wasm component or a step directory, built first), or
    /// with --package the package directory.
    source: PathBuf,
    /// Where to push: REGISTRY/REPOSITORY[:TAG] (`oci://` optional).
    reference: String,
    /// Push SOURCE as a package (a directory the step sees as /packages).
    #[arg(long)]
    package: bool,
    /// Sign the artifact in cosign's key-based format with this private key
    /// (cosign.key, encrypted with $COSIGN_PASSWORD, or a PKCS#8/SEC1 PEM).
    #[arg(long, value_name = "FILE")]
    sign_key: Option<PathBuf>,
    /// An annotation for the manifest, KEY=VALUE (repeatable).
    #[arg(long = "annotation", value_name = "KEY=VALUE", value_parser = crate::parse_key_value)]
    annotations: Vec<(String, String)>,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    cache: crate::CacheArgs,
}

impl PushArgs {
    /// The compile cache (the step is loaded to check it before upload).
    pub fn cache(&self) -> &crate::CacheArgs {
        &self.cache
    }
}

/// Options of `stepbox pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// REGISTRY/REPOSITORY:TAG or …@sha256:DIGEST.
    reference: String,
    /// The reference is a package.
    #[arg(long)]
    package: bool,
    #[command(flatten)]
    verify: VerifyArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    cache: crate::CacheArgs,
}

/// `stepbox push`: prints `REF@sha256:…` as its last line.
pub async fn push(args: PushArgs, runtime: &Runtime) -> Result<u8> {
    let reference = Reference::parse(&args.reference)?;
    if reference.digest().is_some() {
        bail!(
            "push to a tag or a repository, not to a digest ({reference}): the digest is the content's"
        );
    }
    let key = match &args.sign_key {
        Some(p) => Some(PrivateKey::load(p, None)?),
        None => None,
    };
    let annotations: BTreeMap<String, String> = args.annotations.iter().cloned().collect();
    let title = title_of(&args.source);
    let artifact = if args.package {
        let tar = stepbox_oci::package::pack(&args.source)?;
        Artifact::package(tar, &title, annotations)
    } else {
        let wasm = if args.source.is_dir() {
            let opts = crate::build::BuildOptions {
                release: true,
                show_progress: true,
                toolchains: args.cache.toolchains(),
            };
            crate::build::build_step(&args.source, &opts)?
        } else {
            args.source.clone()
        };
        // The world is checked before anything is uploaded.
        let step = runtime.load_file(&wasm)?;
        let bytes =
            std::fs::read(&wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
        let info = &step.info;
        let description = ComponentDescription {
            imports: info.imports.iter().map(|i| i.name.clone()).collect(),
            exports: info.exports.iter().map(|e| e.name.clone()).collect(),
            target: Some("stepbox:step/step@0.1.0".into()),
        };
        Artifact::step(bytes, &description, &title, annotations)
    };
    let pinned = args
        .registry
        .distribution()
        .push(&reference, &artifact, key.as_ref())
        .await?;
    if key.is_some() {
        eprintln!("signed {pinned}");
    }
    println!("{pinned}");
    Ok(0)
}

/// `stepbox pull`: prints where the artifact is, and its pinned reference
/// last. A step is also compiled into the compile cache, so its first run
/// starts at once.
pub async fn pull(args: PullArgs) -> Result<u8> {
    let reference = Reference::parse(&args.reference)?;
    let kind = if args.package {
        Kind::Package
    } else {
        Kind::Step
    };
    let opts = args.verify.pull_options(false, max_layer(kind))?;
    let pulled = args
        .registry
        .distribution()
        .pull(&reference, kind, &opts)
        .await?;
    note_offline(&pulled);
    if kind == Kind::Step {
        args.cache.runtime()?.load_file(&pulled.path)?;
    }
    eprintln!("{}", pulled.path.display());
    println!("{}", pulled.reference);
    Ok(0)
}

fn max_layer(kind: Kind) -> u64 {
    match kind {
        Kind::Step => MAX_COMPONENT_BYTES,
        Kind::Package => stepbox_oci::package::MAX_PACKAGE_BYTES,
    }
}

fn note_offline(pulled: &Pulled) {
    if pulled.offline_tag {
        eprintln!(
            "warning: the registry could not be reached; using {}, which the tag named when last resolved",
            pulled.reference
        );
    }
}

fn title_of(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().replace('_', "-"))
        .unwrap_or_else(|| "step".into())
}

/// A step or package argument: the file or directory to use.
pub struct Resolved {
    /// The file or directory.
    pub path: PathBuf,
    /// Where it was pulled from (`None`: a path).
    pub source: Option<Pinned>,
    /// Keeps a pulled artifact from `stepbox cache prune` in another
    /// process while this lives: keep it until the command is done.
    _hold: Option<stepbox_oci::CacheHold>,
}

/// A step argument of `run`/`inspect`: a file or directory, or a
/// reference pulled into the cache (announced on stderr unless `quiet`).
pub async fn resolve_step(
    arg: &str,
    registry: &RegistryArgs,
    verify: &VerifyArgs,
    policy_requires_digest: bool,
    quiet: bool,
) -> Result<Resolved> {
    let require = policy_requires_digest;
    resolve(arg, Kind::Step, registry, verify, require, quiet).await
}

/// A `--package` argument: a directory, or a package reference pulled and
/// unpacked into the cache.
pub async fn resolve_package(
    arg: &str,
    registry: &RegistryArgs,
    verify: &VerifyArgs,
    policy_requires_digest: bool,
    quiet: bool,
) -> Result<Resolved> {
    let require = policy_requires_digest;
    resolve(arg, Kind::Package, registry, verify, require, quiet).await
}

/// `arg` as a path, or the reference of a `kind` artifact pulled (and
/// announced on stderr unless `quiet`).
async fn resolve(
    arg: &str,
    kind: Kind,
    registry: &RegistryArgs,
    verify: &VerifyArgs,
    policy_requires_digest: bool,
    quiet: bool,
) -> Result<Resolved> {
    if !Reference::is_reference(arg) {
        return Ok(Resolved {
            path: PathBuf::from(arg),
            source: None,
            _hold: None,
        });
    }
    let pulled = pull_kind(arg, kind, registry, verify, policy_requires_digest).await?;
    if !quiet {
        let noun = match kind {
            Kind::Step => "step",
            Kind::Package => "package",
        };
        eprintln!("{noun} {}", pulled.reference);
    }
    Ok(Resolved {
        source: Some(pinned(&pulled)),
        path: pulled.path,
        _hold: Some(pulled.hold),
    })
}

async fn pull_kind(
    arg: &str,
    kind: Kind,
    registry: &RegistryArgs,
    verify: &VerifyArgs,
    require: bool,
) -> Result<Pulled> {
    let reference = Reference::parse(arg)?;
    let opts = verify.pull_options(require, max_layer(kind))?;
    let pulled = registry
        .distribution()
        .pull(&reference, kind, &opts)
        .await?;
    note_offline(&pulled);
    Ok(pulled)
}

fn pinned(p: &Pulled) -> Pinned {
    Pinned {
        reference: p.reference.to_string(),
        digest: p.digest.clone(),
    }
}

/// The report's record of where a run's step and package came from.
pub fn sources(step: Option<Pinned>, package: Option<Pinned>) -> Sources {
    Sources { step, package }
}
