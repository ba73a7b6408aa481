//! Steps and packages as OCI artifacts, against a real registry (Debian's
//! `docker-registry`, started per test on loopback) with the real binary:
//! push, pull by digest, run by tag and by digest, run again with the
//! registry gone, every way an artifact can be wrong, credentials, TLS,
//! cosign-format signatures, and interoperability with skopeo.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use stepbox_tests::registry::{Mode, Registry};
use stepbox_tests::{Invocation, guest, plan_of, repo_root, run_json, stepbox};

/// A blob cache and a compile cache of the test's own.
struct Caches {
    dir: tempfile::TempDir,
}

impl Caches {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `--oci-cache DIR --cache-dir DIR`.
    fn args(&self) -> Vec<String> {
        vec![
            "--oci-cache".into(),
            self.dir.path().join("oci").display().to_string(),
            "--cache-dir".into(),
            self.dir.path().join("components").display().to_string(),
        ]
    }
}

fn stepbox_with(args: &[&str], caches: &Caches) -> Invocation {
    let out = stepbox()
        .args(args)
        .args(caches.args())
        .env_remove("DOCKER_CONFIG")
        .env("HOME", caches.dir.path())
        .output()
        .expect("run stepbox");
    Invocation::from(out)
}

fn push(source: &Path, reference: &str, extra: &[&str], caches: &Caches) -> String {
    let mut args = vec!["push", source.to_str().unwrap(), reference];
    args.extend_from_slice(extra);
    let run = stepbox_with(&args, caches);
    assert_eq!(run.code, 0, "push {reference}: {}", run.all_output());
    let pinned = run.last_line();
    assert!(pinned.contains("@sha256:"), "{pinned}");
    pinned
}

fn deploy_step() -> PathBuf {
    repo_root().join("steps/deploy-manifests")
}

fn example() -> PathBuf {
    repo_root().join("steps/deploy-manifests/example")
}

fn run(step: &str, extra: &[&str], caches: &Caches) -> Invocation {
    let mut args = vec![
        "run",
        step,
        "--output",
        "json",
        "-n",
        "demo",
        "-i",
        "image=nginx:1.27",
    ];
    args.extend_from_slice(extra);
    stepbox_with(&args, caches)
}

#[test]
fn a_step_and_its_package_push_pull_and_run_by_digest_even_with_the_registry_gone() {
    let mut registry = Registry::start(Mode::Plain);
    let caches = Caches::new();
    let step = push(
        &deploy_step(),
        &registry.reference("steps/deploy:1"),
        &[],
        &caches,
    );
    let package = push(
        &example(),
        &registry.reference("pkgs/shop:1"),
        &["--package"],
        &caches,
    );
    assert!(
        step.starts_with(&registry.reference("steps/deploy@sha256:")),
        "{step}"
    );

    let first = run(&step, &["--package", &package], &caches);
    assert_eq!(first.code, 0, "{}", first.all_output());
    let report = first.report();
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["sources"]["step"]["reference"], step);
    assert_eq!(report["sources"]["package"]["reference"], package);
    // The same plan as the step and package from the repository.
    let local = run_json(
        &stepbox_tests::step("deploy-manifests"),
        &[
            "--package",
            example().to_str().unwrap(),
            "-n",
            "demo",
            "-i",
            "image=nginx:1.27",
        ],
    );
    assert_eq!(plan_of(&report), plan_of(&local.report()));

    // The registry is gone: the pulled step and package still run, and the
    // step is not compiled again (the compile cache has its sha256).
    registry.stop();
    let again = stepbox_with(
        &[
            "run",
            &step,
            "--package",
            &package,
            "-n",
            "demo",
            "-i",
            "image=nginx:1.27",
            "-vv",
            "--output",
            "json",
        ],
        &caches,
    );
    assert_eq!(again.code, 0, "{}", again.all_output());
    assert!(
        again.stderr.contains("cache=Hit"),
        "the second run loads the compiled step from the cache: {}",
        again.stderr
    );
    assert!(!again.stderr.contains("cache=Miss"), "{}", again.stderr);
}

#[test]
fn a_tag_is_resolved_once_and_the_digest_recorded_and_digests_can_be_required() {
    let registry = Registry::start(Mode::Plain);
    let caches = Caches::new();
    let tag = registry.reference("steps/hello:v1");
    let pinned = push(&guest("hello"), &tag, &[], &caches);
    let by_tag = run(&tag, &[], &caches);
    assert_eq!(by_tag.code, 0, "{}", by_tag.all_output());
    assert_eq!(by_tag.report()["sources"]["step"]["reference"], pinned);
    assert_eq!(
        by_tag.report()["sources"]["step"]["digest"],
        pinned.split('@').nth(1).unwrap()
    );

    let refused = run(&tag, &["--require-digest"], &caches);
    assert_eq!(refused.code, 2, "{}", refused.all_output());
    let error = refused.report()["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains(&tag) && error.contains("digests are required"),
        "{error}"
    );

    let policy = tempfile::tempdir().unwrap();
    let file = policy.path().join("policy.yaml");
    std::fs::write(
        &file,
        "apiVersion: stepbox.dev/v1alpha1\nkind: StepPolicy\nrequireDigest: true\nrules: []\n",
    )
    .unwrap();
    let refused = run(&tag, &["--policy", file.to_str().unwrap()], &caches);
    assert_eq!(refused.code, 2, "{}", refused.all_output());
    let by_digest = run(&pinned, &["--policy", file.to_str().unwrap()], &caches);
    assert_eq!(by_digest.code, 0, "{}", by_digest.all_output());
}

#[test]
fn a_wrong_digest_a_tampered_blob_and_a_missing_tag_are_clear_errors() {
    let registry = Registry::start(Mode::Plain);
    let caches = Caches::new();
    let pinned = push(
        &guest("hello"),
        &registry.reference("steps/hello:v1"),
        &[],
        &caches,
    );

    let wrong = registry.reference(&format!("steps/hello@sha256:{}", "0".repeat(64)));
    let r = run(&wrong, &[], &caches);
    assert_eq!(r.code, 2, "{}", r.all_output());
    let e = r.report()["error"].as_str().unwrap_or_default().to_string();
    assert!(
        e.contains(&wrong) && e.contains("not in the registry"),
        "{e}"
    );

    let missing = registry.reference("steps/hello:nope");
    let r = run(&missing, &[], &caches);
    assert_eq!(r.code, 2, "{}", r.all_output());
    assert!(
        r.report()["error"]
            .as_str()
            .unwrap_or_default()
            .contains(&missing)
    );

    // Change the component's bytes in the registry's storage: the pull
    // refuses them, and nothing of it is cached.
    let manifest = skopeo_manifest(&registry, &pinned, &[]);
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let file = registry.blob_file(&layer);
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let fresh = Caches::new();
    let r = run(&pinned, &[], &fresh);
    assert_eq!(r.code, 2, "{}", r.all_output());
    let e = r.report()["error"].as_str().unwrap_or_default().to_string();
    assert!(
        e.contains("does not match its digest") && e.contains("steps/hello"),
        "{e}"
    );
    assert!(
        !fresh
            .dir
            .path()
            .join("oci/blobs/sha256")
            .join(layer.trim_start_matches("sha256:"))
            .exists()
    );
}

/// The raw manifest of `reference`, read by skopeo.
fn skopeo_manifest(registry: &Registry, reference: &str, extra: &[&str]) -> Value {
    let mut args = vec!["inspect", "--raw", "--tls-verify=false"];
    args.extend_from_slice(extra);
    let target = format!("docker://{reference}");
    args.push(&target);
    let out = registry.skopeo(&args);
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn skopeo_reads_what_stepbox_pushed_and_stepbox_runs_what_another_client_pushed() {
    let registry = Registry::start(Mode::Plain);
    let caches = Caches::new();
    let pinned = push(
        &guest("hello"),
        &registry.reference("steps/hello:v1"),
        &[],
        &caches,
    );
    let manifest = skopeo_manifest(&registry, &pinned, &[]);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(manifest["layers"][0]["mediaType"], "application/wasm");
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
    let out = registry.skopeo(&[
        "inspect",
        "--config",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{pinned}"),
    ]);
    let config: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(config["os"], "wasip2");
    assert!(
        config["component"]["imports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i.as_str().unwrap().starts_with("stepbox:step/run")),
        "{config}"
    );

    // Another client uploads a component with the standard media types.
    let dir = oci_dir(
        &std::fs::read(guest("hello")).unwrap(),
        "application/vnd.wasm.config.v0+json",
        "application/wasm",
    );
    let other = registry.reference("steps/from-skopeo:1");
    let out = registry.skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("dir:{}", dir.path().display()),
        &format!("docker://{other}"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = run(&other, &[], &caches);
    assert_eq!(r.code, 0, "{}", r.all_output());
    assert_eq!(
        r.report()["outputs"]["greeting"],
        "hello from from-skopeo in demo"
    );
}

/// A skopeo `dir:` layout of one artifact: config `config_type`, one
/// layer of `layer_type` holding `layer`.
fn oci_dir(layer: &[u8], config_type: &str, layer_type: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config = serde_json::to_vec(&serde_json::json!({"created": "2026-12-06T00:00:00Z", "architecture": "wasm", "os": "wasip2",
        "layerDigests": [sha(layer)], "component": {"exports": [], "imports": [], "target": null}}))
    .unwrap();
    for bytes in [layer, config.as_slice()] {
        std::fs::write(
            dir.path().join(sha(bytes).trim_start_matches("sha256:")),
            bytes,
        )
        .unwrap();
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": config_type, "digest": sha(&config), "size": config.len()},
        "layers": [{"mediaType": layer_type, "digest": sha(layer), "size": layer.len()}],
    });
    std::fs::write(dir.path().join("manifest.json"), manifest.to_string()).unwrap();
    std::fs::write(
        dir.path().join("version"),
        "Directory Transport Version: 1.1\n",
    )
    .unwrap();
    dir
}

fn sha(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

#[test]
fn an_artifact_of_another_kind_or_size_is_refused_before_it_is_downloaded() {
    let registry = Registry::start(Mode::Plain);
    let caches = Caches::new();
    // An ordinary container image config: not a step.
    let dir = oci_dir(
        b"not a component",
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.oci.image.layer.v1.tar",
    );
    let image = registry.reference("images/app:1");
    let out = registry.skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("dir:{}", dir.path().display()),
        &format!("docker://{image}"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = run(&image, &[], &caches);
    assert_eq!(r.code, 2, "{}", r.all_output());
    let e = r.report()["error"].as_str().unwrap_or_default().to_string();
    assert!(e.contains(&image) && e.contains("is not a step"), "{e}");

    // A layer over the 64 MiB a component may be.
    let big = vec![0u8; 64 * 1024 * 1024 + 1];
    let dir = oci_dir(
        &big,
        "application/vnd.wasm.config.v0+json",
        "application/wasm",
    );
    let huge = registry.reference("steps/huge:1");
    let out = registry.skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("dir:{}", dir.path().display()),
        &format!("docker://{huge}"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = stepbox_with(&["pull", &huge], &caches);
    assert_eq!(r.code, 2, "{}", r.all_output());
    assert!(
        r.stderr
            .contains("more than the 67108864 bytes allowed: not downloaded"),
        "{}",
        r.stderr
    );
    assert!(
        !caches
            .dir
            .path()
            .join("oci/blobs/sha256")
            .join(sha(&big).trim_start_matches("sha256:"))
            .exists()
    );
}

#[test]
fn credentials_come_from_the_docker_config_and_a_missing_one_is_named() {
    let registry = Registry::start(Mode::Htpasswd);
    let caches = Caches::new();
    let reference = registry.reference("steps/hello:v1");
    let denied = stepbox_with(
        &["push", guest("hello").to_str().unwrap(), &reference],
        &caches,
    );
    assert_eq!(denied.code, 2, "{}", denied.all_output());
    assert!(
        denied.stderr.contains(&reference) && denied.stderr.contains("credentials"),
        "{}",
        denied.stderr
    );
    let config = registry.docker_config();
    let config = config.to_str().unwrap();
    let pinned = push(
        &guest("hello"),
        &reference,
        &["--registry-config", config],
        &caches,
    );
    let r = run(&pinned, &["--registry-config", config], &caches);
    assert_eq!(r.code, 0, "{}", r.all_output());
    // $DOCKER_CONFIG names the directory, as docker's does.
    let dir = Path::new(config).parent().unwrap().join("docker");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(config, dir.join("config.json")).unwrap();
    let out = stepbox()
        .args(["pull", &pinned])
        .args(Caches::new().args())
        .env("DOCKER_CONFIG", &dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_bearer_token_registry_takes_the_docker_config_credentials_at_its_token_server() {
    let registry = Registry::start(Mode::Token);
    let caches = Caches::new();
    let reference = registry.reference("steps/hello:v1");
    let denied = stepbox_with(
        &["push", guest("hello").to_str().unwrap(), &reference],
        &caches,
    );
    assert_eq!(denied.code, 2, "{}", denied.all_output());
    assert!(denied.stderr.contains(&reference), "{}", denied.stderr);
    assert_eq!(registry.tokens_issued(), 0);

    let config = registry.docker_config();
    let config = config.to_str().unwrap();
    let pinned = push(
        &guest("hello"),
        &reference,
        &["--registry-config", config],
        &caches,
    );
    assert!(
        registry.tokens_issued() > 0,
        "the push went through the token server"
    );
    let issued = registry.tokens_issued();
    let r = run(&pinned, &["--registry-config", config], &Caches::new());
    assert_eq!(r.code, 0, "{}", r.all_output());
    assert!(
        registry.tokens_issued() > issued,
        "the pull asked for a token of its own"
    );

    // A wrong password is refused by the token server, named as such.
    let wrong = Path::new(config).with_file_name("wrong.json");
    std::fs::write(
        &wrong,
        std::fs::read_to_string(config).unwrap().replace(
            &base64_auth("alice", "wonderland"),
            &base64_auth("alice", "nope"),
        ),
    )
    .unwrap();
    let refused = stepbox_with(
        &[
            "pull",
            &pinned,
            "--registry-config",
            wrong.to_str().unwrap(),
        ],
        &Caches::new(),
    );
    assert_eq!(refused.code, 2, "{}", refused.all_output());
    assert!(refused.stderr.contains("steps/hello"), "{}", refused.stderr);
}

fn base64_auth(user: &str, password: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

#[test]
fn a_tls_registry_needs_its_ca() {
    let registry = Registry::start(Mode::Tls);
    let caches = Caches::new();
    let reference = registry.reference("steps/hello:v1");
    let ca = registry.ca();
    let pinned = push(
        &guest("hello"),
        &reference,
        &["--registry-ca", ca.to_str().unwrap()],
        &caches,
    );
    let out = registry.skopeo(&[
        "inspect",
        "--raw",
        "--cert-dir",
        registry.cert_dir().to_str().unwrap(),
        &format!("docker://{pinned}"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let untrusted = stepbox_with(
        &["pull", &pinned, "--insecure-registry", "nothing.example"],
        &Caches::new(),
    );
    assert_eq!(untrusted.code, 2, "{}", untrusted.all_output());
}

fn openssl_key(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub"));
    let made = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl ecparam -genkey -name prime256v1 -noout | openssl pkcs8 -topk8 -nocrypt -out {} && openssl pkey -in {} -pubout -out {}",
            key.display(),
            key.display(),
            public.display()
        ))
        .status()
        .unwrap();
    assert!(made.success());
    (key, public)
}

#[test]
fn signed_steps_verify_and_others_do_not_run() {
    let registry = Registry::start(Mode::Plain);
    let caches = Caches::new();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = openssl_key(keys.path(), "ours");
    let (_, stranger) = openssl_key(keys.path(), "theirs");
    let signed = push(
        &guest("hello"),
        &registry.reference("steps/hello:signed"),
        &["--sign-key", key.to_str().unwrap()],
        &caches,
    );
    let ok = run(
        &signed,
        &["--verify-key", public.to_str().unwrap()],
        &caches,
    );
    assert_eq!(ok.code, 0, "{}", ok.all_output());

    let bad = run(
        &signed,
        &["--verify-key", stranger.to_str().unwrap()],
        &Caches::new(),
    );
    assert_eq!(bad.code, 2, "{}", bad.all_output());
    let e = bad.report()["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        e.contains("does not verify") && e.contains("steps/hello"),
        "{e}"
    );

    // Other content (an annotation of its own), so another digest: the
    // same bytes would be the same artifact, which is signed.
    let unsigned = push(
        &guest("hello"),
        &registry.reference("steps/hello:unsigned"),
        &["--annotation", "stepbox.test/copy=unsigned"],
        &caches,
    );
    assert_ne!(unsigned.split('@').nth(1), signed.split('@').nth(1));
    let r = run(
        &unsigned,
        &["--verify-key", public.to_str().unwrap()],
        &Caches::new(),
    );
    assert_eq!(r.code, 2, "{}", r.all_output());
    assert!(
        r.report()["error"]
            .as_str()
            .unwrap_or_default()
            .contains("is not signed")
    );

    // The signature is cosign's format: openssl verifies the payload with
    // the annotation's signature, as `cosign verify --key` would.
    let digest = signed.split('@').nth(1).unwrap();
    let sig_ref = registry.reference(&format!("steps/hello:{}.sig", digest.replace(':', "-")));
    let sig = skopeo_manifest(&registry, &sig_ref, &[]);
    let layer = &sig["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    let payload_file = registry.blob_file(layer["digest"].as_str().unwrap());
    let payload: Value = serde_json::from_slice(&std::fs::read(&payload_file).unwrap()).unwrap();
    assert_eq!(
        payload["critical"]["image"]["docker-manifest-digest"],
        digest
    );
    assert_eq!(
        payload["critical"]["type"],
        "cosign container image signature"
    );
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD
        .decode(
            layer["annotations"]["dev.cosignproject.cosign/signature"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    std::fs::write(keys.path().join("sig.der"), der).unwrap();
    let verified = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&public)
        .arg("-signature")
        .arg(keys.path().join("sig.der"))
        .arg(&payload_file)
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
}

#[test]
fn a_cosign_encrypted_key_signs_and_a_signature_made_elsewhere_verifies() {
    let registry = Registry::start(Mode::Plain);
    let caches = Caches::new();
    let fixtures = repo_root().join("tests/fixtures/cosign");
    let reference = registry.reference("steps/hello:cosign");
    let out = stepbox()
        .args([
            "push",
            guest("hello").to_str().unwrap(),
            &reference,
            "--sign-key",
        ])
        .arg(fixtures.join("cosign.key"))
        .args(caches.args())
        .env("COSIGN_PASSWORD", "stepbox-test")
        .output()
        .unwrap();
    let pushed = Invocation::from(out);
    assert_eq!(pushed.code, 0, "{}", pushed.all_output());
    let pinned = pushed.last_line();
    let ok = run(
        &pinned,
        &[
            "--verify-key",
            fixtures.join("cosign.pub").to_str().unwrap(),
        ],
        &caches,
    );
    assert_eq!(ok.code, 0, "{}", ok.all_output());

    let wrong = stepbox()
        .args([
            "push",
            guest("hello").to_str().unwrap(),
            &reference,
            "--sign-key",
        ])
        .arg(fixtures.join("cosign.key"))
        .args(caches.args())
        .env("COSIGN_PASSWORD", "not-it")
        .output()
        .unwrap();
    let wrong = Invocation::from(wrong);
    assert_eq!(wrong.code, 2, "{}", wrong.all_output());
    assert!(
        wrong.stderr.contains("cannot be opened with this password"),
        "{}",
        wrong.stderr
    );

    // A signature made by openssl, uploaded by skopeo in cosign's layout.
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = openssl_key(keys.path(), "elsewhere");
    let unsigned = push(
        &guest("hello"),
        &registry.reference("steps/hello:elsewhere"),
        &[],
        &caches,
    );
    let digest = unsigned.split('@').nth(1).unwrap().to_string();
    let payload = serde_json::to_vec(&serde_json::json!({"critical": {"identity": {"docker-reference": registry.reference("steps/hello")},
        "image": {"docker-manifest-digest": digest}, "type": "cosign container image signature"}, "optional": null})).unwrap();
    std::fs::write(keys.path().join("payload.json"), &payload).unwrap();
    let signed = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(&key)
        .arg("-out")
        .arg(keys.path().join("sig.der"))
        .arg(keys.path().join("payload.json"))
        .status()
        .unwrap();
    assert!(signed.success());
    use base64::Engine as _;
    let signature = base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(keys.path().join("sig.der")).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let config =
        br#"{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    for bytes in [payload.as_slice(), config.as_slice()] {
        std::fs::write(
            dir.path().join(sha(bytes).trim_start_matches("sha256:")),
            bytes,
        )
        .unwrap();
    }
    let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": sha(&payload), "size": payload.len(),
                    "annotations": {"dev.cosignproject.cosign/signature": signature}}]});
    std::fs::write(dir.path().join("manifest.json"), manifest.to_string()).unwrap();
    std::fs::write(
        dir.path().join("version"),
        "Directory Transport Version: 1.1\n",
    )
    .unwrap();
    let sig_ref = registry.reference(&format!("steps/hello:{}.sig", digest.replace(':', "-")));
    let out = registry.skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("dir:{}", dir.path().display()),
        &format!("docker://{sig_ref}"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ok = run(
        &unsigned,
        &["--verify-key", public.to_str().unwrap()],
        &Caches::new(),
    );
    assert_eq!(ok.code, 0, "{}", ok.all_output());
}
