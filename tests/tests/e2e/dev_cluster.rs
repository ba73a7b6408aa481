//! `stepbox dev-cluster`: the embedded namespace served as a Kubernetes API,
//! driven by real clients: the real `kubectl` 1.33 binary and kube-rs.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use serde_json::json;
use stepbox::apiserver::{Auth, DevCluster};
use stepbox::cluster::MemoryCluster;
use stepbox_tests::{
    DevClusterProcess, Invocation, dir_with, example_manifests, helm_bin, plan_of, run_json, step,
    stepbox_run,
};

/// Runs a command, failing the test if it takes longer than `limit` (a
/// hanging `kubectl delete --wait` or `rollout status` must not hang CI).
pub(crate) fn run_within(mut cmd: Command, limit: Duration) -> Invocation {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = cmd
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} did not finish within {limit:?}:\n{}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Invocation {
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
    }
}

pub(crate) fn ok(run: &Invocation, what: &str) {
    assert_eq!(run.code, 0, "{what} failed:\n{}", run.all_output());
}

pub(crate) async fn kube_client(kubeconfig: &Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).expect("read kubeconfig");
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .expect("kubeconfig");
    kube::Client::try_from(config).expect("client")
}

pub(crate) fn kube_client_from_yaml(yaml: &str) -> impl Future<Output = kube::Client> {
    let kc = kube::config::Kubeconfig::from_yaml(yaml).expect("parse kubeconfig");
    async move {
        let config =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .expect("kubeconfig");
        kube::Client::try_from(config).expect("client")
    }
}

#[test]
fn kubectl_applies_lists_diffs_rolls_out_and_deletes_a_directory_of_manifests() {
    let server = DevClusterProcess::start(&[]);
    let manifests = example_manifests("nginx:1.27");
    let dir = manifests.path().to_str().unwrap();

    // Client-side apply: no --validate=false needed.
    let run = server.kubectl_run(["apply", "-f", dir]);
    ok(&run, "kubectl apply");
    for line in [
        "configmap/web-config created",
        "deployment.apps/web created",
        "service/web created",
        "deployment.apps/worker created",
        "job.batch/migrate created",
    ] {
        assert!(run.stdout.contains(line), "{line} not in:\n{}", run.stdout);
    }
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);

    let run = server.kubectl_run(["get", "deploy,svc,cm,job"]);
    ok(&run, "kubectl get");
    for name in [
        "deployment.apps/web",
        "deployment.apps/worker",
        "service/web",
        "configmap/web-config",
        "job.batch/migrate",
    ] {
        assert!(
            run.stdout.contains(name),
            "{name} not listed:\n{}",
            run.stdout
        );
    }
    assert!(run.stdout.contains("2/2"), "web is ready:\n{}", run.stdout);
    assert!(
        run.stdout.contains("Complete"),
        "the job completed:\n{}",
        run.stdout
    );

    // The object as stored: kubectl's last-applied annotation.
    let run = server.kubectl_run(["get", "deployment", "web", "-o", "json"]);
    ok(&run, "kubectl get -o json");
    let web: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(
        web["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );
    assert_eq!(
        web["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );

    let run = server.kubectl_run(["apply", "-f", dir]);
    ok(&run, "second kubectl apply");
    assert_eq!(run.stdout.matches("unchanged").count(), 5, "{}", run.stdout);

    // diff: nothing after an apply of the same files; a diff after a change.
    let run = run_within(
        server.kubectl_with(["diff", "-f", dir]),
        Duration::from_secs(60),
    );
    assert_eq!(run.code, 0, "no diff expected:\n{}", run.all_output());
    let web_file = manifests.path().join("10-web.yaml");
    let text = std::fs::read_to_string(&web_file).unwrap();
    std::fs::write(&web_file, text.replace("replicas: 2", "replicas: 3")).unwrap();
    let run = run_within(
        server.kubectl_with(["diff", "-f", dir]),
        Duration::from_secs(60),
    );
    assert_eq!(run.code, 1, "a diff expected:\n{}", run.all_output());
    assert!(
        run.stdout.contains("-  replicas: 2") && run.stdout.contains("+  replicas: 3"),
        "{}",
        run.stdout
    );
    // diff is a dry run: nothing changed.
    let run = server.kubectl_run([
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.spec.replicas}",
    ]);
    assert_eq!(run.stdout, "2");

    // A change, then rollout status finishes.
    let run = server.kubectl_run(["apply", "-f", dir]);
    ok(&run, "apply of the change");
    assert!(
        run.stdout.contains("deployment.apps/web configured"),
        "{}",
        run.stdout
    );
    let run = run_within(
        server.kubectl_with(["rollout", "status", "deployment/web", "--timeout=30s"]),
        Duration::from_secs(60),
    );
    ok(&run, "kubectl rollout status");
    assert!(
        run.stdout.contains("successfully rolled out"),
        "{}",
        run.stdout
    );

    // Scale goes through the scale subresource.
    let run = server.kubectl_run(["scale", "deployment/web", "--replicas=5"]);
    ok(&run, "kubectl scale");
    let run = server.kubectl_run([
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.status.readyReplicas}",
    ]);
    assert_eq!(run.stdout, "5");

    // delete -f waits until every object is gone, and finishes.
    let run = run_within(
        server.kubectl_with(["delete", "-f", dir]),
        Duration::from_secs(60),
    );
    ok(&run, "kubectl delete -f");
    assert_eq!(run.stdout.matches("deleted").count(), 5, "{}", run.stdout);
    let run = server.kubectl_run(["get", "deploy,svc,cm,job"]);
    ok(&run, "kubectl get after delete");
    assert!(
        run.stderr.contains("No resources found"),
        "{}",
        run.all_output()
    );
}

#[test]
fn kubectl_server_side_apply_owns_fields_and_reports_conflicts() {
    let server = DevClusterProcess::start(&["--namespace", "shop"]);
    let manifests = example_manifests("nginx:1.27");
    let dir = manifests.path().to_str().unwrap();

    let run = server.kubectl_run(["apply", "--server-side", "-f", dir]);
    ok(&run, "kubectl apply --server-side");
    assert_eq!(
        run.stdout.matches("serverside-applied").count(),
        5,
        "{}",
        run.stdout
    );
    // The kubeconfig's context points at --namespace.
    let run = server.kubectl_run(["get", "deployments", "-n", "shop", "-o", "name"]);
    assert_eq!(
        run.stdout.lines().collect::<Vec<_>>(),
        ["deployment.apps/web", "deployment.apps/worker"]
    );

    let run = server.kubectl_run([
        "get",
        "deployment",
        "web",
        "-o",
        "json",
        "--show-managed-fields",
    ]);
    let web: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(web["metadata"]["managedFields"][0]["manager"], "kubectl");
    assert_eq!(web["metadata"]["managedFields"][0]["operation"], "Apply");

    // Another manager changing a field kubectl owns: 409 with the conflict.
    let web_file = manifests.path().join("10-web.yaml");
    let text = std::fs::read_to_string(&web_file).unwrap();
    std::fs::write(&web_file, text.replace("replicas: 2", "replicas: 4")).unwrap();
    let file = web_file.to_str().unwrap();
    let run = server.kubectl_run([
        "apply",
        "--server-side",
        "--field-manager=other",
        "-f",
        file,
    ]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(
        run.stderr
            .contains("Apply failed with 1 conflict: conflict with \"kubectl\"")
            && run.stderr.contains(".spec.replicas"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("--force-conflicts"),
        "kubectl saw a Conflict status:\n{}",
        run.stderr
    );
    let run = server.kubectl_run([
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-f",
        file,
    ]);
    ok(&run, "forced apply");
    let run = server.kubectl_run([
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.spec.replicas}",
    ]);
    assert_eq!(run.stdout, "4");

    // Diff against server-side apply, and client-side apply after it.
    let run = run_within(
        server.kubectl_with([
            "diff",
            "--server-side",
            "--field-manager=other",
            "--force-conflicts",
            "-f",
            file,
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(run.code, 0, "{}", run.all_output());
}

#[test]
fn kubectl_migrates_from_client_side_to_server_side_apply() {
    let server = DevClusterProcess::start(&[]);
    let manifests = example_manifests("nginx:1.27");
    let dir = manifests.path().to_str().unwrap();
    ok(
        &server.kubectl_run(["apply", "-f", dir]),
        "client-side apply",
    );
    let web_file = manifests.path().join("10-web.yaml");
    let text = std::fs::read_to_string(&web_file).unwrap();
    std::fs::write(&web_file, text.replace("replicas: 2", "replicas: 3")).unwrap();
    // As in Kubernetes: kubectl takes over from client-side apply without a
    // conflict while the object is what was last applied.
    let run = server.kubectl_run(["apply", "--server-side", "-f", dir]);
    ok(&run, "server-side apply after client-side apply");
    let run = server.kubectl_run([
        "get",
        "deployment",
        "web",
        "-o",
        "json",
        "--show-managed-fields",
    ]);
    let web: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(web["spec"]["replicas"], 3);
    let managers: Vec<&str> = web["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    assert!(
        managers.contains(&"kubectl") && !managers.contains(&"kubectl-client-side-apply"),
        "{managers:?}"
    );
    let run = run_within(
        server.kubectl_with(["diff", "--server-side", "-f", dir]),
        Duration::from_secs(60),
    );
    assert_eq!(run.code, 0, "{}", run.all_output());
}

#[test]
fn namespaces_are_objects() {
    let server = DevClusterProcess::start(&["--namespace", "demo"]);
    let run = server.kubectl_run(["get", "ns"]);
    ok(&run, "kubectl get ns");
    for ns in ["default", "demo", "kube-public", "kube-system"] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.starts_with(ns) && l.contains("Active")),
            "{ns}:\n{}",
            run.stdout
        );
    }
    // Writing into a namespace that does not exist fails as in Kubernetes.
    let manifests = dir_with(&[(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: team-a}\ndata: {a: b}\n",
    )]);
    let file = manifests.path().join("cm.yaml");
    let run = server.kubectl_run(["apply".as_ref(), "-f".as_ref(), file.as_os_str()]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("namespaces \"team-a\" not found"),
        "{}",
        run.stderr
    );
    // kubectl create namespace (a protobuf body from kubectl's typed client).
    ok(
        &server.kubectl_run(["create", "namespace", "team-a"]),
        "kubectl create namespace",
    );
    ok(
        &server.kubectl_run(["apply".as_ref(), "-f".as_ref(), file.as_os_str()]),
        "apply into the new namespace",
    );
    ok(
        &server.kubectl_run([
            "-n",
            "team-a",
            "create",
            "secret",
            "generic",
            "s",
            "--from-literal=pw=hunter2",
        ]),
        "create secret",
    );
    let run = server.kubectl_run(["get", "cm,secret", "-n", "team-a"]);
    assert!(
        run.stdout.contains("configmap/c")
            && run.stdout.contains("secret/s")
            && run.stdout.contains("Opaque"),
        "{}",
        run.stdout
    );
    // The system namespaces stay.
    let run = server.kubectl_run(["delete", "namespace", "default"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("this namespace may not be deleted"),
        "{}",
        run.stderr
    );
    // Deleting a namespace deletes what is in it.
    let run = run_within(
        server.kubectl_with(["delete", "namespace", "team-a"]),
        Duration::from_secs(60),
    );
    ok(&run, "kubectl delete namespace");
    let run = server.kubectl_run(["get", "cm", "-A", "-o", "name"]);
    assert!(!run.stdout.contains("configmap/c"), "{}", run.stdout);
}

#[test]
fn a_wrong_token_is_unauthorized() {
    let server = DevClusterProcess::start(&["--token", "right-token"]);
    let text = std::fs::read_to_string(server.kubeconfig()).unwrap();
    assert!(text.contains("right-token"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(server.kubeconfig())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let run = server.kubectl_run(["get", "ns", "--token", "wrong-token"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("You must be logged in to the server"),
        "{}",
        run.stderr
    );
    ok(&server.kubectl_run(["get", "ns"]), "the right token");
    // The status itself: 401 Unauthorized.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = kube_client_from_yaml(&text.replace("right-token", "wrong-token")).await;
        match Api::<Namespace>::all(client)
            .list(&ListParams::default())
            .await
        {
            Err(kube::Error::Api(s)) => {
                assert_eq!((s.code, s.reason.as_str()), (401, "Unauthorized"), "{s:?}")
            }
            other => panic!("expected 401, got {other:?}"),
        }
    });
}

#[test]
fn server_dry_run_changes_nothing() {
    let server = DevClusterProcess::start(&[]);
    let manifests = example_manifests("nginx:1.27");
    let dir = manifests.path().to_str().unwrap();
    let run = server.kubectl_run(["apply", "--dry-run=server", "-f", dir]);
    ok(&run, "apply --dry-run=server");
    assert!(
        run.stdout
            .contains("deployment.apps/web created (server dry run)"),
        "{}",
        run.stdout
    );
    let run = server.kubectl_run(["get", "deploy,svc,cm,job"]);
    assert!(
        run.stderr.contains("No resources found"),
        "{}",
        run.all_output()
    );
    ok(&server.kubectl_run(["apply", "-f", dir]), "apply");
    let run = server.kubectl_run(["delete", "--dry-run=server", "-f", dir]);
    ok(&run, "delete --dry-run=server");
    let run = server.kubectl_run(["get", "deploy", "-o", "name"]);
    assert_eq!(run.stdout.lines().count(), 2, "{}", run.all_output());
}

#[test]
fn kube_rs_gets_lists_patches_deletes_and_watches() {
    let server = DevClusterProcess::start(&[]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = kube_client(server.kubeconfig()).await;
        let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
        let start = cms.list(&ListParams::default()).await.unwrap();
        let rv = start.metadata.resource_version.clone().unwrap();
        let events = cms.watch(&WatchParams::default().timeout(30), &rv).await.unwrap().boxed();
        let selected = cms
            .watch(&WatchParams::default().labels("app=w").timeout(30), &rv)
            .await
            .unwrap()
            .boxed();

        let apply = PatchParams::apply("kube-test");
        let cm = |v: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w", "labels": {"app": "w"}}, "data": {"v": v}});
        let created = cms.patch("w", &apply, &Patch::Apply(cm("1"))).await.unwrap();
        assert_eq!(created.data.as_ref().unwrap()["v"], "1");
        let changed = cms.patch("w", &apply, &Patch::Apply(cm("2"))).await.unwrap();
        assert_eq!(changed.metadata.managed_fields.as_ref().unwrap()[0].manager.as_deref(), Some("kube-test"));
        // A dry-run patch changes nothing.
        let dry = cms.patch("w", &PatchParams::apply("kube-test").dry_run(), &Patch::Apply(cm("dry"))).await.unwrap();
        assert_eq!(dry.data.as_ref().unwrap()["v"], "dry");
        assert_eq!(cms.get("w").await.unwrap().data.unwrap()["v"], "2");
        // Lists by label; get of an absent object is a 404.
        let listed = cms.list(&ListParams::default().labels("app=w")).await.unwrap();
        assert_eq!(listed.items.len(), 1);
        assert!(cms.list(&ListParams::default().labels("app=nope")).await.unwrap().items.is_empty());
        assert!(cms.get_opt("nope").await.unwrap().is_none());
        // A stale resourceVersion on replace is a 409 Conflict.
        let mut stale = created.clone();
        stale.data = Some([("v".to_string(), "x".to_string())].into());
        match cms.replace("w", &PostParams::default(), &stale).await {
            Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"), "{s:?}"),
            other => panic!("expected a conflict, got {other:?}"),
        }
        // Another manager applying a different value conflicts too.
        match cms.patch("w", &PatchParams::apply("other"), &Patch::Apply(cm("3"))).await {
            Err(kube::Error::Api(s)) => assert_eq!(s.code, 409, "{s:?}"),
            other => panic!("expected a conflict, got {other:?}"),
        }
        // Dropping the label: a DELETED for watchers of app=w.
        cms.patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"m": "1"}, "metadata": {"labels": null}})),
        )
        .await
        .unwrap();
        cms.delete("w", &DeleteParams::default()).await.unwrap();
        assert!(cms.get_opt("w").await.unwrap().is_none());

        let seen: Vec<String> = tokio::time::timeout(
            Duration::from_secs(20),
            events
                .map_ok(|e| match e {
                    WatchEvent::Added(c) => format!("ADDED {}", c.data.unwrap_or_default()["v"]),
                    WatchEvent::Modified(c) => format!("MODIFIED {}", c.data.unwrap_or_default()["v"]),
                    WatchEvent::Deleted(_) => "DELETED".to_string(),
                    other => format!("{other:?}"),
                })
                .take(4)
                .try_collect(),
        )
        .await
        .expect("four watch events in time")
        .unwrap();
        assert_eq!(seen, ["ADDED 1", "MODIFIED 2", "MODIFIED 2", "DELETED"]);
        let seen: Vec<&str> = tokio::time::timeout(
            Duration::from_secs(20),
            selected
                .map_ok(|e| match e {
                    WatchEvent::Added(_) => "ADDED",
                    WatchEvent::Modified(_) => "MODIFIED",
                    WatchEvent::Deleted(_) => "DELETED",
                    _ => "OTHER",
                })
                .take(3)
                .try_collect(),
        )
        .await
        .expect("three selected events in time")
        .unwrap();
        assert_eq!(seen, ["ADDED", "MODIFIED", "DELETED"]);

        // Discovery, aggregated and legacy.
        for discovery in [
            kube::Discovery::new(client.clone()).run_aggregated().await.unwrap(),
            kube::Discovery::new(client.clone()).run().await.unwrap(),
        ] {
            assert!(discovery.has_group("apps"));
            let apps = discovery.get("apps").unwrap();
            let (deploy, caps) = apps
                .recommended_resources()
                .into_iter()
                .find(|(r, _)| r.kind == "Deployment")
                .expect("Deployment discovered");
            assert_eq!(deploy.plural, "deployments");
            assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
        }

        let namespaces: Api<Namespace> = Api::all(client);
        let names: Vec<String> = namespaces
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect();
        assert_eq!(names, ["default", "kube-public", "kube-system"]);
    });
}

#[test]
fn in_process_server_with_client_certificates_and_expired_watches() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cluster = MemoryCluster::new();
        cluster.set_event_capacity(2);
        let server = DevCluster::new(cluster.clone()).namespace("apps").start().await.unwrap();
        let client = kube_client_from_yaml(&server.kubeconfig_yaml_with("apps", Auth::ClientCert)).await;
        let cms: Api<ConfigMap> = Api::default_namespaced(client);
        for i in 0..4 {
            let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{i}")}});
            cms.create(&PostParams::default(), &serde_json::from_value(cm).unwrap()).await.unwrap();
        }
        // The server and the store are one: what clients write is there.
        assert_eq!(cluster.list_with(&stepbox::k8s::resources::lookup("v1", "ConfigMap"), "apps", None, None).items.len(), 4);
        // A watch from a resourceVersion the log no longer holds: 410.
        let mut events = cms.watch(&WatchParams::default().timeout(5), "1").await.unwrap().boxed();
        match events.next().await {
            Some(Ok(WatchEvent::Error(s))) => {
                assert_eq!(s.code, 410, "{s:?}");
                assert!(s.message.contains("too old resource version"), "{s:?}");
            }
            other => panic!("expected a 410 error event, got {other:?}"),
        }
        server.shutdown().await;
    });
}

#[test]
fn seeds_and_startup_errors() {
    let seed = dir_with(&[
        (
            "seed.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: seeded, namespace: legacy}\ndata: {a: b}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: here}\n",
        ),
        ("bad.yaml", "kind: [\n"),
    ]);
    let good = seed.path().join("seed.yaml");
    let server =
        DevClusterProcess::start(&["--seed", good.to_str().unwrap(), "--namespace", "work"]);
    assert!(
        server
            .stderr()
            .contains("serving the embedded namespace at https://127.0.0.1:"),
        "{}",
        server.stderr()
    );
    let run = server.kubectl_run(["get", "cm", "-A", "-o", "name"]);
    // By namespace, then name: legacy/seeded, work/here.
    assert_eq!(
        run.stdout.lines().collect::<Vec<_>>(),
        ["configmap/seeded", "configmap/here"],
        "{}",
        run.all_output()
    );
    let run = server.kubectl_run(["get", "ns", "-o", "name"]);
    for ns in ["namespace/legacy", "namespace/work"] {
        assert!(run.stdout.contains(ns), "{}", run.stdout);
    }

    // The same port again: in use, exit 2 naming it.
    let port = server
        .stderr()
        .split("https://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_string();
    let run = stepbox_run(["dev-cluster", "--port", &port]);
    assert_eq!(run.code, 2, "{}", run.all_output());
    assert!(
        run.stderr
            .contains(&format!("port {port} is already in use")),
        "{}",
        run.stderr
    );

    // A bad seed: exit 2 with the file named.
    let bad = seed.path().join("bad.yaml");
    let run = stepbox_run(["dev-cluster".as_ref(), "--seed".as_ref(), bad.as_os_str()]);
    assert_eq!(run.code, 2, "{}", run.all_output());
    assert!(run.stderr.contains("bad.yaml"), "{}", run.stderr);

    // SIGTERM: a clean stop, exit 0.
    #[cfg(unix)]
    assert_eq!(server.terminate(), Some(0));
}

const HELLO_TEMPLATE: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  message: {{ .Values.message | quote }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: hello}
  template:
    metadata:
      labels: {app: hello}
    spec:
      containers:
      - name: hello
        image: nginx:1.27
"#;

#[test]
fn helm_installs_upgrades_rolls_back_and_uninstalls_a_chart() {
    let server = DevClusterProcess::start(&[]);
    let chart = dir_with(&[
        (
            "Chart.yaml",
            "apiVersion: v2\nname: hello\nversion: 0.1.0\n",
        ),
        ("values.yaml", "replicas: 1\nmessage: hi\n"),
        ("templates/app.yaml", HELLO_TEMPLATE),
    ]);
    let helm = |args: &[&str]| {
        let mut c = Command::new(helm_bin());
        c.env_remove("KUBECONFIG")
            .env("HELM_CACHE_HOME", server.dir().join("helm-cache"))
            .env("HELM_CONFIG_HOME", server.dir().join("helm-config"))
            .env("HELM_DATA_HOME", server.dir().join("helm-data"))
            .arg("--kubeconfig")
            .arg(server.kubeconfig())
            .args(args);
        run_within(c, Duration::from_secs(90))
    };
    let chart_dir = chart.path().to_str().unwrap();
    let run = helm(&["install", "demo", chart_dir, "--wait", "--timeout", "60s"]);
    ok(&run, "helm install");
    assert!(run.stdout.contains("STATUS: deployed"), "{}", run.stdout);
    let run = helm(&[
        "upgrade",
        "demo",
        chart_dir,
        "--set",
        "replicas=3",
        "--set",
        "message=hello",
    ]);
    ok(&run, "helm upgrade");
    let run = server.kubectl_run([
        "get",
        "deployment",
        "demo",
        "-o",
        "jsonpath={.spec.replicas}",
    ]);
    assert_eq!(run.stdout, "3");
    ok(&helm(&["rollback", "demo", "1"]), "helm rollback");
    let run = server.kubectl_run([
        "get",
        "configmap",
        "demo-config",
        "-o",
        "jsonpath={.data.message}",
    ]);
    assert_eq!(run.stdout, "hi");
    let run = helm(&["list"]);
    assert!(
        run.stdout.contains("demo") && run.stdout.contains("deployed"),
        "{}",
        run.all_output()
    );
    ok(&helm(&["uninstall", "demo"]), "helm uninstall");
    let run = server.kubectl_run(["get", "deploy,cm,secret", "-o", "name"]);
    assert!(run.stdout.trim().is_empty(), "{}", run.all_output());
}

/// The issue's definition of done: kubectl applies a directory of ordinary
/// manifests, `kubectl get` lists them, and a stepbox step run against the
/// same server (the live backend) sees them and changes them.
#[test]
fn a_step_run_against_the_server_sees_and_changes_what_kubectl_applied() {
    let server = DevClusterProcess::start(&[]);
    let manifests = example_manifests("nginx:1.27");
    ok(
        &server.kubectl_run(["apply", "-f", manifests.path().to_str().unwrap()]),
        "kubectl apply",
    );
    let run = server.kubectl_run(["get", "deploy,svc,cm,job", "-o", "name"]);
    assert_eq!(run.stdout.lines().count(), 5, "{}", run.all_output());

    let package = stepbox_tests::repo_root().join("steps/deploy-manifests/example");
    let run = run_json(
        &step("deploy-manifests"),
        &[
            "--kubeconfig",
            server.kubeconfig().to_str().unwrap(),
            "--package",
            package.to_str().unwrap(),
            "--input",
            "image=nginx:1.28",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["backend"], "live", "{report}");
    let plan = plan_of(&report);
    let action = |kind: &str, name: &str| {
        plan.iter()
            .find(|(_, _, k, n)| k == kind && n == name)
            .map(|(a, _, _, _)| a.clone())
            .unwrap_or_default()
    };
    // It saw what kubectl applied ...
    assert_eq!(action("ConfigMap", "web-config"), "unchanged", "{plan:?}");
    assert_eq!(action("Service", "web"), "unchanged", "{plan:?}");
    // ... and changed it.
    assert_eq!(action("Deployment", "web"), "configured", "{plan:?}");
    let run = server.kubectl_run([
        "get",
        "deployment",
        "web",
        "worker",
        "-o",
        "jsonpath={.items[*].spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(run.stdout, "nginx:1.28 nginx:1.28", "{}", run.all_output());
    let run = run_within(
        server.kubectl_with(["rollout", "status", "deployment/web", "--timeout=30s"]),
        Duration::from_secs(60),
    );
    ok(&run, "rollout status after the step");
}
