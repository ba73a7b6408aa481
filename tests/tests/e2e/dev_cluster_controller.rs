//! `stepbox dev-cluster` as a controller's test cluster: a CRD with a
//! status subresource and printer columns, finalizers and owned objects,
//! Events through both APIs, service-account tokens authorized by RBAC, and
//! HTTP/2. Driven by the real kubectl 1.33 and kube-rs.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
    WatchEvent, WatchParams,
};
use serde_json::{Value, json};
use stepbox_tests::DevClusterProcess;

use super::dev_cluster::{kube_client, kube_client_from_yaml, ok, run_within};

/// The StepRun CRD a controller would install: a status subresource and
/// printer columns (one of priority 1, one a date).
const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: stepruns.stepbox.dev
spec:
  group: stepbox.dev
  scope: Namespaced
  names: {kind: StepRun, plural: stepruns, singular: steprun, shortNames: [sr]}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Phase, type: string, jsonPath: .status.phase}
    - {name: Reason, type: string, priority: 1, jsonPath: '.status.conditions[?(@.type=="Succeeded")].reason'}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

fn step_runs() -> ApiResource {
    ApiResource {
        group: "stepbox.dev".into(),
        version: "v1alpha1".into(),
        api_version: "stepbox.dev/v1alpha1".into(),
        kind: "StepRun".into(),
        plural: "stepruns".into(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A dev cluster for namespace `ci` with the StepRun CRD applied and
/// established (by `kubectl wait`, which must finish).
fn cluster_with_crd() -> DevClusterProcess {
    let server = DevClusterProcess::start(&["--namespace", "ci"]);
    let crd = server.dir().join("crd.yaml");
    std::fs::write(&crd, CRD).unwrap();
    ok(
        &server.kubectl_run(["apply", "-f", crd.to_str().unwrap()]),
        "kubectl apply the CRD",
    );
    let run = run_within(
        server.kubectl_with([
            "wait",
            "--for",
            "condition=established",
            "crd/stepruns.stepbox.dev",
            "--timeout=30s",
        ]),
        Duration::from_secs(60),
    );
    ok(&run, "kubectl wait --for condition=established");
    assert!(run.stdout.contains("condition met"), "{}", run.stdout);
    server
}

fn apply_yaml(server: &DevClusterProcess, name: &str, yaml: &str) {
    let file = server.dir().join(name);
    std::fs::write(&file, yaml).unwrap();
    ok(
        &server.kubectl_run(["apply", "-f", file.to_str().unwrap()]),
        &format!("kubectl apply {name}"),
    );
}

fn api_error<T: std::fmt::Debug>(result: kube::Result<T>) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(s)) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[test]
fn status_subresource_generation_and_printer_columns() {
    let server = cluster_with_crd();
    apply_yaml(
        &server,
        "run.yaml",
        "apiVersion: stepbox.dev/v1alpha1\nkind: StepRun\nmetadata: {name: r1}\nspec: {step: deploy}\n",
    );
    runtime().block_on(async {
        let runs: Api<DynamicObject> =
            Api::namespaced_with(kube_client(server.kubeconfig()).await, "ci", &step_runs());
        let created = runs.get("r1").await.unwrap();
        assert_eq!(created.metadata.generation, Some(1));
        assert!(created.data.get("status").is_none());

        // replace_status changes status alone; spec in the body is ignored.
        let mut body = created.clone();
        body.data["status"] = json!({"phase": "Running"});
        body.data["spec"] = json!({"step": "ignored"});
        let running = runs
            .replace_status("r1", &PostParams::default(), &body)
            .await
            .unwrap();
        assert_eq!(running.data["status"]["phase"], "Running");
        assert_eq!(running.data["spec"]["step"], "deploy");
        assert_eq!(running.metadata.generation, Some(1));
        // The same (now stale) resourceVersion again: 409.
        let s = api_error(runs.replace_status("r1", &PostParams::default(), &body).await);
        assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
        assert_eq!(
            s.message,
            "Operation cannot be fulfilled on stepruns.stepbox.dev \"r1\": the object has been modified; please \
             apply your changes to the latest version and try again"
        );

        // patch_status: merge and apply (JSON patches below, by kubectl).
        let done = json!({"status": {"phase": "Succeeded", "conditions": [
            {"type": "Succeeded", "status": "True", "reason": "StepSucceeded"}]}});
        runs.patch_status("r1", &PatchParams::default(), &Patch::Merge(&done))
            .await
            .unwrap();
        let applied = runs
            .patch_status(
                "r1",
                &PatchParams::apply("stepbox-worker").force(),
                &Patch::Apply(json!({"apiVersion": "stepbox.dev/v1alpha1", "kind": "StepRun",
                    "metadata": {"name": "r1"}, "status": {"phase": "Succeeded", "observedGeneration": 1}})),
            )
            .await
            .unwrap();
        let worker = applied
            .metadata
            .managed_fields
            .unwrap_or_default()
            .into_iter()
            .find(|m| m.manager.as_deref() == Some("stepbox-worker"))
            .expect("the worker's entry");
        assert_eq!(worker.subresource.as_deref(), Some("status"));

        // The main resource ignores status; a spec change bumps generation.
        let changed = runs
            .patch(
                "r1",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"step": "verify"}, "status": {"phase": "Hacked"}})),
            )
            .await
            .unwrap();
        assert_eq!(changed.metadata.generation, Some(2));
        assert_eq!(changed.data["status"]["phase"], "Succeeded");
    });

    // A JSON patch guarded by a test: 422 when the test fails, as kubectl
    // reports it; applied when it holds.
    let guarded = |phase: &str| {
        server.kubectl_run([
            "patch",
            "steprun",
            "r1",
            "--subresource=status",
            "--type=json",
            "-p",
            &format!(
                r#"[{{"op":"test","path":"/status/phase","value":"{phase}"}},{{"op":"add","path":"/status/attempts","value":1}}]"#
            ),
        ])
    };
    let run = guarded("Running");
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(
        run.stderr
            .contains("The request is invalid: the JSON patch does not apply"),
        "{}",
        run.stderr
    );
    ok(&guarded("Succeeded"), "a JSON patch whose test holds");
    let run = server.kubectl_run(["get", "steprun", "r1", "-o", "jsonpath={.status.attempts}"]);
    assert_eq!(run.stdout, "1", "{}", run.all_output());
    // kubectl patches the status subresource with a merge patch too.
    ok(
        &server.kubectl_run([
            "patch",
            "steprun",
            "r1",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Done"}}"#,
        ]),
        "kubectl patch --subresource=status",
    );
    // Server-side printing: the CRD's columns, REASON only when wide.
    let run = server.kubectl_run(["get", "stepruns"]);
    ok(&run, "kubectl get stepruns");
    let mut lines = run.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "PHASE", "AGE"], "{}", run.stdout);
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&row[..2], ["r1", "Done"], "{}", run.stdout);
    assert!(
        row[2].ends_with('s') || row[2].ends_with('m'),
        "an age: {}",
        run.stdout
    );
    let run = server.kubectl_run(["get", "sr", "-o", "wide"]);
    ok(&run, "kubectl get -o wide");
    let header: Vec<&str> = run
        .stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "PHASE", "REASON", "AGE"], "{}", run.stdout);
    assert!(run.stdout.contains("StepSucceeded"), "{}", run.stdout);
    let run = server.kubectl_run(["get", "steprun", "r1", "-o", "yaml"]);
    ok(&run, "kubectl get -o yaml");
    assert!(
        run.stdout.contains("status:") && run.stdout.contains("phase: Done"),
        "{}",
        run.stdout
    );
    let run = server.kubectl_run([
        "get",
        "crd",
        "stepruns.stepbox.dev",
        "-o",
        r#"jsonpath={.status.conditions[?(@.type=="NamesAccepted")].status},{.status.acceptedNames.listKind}"#,
    ]);
    assert_eq!(run.stdout, "True,StepRunList", "{}", run.all_output());
}

#[test]
fn finalizers_deletion_and_owned_objects_seen_by_a_watch() {
    let server = cluster_with_crd();
    runtime().block_on(async {
        let client = kube_client(server.kubeconfig()).await;
        let runs: Api<DynamicObject> = Api::namespaced_with(client.clone(), "ci", &step_runs());
        let cms: Api<ConfigMap> = Api::namespaced(client, "ci");
        let run: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "stepbox.dev/v1alpha1", "kind": "StepRun",
            "metadata": {"name": "r2", "finalizers": ["stepbox.dev/report"]},
            "spec": {"step": "deploy"}}))
        .unwrap();
        let run = runs.create(&PostParams::default(), &run).await.unwrap();
        let uid = run.metadata.uid.clone().unwrap();
        // The run's report, owned by the run.
        let report: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "r2-report", "ownerReferences": [{"apiVersion": "stepbox.dev/v1alpha1",
                "kind": "StepRun", "name": "r2", "uid": uid, "controller": true, "blockOwnerDeletion": true}]},
            "data": {"status": "succeeded"}}))
        .unwrap();
        let report = cms.create(&PostParams::default(), &report).await.unwrap();
        let rv = report.metadata.resource_version.clone().unwrap();
        let run_events = runs
            .watch(&WatchParams::default().timeout(30), &rv)
            .await
            .unwrap()
            .boxed();
        let cm_events = cms
            .watch(&WatchParams::default().timeout(30), &rv)
            .await
            .unwrap()
            .boxed();

        // Delete: kept, marked, answered with the object.
        let marked = runs
            .delete("r2", &DeleteParams::default())
            .await
            .unwrap()
            .left()
            .expect("the object, kept for its finalizer");
        assert!(marked.metadata.deletion_timestamp.is_some());
        assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(0));
        assert!(runs.get_opt("r2").await.unwrap().is_some());
        // No new finalizers once deleting.
        let s = api_error(
            runs.patch(
                "r2",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": ["stepbox.dev/report", "x.dev/late"]}})),
            )
            .await,
        );
        assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
        assert!(
            s.message.ends_with(
                "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, \
                 found new finalizers []string{\"x.dev/late\"}"
            ),
            "{}",
            s.message
        );
        assert!(cms.get_opt("r2-report").await.unwrap().is_some());
        // The controller removes its finalizer: the run goes, and its report.
        runs.patch(
            "r2",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
        assert!(runs.get_opt("r2").await.unwrap().is_none());
        assert!(cms.get_opt("r2-report").await.unwrap().is_none());

        let seen: Vec<String> = tokio::time::timeout(
            Duration::from_secs(20),
            run_events
                .map_ok(|e| match e {
                    WatchEvent::Modified(o) => format!(
                        "MODIFIED deleting={}",
                        o.metadata.deletion_timestamp.is_some()
                    ),
                    WatchEvent::Deleted(o) => format!("DELETED {}", o.metadata.name.unwrap_or_default()),
                    other => format!("{other:?}"),
                })
                .take(2)
                .try_collect(),
        )
        .await
        .expect("two watch events")
        .unwrap();
        assert_eq!(seen, ["MODIFIED deleting=true", "DELETED r2"]);
        let seen: Vec<String> = tokio::time::timeout(
            Duration::from_secs(20),
            cm_events
                .map_ok(|e| match e {
                    WatchEvent::Deleted(o) => format!("DELETED {}", o.metadata.name.unwrap_or_default()),
                    other => format!("{other:?}"),
                })
                .take(1)
                .try_collect(),
        )
        .await
        .expect("the report's deletion")
        .unwrap();
        assert_eq!(seen, ["DELETED r2-report"]);

        // Without finalizers a delete is immediate: a Status.
        let plain: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "stepbox.dev/v1alpha1", "kind": "StepRun", "metadata": {"name": "r3"}}))
        .unwrap();
        runs.create(&PostParams::default(), &plain).await.unwrap();
        assert!(runs.delete("r3", &DeleteParams::default()).await.unwrap().is_right());
    });
}

#[test]
fn events_recorded_through_either_api_show_in_kubectl_describe() {
    let server = cluster_with_crd();
    apply_yaml(
        &server,
        "run.yaml",
        "apiVersion: stepbox.dev/v1alpha1\nkind: StepRun\nmetadata: {name: r4}\nspec: {step: deploy}\n",
    );
    let uid = server
        .kubectl_run(["get", "steprun", "r4", "-o", "jsonpath={.metadata.uid}"])
        .stdout;
    assert_eq!(uid.len(), 36, "{uid}");
    let regarding = json!({"apiVersion": "stepbox.dev/v1alpha1", "kind": "StepRun", "name": "r4",
                           "namespace": "ci", "uid": uid});
    // A core/v1 Event, as kubectl creates it.
    apply_yaml(
        &server,
        "event.yaml",
        &serde_json::to_string(&json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "r4.core", "namespace": "ci"}, "involvedObject": regarding,
            "reason": "Checked", "message": "checked through core/v1", "type": "Normal",
            "source": {"component": "checker"}, "count": 1,
            "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z"}))
        .unwrap(),
    );
    runtime().block_on(async {
        let client = kube_client(server.kubeconfig()).await;
        // An events.k8s.io/v1 Event, created then patched with a series,
        // the way kube-runtime's Recorder publishes and repeats one.
        let events: Api<Event> = Api::namespaced(client.clone(), "ci");
        let now = chrono_now();
        let recorded: Event = serde_json::from_value(json!({
            "metadata": {"name": "r4.worker"}, "regarding": regarding, "reason": "Started",
            "note": "step started by the worker", "type": "Normal", "action": "Run",
            "reportingController": "stepbox-worker", "reportingInstance": "worker-0", "eventTime": now}))
        .unwrap();
        let created = events.create(&PostParams::default(), &recorded).await.unwrap();
        assert_eq!(created.note.as_deref(), Some("step started by the worker"));
        let repeated = events
            .patch(
                "r4.worker",
                &PatchParams::default(),
                &Patch::Merge(json!({"series": {"count": 2, "lastObservedTime": now}})),
            )
            .await
            .unwrap();
        assert_eq!(repeated.series.map(|s| s.count), Some(2));
        assert_eq!(repeated.reporting_controller.as_deref(), Some("stepbox-worker"));

        // Both, through the core API, by the field selectors kubectl describe uses.
        let core: Api<CoreEvent> = Api::namespaced(client.clone(), "ci");
        let selector = format!(
            "involvedObject.name=r4,involvedObject.namespace=ci,involvedObject.kind=StepRun,involvedObject.uid={uid}"
        );
        let listed = core
            .list(&ListParams::default().fields(&selector))
            .await
            .unwrap();
        let mut seen: Vec<(String, String)> = listed
            .items
            .iter()
            .map(|e| (e.reason.clone().unwrap_or_default(), e.message.clone().unwrap_or_default()))
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                ("Checked".to_string(), "checked through core/v1".to_string()),
                ("Started".to_string(), "step started by the worker".to_string()),
            ]
        );
        let worker = listed.items.iter().find(|e| e.reason.as_deref() == Some("Started")).unwrap();
        assert_eq!(worker.reporting_component.as_deref(), Some("stepbox-worker"));
        assert!(core
            .list(&ListParams::default().fields("involvedObject.name=other"))
            .await
            .unwrap()
            .items
            .is_empty());
        // And both through events.k8s.io, with its own field names.
        let through_new = events
            .list(&ListParams::default().fields("regarding.name=r4"))
            .await
            .unwrap();
        let core_one = through_new
            .items
            .iter()
            .find(|e| e.metadata.name.as_deref() == Some("r4.core"))
            .unwrap();
        assert_eq!(core_one.note.as_deref(), Some("checked through core/v1"));
        assert_eq!(core_one.deprecated_count, Some(1));
    });
    let run = server.kubectl_run(["get", "events"]);
    ok(&run, "kubectl get events");
    let header: Vec<&str> = run
        .stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.lines().any(|l| l.contains("Started")
            && l.contains("steprun/r4")
            && l.contains("step started by the worker")),
        "{}",
        run.stdout
    );
    let run = server.kubectl_run(["describe", "steprun", "r4"]);
    ok(&run, "kubectl describe steprun");
    let events = run
        .stdout
        .split_once("Events:")
        .unwrap_or_else(|| panic!("no Events section:\n{}", run.stdout))
        .1;
    for want in [
        "Started",
        "step started by the worker",
        "stepbox-worker",
        "Checked",
        "checked through core/v1",
    ] {
        assert!(
            events.contains(want),
            "{want} not in the Events section:\n{}",
            run.stdout
        );
    }
}

/// Now, as a Kubernetes MicroTime.
fn chrono_now() -> Value {
    serde_json::to_value(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        k8s_openapi::jiff::Timestamp::now(),
    ))
    .unwrap()
}

#[test]
fn service_account_tokens_are_authorized_by_stored_rbac() {
    let server = cluster_with_crd();
    apply_yaml(
        &server,
        "run.yaml",
        "apiVersion: stepbox.dev/v1alpha1\nkind: StepRun\nmetadata: {name: r5}\nspec: {step: deploy}\n",
    );
    // The service account must exist.
    let run = server.kubectl_run(["create", "token", "worker", "-n", "ci"]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(
        run.stderr.contains("serviceaccounts \"worker\" not found"),
        "{}",
        run.stderr
    );
    ok(
        &server.kubectl_run(["create", "serviceaccount", "worker", "-n", "ci"]),
        "create sa",
    );
    let run = server.kubectl_run(["create", "token", "worker", "-n", "ci", "--duration=1h"]);
    ok(&run, "kubectl create token");
    let token = run.stdout.trim().to_string();
    assert!(
        !token.is_empty() && !token.contains(char::is_whitespace),
        "{token:?}"
    );
    let as_worker = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--token", token.as_str()]);
        server.kubectl_run(all)
    };

    // Who it is; discovery is open to it; nothing else yet.
    let run = as_worker(&[
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]);
    assert_eq!(
        run.stdout,
        "system:serviceaccount:ci:worker",
        "{}",
        run.all_output()
    );
    ok(
        &as_worker(&["api-resources", "--api-group=stepbox.dev"]),
        "discovery as the worker",
    );
    let run = as_worker(&["get", "stepruns", "-n", "ci"]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(
        run.stderr.contains(
            "Error from server (Forbidden): stepruns.stepbox.dev is forbidden: User \
             \"system:serviceaccount:ci:worker\" cannot list resource \"stepruns\" in API group \"stepbox.dev\" in \
             the namespace \"ci\""
        ),
        "{}",
        run.stderr
    );
    let run = as_worker(&["auth", "can-i", "list", "stepruns.stepbox.dev", "-n", "ci"]);
    assert_eq!(
        (run.code, run.stdout.trim()),
        (1, "no"),
        "{}",
        run.all_output()
    );

    apply_yaml(
        &server,
        "rbac.yaml",
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: steprun-worker, namespace: ci}
rules:
- apiGroups: [stepbox.dev]
  resources: [stepruns]
  verbs: [get, list, watch, patch]
- apiGroups: [stepbox.dev]
  resources: [stepruns/status]
  verbs: [patch, update]
- apiGroups: [""]
  resources: [configmaps]
  resourceNames: [r5-report]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: steprun-worker, namespace: ci}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: steprun-worker}
subjects: [{kind: ServiceAccount, name: worker, namespace: ci}]
"#,
    );
    let run = as_worker(&["get", "stepruns", "-n", "ci"]);
    ok(&run, "kubectl get stepruns as the bound worker");
    assert!(run.stdout.contains("r5"), "{}", run.stdout);
    for (args, want) in [
        (vec!["patch", "stepruns", "--subresource=status"], "yes"),
        (vec!["update", "stepruns", "--subresource=status"], "yes"),
        (vec!["update", "stepruns.stepbox.dev/r5"], "no"),
        (vec!["patch", "stepruns.stepbox.dev/r5"], "yes"),
        (vec!["delete", "stepruns.stepbox.dev"], "no"),
        (vec!["get", "configmaps/r5-report"], "yes"),
        (vec!["get", "configmaps/other"], "no"),
        (
            vec!["list", "stepruns.stepbox.dev", "--all-namespaces"],
            "no",
        ),
    ] {
        let mut all = vec!["auth", "can-i"];
        all.extend(args.iter().copied());
        all.extend(["-n", "ci"]);
        let run = as_worker(&all);
        assert_eq!(
            run.stdout.trim(),
            want,
            "can-i {args:?}: {}",
            run.all_output()
        );
    }
    // The admin token stays all-powerful.
    let run = server.kubectl_run(["auth", "can-i", "delete", "nodes"]);
    assert_eq!(run.stdout.trim(), "yes", "{}", run.all_output());

    runtime().block_on(async {
        let admin = kube_client(server.kubeconfig()).await;
        let yaml = std::fs::read_to_string(server.kubeconfig()).unwrap();
        let admin_token = yaml
            .lines()
            .find_map(|l| l.trim().strip_prefix("token: "))
            .unwrap()
            .to_string();
        // A token from kube-rs' TokenRequest works the same.
        let sas: Api<ServiceAccount> = Api::namespaced(admin, "ci");
        let request = serde_json::from_value(json!({"spec": {"expirationSeconds": 600}})).unwrap();
        let issued = sas
            .create_token_request("worker", &PostParams::default(), &request)
            .await
            .unwrap();
        let token = issued.status.unwrap().token;
        let worker = kube_client_from_yaml(&yaml.replace(&admin_token, &token)).await;
        let runs: Api<DynamicObject> = Api::namespaced_with(worker.clone(), "ci", &step_runs());
        let patched = runs
            .patch_status(
                "r5",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"phase": "Running"}})),
            )
            .await
            .unwrap();
        assert_eq!(patched.data["status"]["phase"], "Running");
        let s = api_error(runs.delete("r5", &DeleteParams::default()).await);
        assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
        assert_eq!(
            s.message,
            "stepruns.stepbox.dev \"r5\" is forbidden: User \"system:serviceaccount:ci:worker\" cannot delete \
             resource \"stepruns\" in API group \"stepbox.dev\" in the namespace \"ci\""
        );
        let details = s.details.unwrap();
        assert_eq!((details.name.as_str(), details.group.as_str(), details.kind.as_str()), ("r5", "stepbox.dev", "stepruns"));
        // Outside its namespace, nothing.
        let elsewhere: Api<ConfigMap> = Api::namespaced(worker, "default");
        let s = api_error(elsewhere.list(&ListParams::default()).await);
        assert_eq!(s.code, 403);
        assert!(s.message.ends_with("in the namespace \"default\""), "{}", s.message);
    });
    // The request log is the administrator's.
    let run = as_worker(&["get", "--raw", "/debug/stepbox/requests"]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    // A deleted service account takes its tokens along.
    ok(
        &server.kubectl_run(["delete", "serviceaccount", "worker", "-n", "ci"]),
        "delete sa",
    );
    let run = as_worker(&["get", "stepruns", "-n", "ci"]);
    assert!(
        run.stderr.contains("You must be logged in to the server"),
        "{}",
        run.all_output()
    );
}

#[test]
fn http2_by_alpn_for_kubectl_and_its_watches_http1_for_kube_rs() {
    let server = DevClusterProcess::start(&["--namespace", "ci"]);
    ok(&server.kubectl_run(["get", "namespaces"]), "kubectl get ns");
    // A watch over HTTP/2: kubectl sees a ConfigMap created while it watches.
    let out = server.dir().join("watch.out");
    let mut watch = server
        .kubectl_with([
            "get",
            "configmaps",
            "-n",
            "ci",
            "--watch-only",
            "-o",
            "name",
        ])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let watching = || {
        let log = server.kubectl_run(["get", "--raw", "/debug/stepbox/requests"]);
        let log: Value = serde_json::from_str(&log.stdout).unwrap();
        log["requests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["verb"] == "watch" && r["resource"] == "configmaps")
            .cloned()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let record = loop {
        if let Some(r) = watching() {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "kubectl never started its watch"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(record["http"], "HTTP/2.0", "{record}");
    runtime().block_on(async {
        let cms: Api<ConfigMap> = Api::namespaced(kube_client(server.kubeconfig()).await, "ci");
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": "over-h2"}})).unwrap();
        cms.create(&PostParams::default(), &cm).await.unwrap();
    });
    while !std::fs::read_to_string(&out)
        .unwrap_or_default()
        .contains("configmap/over-h2")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the watch did not report the ConfigMap"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = watch.kill();
    let _ = watch.wait();
    let log = server.kubectl_run(["get", "--raw", "/debug/stepbox/requests"]);
    let log: Value = serde_json::from_str(&log.stdout).unwrap();
    let versions = |pred: &dyn Fn(&Value) -> bool| -> Vec<String> {
        log["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| pred(r))
            .map(|r| r["http"].as_str().unwrap().to_string())
            .collect()
    };
    // kubectl (Go) negotiates h2; kube-rs 5 speaks HTTP/1.1; both are served.
    let kubectl = versions(&|r| r["resource"] == "namespaces");
    assert!(
        !kubectl.is_empty() && kubectl.iter().all(|v| v == "HTTP/2.0"),
        "{kubectl:?}"
    );
    let kube_rs = versions(&|r| r["verb"] == "create" && r["resource"] == "configmaps");
    assert_eq!(kube_rs, ["HTTP/1.1"]);
}
