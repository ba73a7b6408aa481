//! The live backend: a real Kubernetes API server through `kube::Client`.
//!
//! - Credentials come from a kubeconfig (token, client certificate, basic
//!   auth, exec plugins, custom CA, skip-TLS; `--kubeconfig`, `--context`)
//!   or from an in-cluster service account (token file re-read as it
//!   rotates, CA, namespace file); see [`LiveConfig`].
//! - Kinds are resolved by discovery, so anything the server serves works,
//!   CRDs included; the policy then applies on group/resource/verb.
//! - Writes are server-side applies as field manager `stepbox`, and with
//!   [`LiveCluster::dry_run`] every write carries `dryRun=All`: the plan is
//!   built from the server's answers and nothing is persisted.
//!
//! # When the server misbehaves
//!
//! Every request has a time limit of its own ([`LiveCluster::request_timeout`],
//! default [`DEFAULT_REQUEST_TIMEOUT`]); the run's time limit still ends
//! the run whatever the backend is doing.
//!
//! - **Reads** (get, list, discovery, the version probe) are tried up to
//!   [`READ_ATTEMPTS`] times on 429, 5xx, connection failures and request
//!   timeouts, with a backoff doubling from [`READ_BACKOFF`]; a 429's
//!   `Retry-After` (the Status body's `details.retryAfterSeconds`, which
//!   the API server sends with the header) is honoured when longer, capped
//!   at [`MAX_RETRY_AFTER`].
//! - **Writes** are never repeated blindly. A write refused with 429 was
//!   turned away before the server handled it (API priority and fairness
//!   answers before any handler runs), and a refused connection means it
//!   was never sent: those are repeated like reads. A write that got no
//!   answer (connection dropped after sending, request timeout) or a 5xx
//!   may have been applied: it is not repeated, and the error says so and
//!   how to check (`kubectl get ...`). stepbox writes only with server-side
//!   apply, merge patch and delete, never a `POST` create, yet even an
//!   idempotent apply is not re-sent after an unknown outcome: a repeat
//!   could overwrite a change someone made in between, and the step is
//!   better placed to decide (re-running it is safe).
//! - **409 Conflict** becomes the step's `conflict` error with the
//!   server's message.
//! - **Waits** watch the object (from the resourceVersion last read); a
//!   watch that is cut or cannot start is re-established from a fresh read,
//!   after a short pause, so a server that keeps cutting watches is in
//!   effect polled.
//!
//! Each retry and each re-established watch is a [note](super::notes) that
//! the kube capability writes to the run's audit, e.g. `kube.retry apps/v1
//! Deployment web: retrying get Deployment web after 429 TooManyRequests
//! (Retry-After 1s), attempt 2 of 4`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, WatchEvent, WatchParams,
};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use kube::{Client, Config};

mod config;
mod errors;

pub use config::{ConnectError, LiveConfig, SERVICE_ACCOUNT_DIR};
pub use errors::map_error;
use errors::{Failure, with_suffix};
use serde_json::Value;

use super::notes::note;
use super::{
    Change, ClusterBackend, ClusterError, POLL_INTERVAL, ResourceInfo, Result, WatchOutcome,
};
use stepbox_k8s::resources::split_api_version;
use stepbox_k8s::selector::LabelSelector;

/// How many times a read (or a write refused with 429) is tried before it
/// fails.
pub const READ_ATTEMPTS: u32 = 4;
/// First backoff between attempts (doubles each time).
pub const READ_BACKOFF: Duration = Duration::from_millis(200);
/// The longest `Retry-After` honoured; a server asking for more waits this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// The time limit of one request unless [`LiveCluster::request_timeout`]
/// says otherwise (watches excepted: they last as long as the wait).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A request without an answer after this long is noted in the audit
/// (once), so a run ended by its time limit while it waits says on what.
pub const SLOW_REQUEST: Duration = Duration::from_secs(2);

/// A real cluster behind [`ClusterBackend`].
pub struct LiveCluster {
    client: Client,
    server: String,
    request_timeout: Duration,
    default_namespace: String,
    dry_run: bool,
    kinds: Mutex<HashMap<(String, String), (ResourceInfo, ApiResource)>>,
}

impl std::fmt::Debug for LiveCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCluster")
            .field("server", &self.server)
            .field("dry_run", &self.dry_run)
            .finish()
    }
}

impl LiveCluster {
    /// Connects (lazily: no request is made until the first call).
    pub async fn connect(
        config: &LiveConfig,
        dry_run: bool,
    ) -> std::result::Result<Self, ConnectError> {
        let config = config.load().await?;
        Self::from_config(config, dry_run)
    }

    /// A backend over an already resolved kube `Config`.
    pub fn from_config(config: Config, dry_run: bool) -> std::result::Result<Self, ConnectError> {
        let server = config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string();
        let default_namespace = config.default_namespace.clone();
        let client = Client::try_from(config).map_err(|e| ConnectError::Client(e.to_string()))?;
        Ok(Self {
            client,
            server,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            default_namespace,
            dry_run,
            kinds: Mutex::default(),
        })
    }

    /// A backend over a client already built (its server's address is not
    /// known, so messages say "the cluster").
    pub fn from_client(client: Client, dry_run: bool) -> Self {
        Self {
            default_namespace: client.default_namespace().to_string(),
            client,
            server: "the cluster".into(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            dry_run,
            kinds: Mutex::default(),
        }
    }

    /// The time limit of each request (default [`DEFAULT_REQUEST_TIMEOUT`]).
    /// A read that runs out is tried again; a write that runs out is
    /// reported as of unknown outcome.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Checks that the API server answers (`GET /version`, retried like a
    /// read) and returns its version, e.g. `v1.33.0`. Run it before a step
    /// starts, so a server that is down fails the run at once with a clear
    /// message instead of in the middle of the step.
    ///
    /// # Errors
    /// [`ClusterError::Unavailable`] naming the server, what went wrong and
    /// what to check.
    pub async fn preflight(&self) -> Result<String> {
        let info = self
            .read("version", "reach the API server", || {
                self.client.apiserver_version()
            })
            .await
            .map_err(|e| {
                ClusterError::Unavailable(format!(
                    "the cluster at {} is not usable: {}; check that the API server is up and that the kubeconfig's server address and credentials are right (`kubectl cluster-info`)",
                    self.server,
                    e.message()
                ))
            })?;
        Ok(info.git_version)
    }

    /// Keeps what discovery said about a kind, and returns it as a
    /// [`ResourceInfo`].
    fn remember(&self, ar: ApiResource, caps: &ApiCapabilities) -> ResourceInfo {
        let info = ResourceInfo {
            api_version: ar.api_version.clone(),
            group: ar.group.clone(),
            version: ar.version.clone(),
            kind: ar.kind.clone(),
            plural: ar.plural.clone(),
            namespaced: caps.scope == Scope::Namespaced,
        };
        let key = (info.api_version.clone(), info.kind.clone());
        self.kinds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, (info.clone(), ar));
        info
    }

    /// The API server's URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The namespace of the kubeconfig context, or of the pod.
    pub fn default_namespace(&self) -> &str {
        &self.default_namespace
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn api(&self, ar: &ApiResource, namespaced: bool, namespace: &str) -> Api<DynamicObject> {
        if namespaced {
            Api::namespaced_with(self.client.clone(), namespace, ar)
        } else {
            Api::all_with(self.client.clone(), ar)
        }
    }

    fn cached(&self, res: &ResourceInfo) -> ApiResource {
        let key = (res.api_version.clone(), res.kind.clone());
        if let Some((_, ar)) = self
            .kinds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return ar.clone();
        }
        ApiResource {
            group: res.group.clone(),
            version: res.version.clone(),
            api_version: res.api_version.clone(),
            kind: res.kind.clone(),
            plural: res.plural.clone(),
        }
    }

    /// Runs one request with the request time limit; notes it when it is
    /// slow ([`SLOW_REQUEST`]).
    async fn attempt<T, Fut>(
        &self,
        target: &str,
        what: &str,
        fut: Fut,
    ) -> std::result::Result<T, Failure>
    where
        Fut: std::future::Future<Output = std::result::Result<T, kube::Error>>,
    {
        let mut fut = std::pin::pin!(tokio::time::timeout(self.request_timeout, fut));
        let result = if self.request_timeout > SLOW_REQUEST {
            tokio::select! {
                r = &mut fut => r,
                () = tokio::time::sleep(SLOW_REQUEST) => {
                    note(
                        "kube.slow",
                        target,
                        format!(
                            "{what}: no answer after {}, still waiting (request time limit {})",
                            humantime::format_duration(SLOW_REQUEST),
                            humantime::format_duration(self.request_timeout)
                        ),
                    );
                    fut.await
                }
            }
        } else {
            fut.await
        };
        match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Failure::Kube(e)),
            Err(_) => Err(Failure::TimedOut),
        }
    }

    /// How long to wait before the next attempt: the backoff, or the
    /// server's Retry-After when longer (capped at [`MAX_RETRY_AFTER`]).
    fn pause(backoff: Duration, failure: &Failure) -> Duration {
        match failure.retry_after() {
            Some(asked) => asked.max(backoff).min(MAX_RETRY_AFTER),
            None => backoff,
        }
    }

    /// Runs a read, retrying on 429, 5xx, connection failures and request
    /// timeouts; each retry is a note for the audit.
    async fn read<T, F, Fut>(&self, target: &str, what: &str, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, kube::Error>>,
    {
        let mut backoff = READ_BACKOFF;
        let mut attempt = 1;
        loop {
            match self.attempt(target, what, op()).await {
                Ok(v) => return Ok(v),
                Err(failure) if attempt < READ_ATTEMPTS && failure.retryable() => {
                    let pause = Self::pause(backoff, &failure);
                    attempt += 1;
                    note(
                        "kube.retry",
                        target,
                        format!(
                            "retrying {what} after {}, attempt {attempt} of {READ_ATTEMPTS} in {}",
                            failure.describe(self.request_timeout),
                            humantime::format_duration(pause)
                        ),
                    );
                    tokio::time::sleep(pause).await;
                    backoff *= 2;
                }
                Err(failure) => {
                    let mut err = failure.into_error(&self.server, what, self.request_timeout);
                    if attempt > 1 {
                        err = with_suffix(err, &format!(" (after {attempt} attempts)"));
                    }
                    return Err(err);
                }
            }
        }
    }

    /// Runs a write. Repeated only where it cannot have been applied (429,
    /// connection refused); otherwise a failure without a clear answer says
    /// the outcome is unknown and how to check. Under server-side dry-run
    /// nothing is persisted, so writes are retried like reads.
    async fn write<T, F, Fut>(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        name: &str,
        what: &str,
        mut op: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, kube::Error>>,
    {
        let target = target_of(res, name);
        if self.dry_run {
            return self.read(&target, what, op).await;
        }
        let mut backoff = READ_BACKOFF;
        let mut attempt = 1;
        loop {
            let failure = match self.attempt(&target, what, op()).await {
                Ok(v) => return Ok(v),
                Err(f) => f,
            };
            if attempt < READ_ATTEMPTS && failure.not_applied() {
                let pause = Self::pause(backoff, &failure);
                attempt += 1;
                note(
                    "kube.retry",
                    &target,
                    format!(
                        "retrying {what} after {} (the server did not handle it, so repeating it cannot apply it twice), attempt {attempt} of {READ_ATTEMPTS} in {}",
                        failure.describe(self.request_timeout),
                        humantime::format_duration(pause)
                    ),
                );
                tokio::time::sleep(pause).await;
                backoff *= 2;
                continue;
            }
            let unknown = failure.outcome_unknown();
            let mut err = failure.into_error(&self.server, what, self.request_timeout);
            if attempt > 1 {
                err = with_suffix(err, &format!(" (after {attempt} attempts)"));
            }
            if unknown {
                let kind = if res.group.is_empty() {
                    res.plural.clone()
                } else {
                    format!("{}.{}", res.plural, res.group)
                };
                err = with_suffix(
                    err,
                    &format!(
                        "; the server may or may not have applied it, so it was not repeated: check with `kubectl get {kind} {name} -n {namespace} -o yaml`, then re-run the step"
                    ),
                );
                note(
                    "kube.write",
                    &target,
                    format!("outcome unknown: {what} was sent once and not repeated"),
                );
            }
            return Err(err);
        }
    }
}

/// `apps/v1 Deployment web`, as audit lines name objects.
fn target_of(res: &ResourceInfo, name: &str) -> String {
    format!("{} {} {name}", res.api_version, res.kind)
}

fn to_value(obj: DynamicObject) -> Result<Value> {
    serde_json::to_value(obj).map_err(|e| {
        ClusterError::Invalid(format!("the server sent an object that is not JSON: {e}"))
    })
}

#[async_trait::async_trait]
impl ClusterBackend for LiveCluster {
    fn name(&self) -> &str {
        "live"
    }

    fn server_url(&self) -> Option<&str> {
        self.server
            .starts_with("http")
            .then_some(self.server.as_str())
    }

    fn dry_run(&self) -> bool {
        self.dry_run
    }

    async fn resource_by_plural(
        &self,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Result<ResourceInfo> {
        let gv = kube::core::GroupVersion::gv(group, version);
        let api_version = gv.api_version();
        if let Some(info) = self
            .kinds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|(info, _)| info)
            .find(|info| info.api_version == api_version && info.plural == plural)
        {
            return Ok(info.clone());
        }
        let what = format!("discovery of {api_version}");
        let group = self
            .read(&api_version, &what, || {
                kube::discovery::pinned_group(&self.client, &gv)
            })
            .await?;
        let (ar, caps) = group
            .versioned_resources(version)
            .into_iter()
            .find(|(ar, _)| ar.plural == plural)
            .ok_or_else(|| {
                ClusterError::NotFound(format!(
                    "the server at {} does not serve resource {plural:?} in {api_version}",
                    self.server
                ))
            })?;
        Ok(self.remember(ar, &caps))
    }

    async fn resource(&self, api_version: &str, kind: &str) -> Result<ResourceInfo> {
        if kind.is_empty() || api_version.is_empty() {
            return Err(ClusterError::Invalid(
                "an object needs apiVersion and kind".into(),
            ));
        }
        let key = (api_version.to_string(), kind.to_string());
        if let Some((info, _)) = self
            .kinds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(info.clone());
        }
        let (group, version) = split_api_version(api_version);
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let what = format!("discovery of {kind} in {api_version}");
        let (ar, caps): (ApiResource, ApiCapabilities) = match self
            .read(&format!("{api_version} {kind}"), &what, || {
                kube::discovery::pinned_kind(&self.client, &gvk)
            })
            .await
        {
            Ok(found) => found,
            Err(ClusterError::NotFound(_)) => {
                return Err(ClusterError::NotFound(format!(
                    "the server at {} does not serve kind {kind} in {api_version} (is its CRD installed?)",
                    self.server
                )));
            }
            Err(e) => return Err(e),
        };
        Ok(self.remember(ar, &caps))
    }

    async fn get(&self, res: &ResourceInfo, namespace: &str, name: &str) -> Result<Option<Value>> {
        let api = self.api(&self.cached(res), res.namespaced, namespace);
        let what = format!("get {} {name}", res.kind);
        match self
            .read(&target_of(res, name), &what, || api.get_opt(name))
            .await?
        {
            Some(o) => Ok(Some(to_value(o)?)),
            None => Ok(None),
        }
    }

    async fn logs(
        &self,
        namespace: &str,
        pod: &str,
        options: &crate::LogOptions,
    ) -> Result<crate::PodLog> {
        let api: kube::Api<k8s_openapi::api::core::v1::Pod> =
            kube::Api::namespaced(self.client.clone(), namespace);
        let params = kube::api::LogParams {
            container: options.container.clone().filter(|c| !c.is_empty()),
            tail_lines: options.tail_lines.map(i64::from),
            since_seconds: options.since_seconds.map(i64::from),
            previous: options.previous,
            limit_bytes: Some(crate::MAX_LOG_BYTES as i64),
            ..kube::api::LogParams::default()
        };
        let what = format!("logs of pod {pod}");
        let text = self
            .read(&format!("v1 Pod {pod} log"), &what, || {
                api.logs(pod, &params)
            })
            .await?;
        Ok(crate::PodLog { text, note: None })
    }

    async fn list(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        selector: Option<&LabelSelector>,
    ) -> Result<Vec<Value>> {
        let api = self.api(&self.cached(res), res.namespaced, namespace);
        let mut params = ListParams::default();
        if let Some(s) = selector.filter(|s| !s.is_empty()) {
            params = params.labels(&s.to_string());
        }
        let what = format!("list {}", res.plural);
        let list = self
            .read(&format!("{} {}", res.api_version, res.kind), &what, || {
                api.list(&params)
            })
            .await?;
        let mut items = list
            .items
            .into_iter()
            .map(to_value)
            .collect::<Result<Vec<_>>>()?;
        items.sort_by(|a, b| {
            let n = |v: &Value| stepbox_k8s::object::name(v).unwrap_or("").to_string();
            n(a).cmp(&n(b))
        });
        Ok(items)
    }

    async fn apply(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        object: &Value,
        field_manager: &str,
        force: bool,
    ) -> Result<Change> {
        let name = stepbox_k8s::object::name(object)
            .unwrap_or_default()
            .to_string();
        let before = self.get(res, namespace, &name).await?;
        let api = self.api(&self.cached(res), res.namespaced, namespace);
        let mut params = PatchParams::apply(field_manager);
        params.force = force;
        params.dry_run = self.dry_run;
        let patch = Patch::Apply(object);
        let after = self
            .write(
                res,
                namespace,
                &name,
                &format!("apply {} {name}", res.kind),
                || api.patch(&name, &params, &patch),
            )
            .await?;
        Ok(Change {
            before,
            after: to_value(after)?,
        })
    }

    async fn merge_patch(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        name: &str,
        patch: &Value,
    ) -> Result<Change> {
        let before = self.get(res, namespace, name).await?;
        if before.is_none() {
            return Err(ClusterError::NotFound(format!(
                "{} {name:?} not found in namespace {namespace:?}",
                res.kind
            )));
        }
        let api = self.api(&self.cached(res), res.namespaced, namespace);
        let params = PatchParams {
            dry_run: self.dry_run,
            field_manager: Some("stepbox".into()),
            ..Default::default()
        };
        let patch = Patch::Merge(patch);
        let after = self
            .write(
                res,
                namespace,
                name,
                &format!("patch {} {name}", res.kind),
                || api.patch(name, &params, &patch),
            )
            .await?;
        Ok(Change {
            before,
            after: to_value(after)?,
        })
    }

    async fn delete(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>> {
        let Some(before) = self.get(res, namespace, name).await? else {
            return Ok(None);
        };
        let api = self.api(&self.cached(res), res.namespaced, namespace);
        let params = DeleteParams {
            dry_run: self.dry_run,
            ..Default::default()
        };
        let what = format!("delete {} {name}", res.kind);
        match self
            .write(res, namespace, name, &what, || api.delete(name, &params))
            .await
        {
            Ok(_) => Ok(Some(before)),
            Err(ClusterError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn wait_for_change(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        name: &str,
        resource_version: Option<&str>,
        timeout: Duration,
    ) -> Result<WatchOutcome> {
        let api = self.api(&self.cached(res), res.namespaced, namespace);
        let what = format!("{} {name}", res.kind);
        let deadline = tokio::time::Instant::now() + timeout;
        // A pause before looking again after an interruption, so a server
        // that keeps cutting watches is polled rather than hammered.
        let pause = || async {
            tokio::time::sleep(
                POLL_INTERVAL.min(deadline.saturating_duration_since(tokio::time::Instant::now())),
            )
            .await;
        };
        let seconds = u32::try_from(timeout.as_secs().clamp(1, 290)).unwrap_or(290);
        let params = WatchParams::default()
            .fields(&format!("metadata.name={name}"))
            .timeout(seconds);
        let from = resource_version.unwrap_or("0");
        let watch_what = format!("watch {what}");
        let stream = match self
            .attempt(&target_of(res, name), &watch_what, api.watch(&params, from))
            .await
        {
            Ok(s) => s,
            Err(failure) => {
                pause().await;
                return Ok(WatchOutcome::Interrupted(format!(
                    "the watch of {what} could not start ({}); reading it again",
                    failure.describe(self.request_timeout)
                )));
            }
        };
        let mut stream = std::pin::pin!(stream);
        loop {
            let next = tokio::select! {
                next = stream.next() => next,
                () = tokio::time::sleep_until(deadline) => return Ok(WatchOutcome::Elapsed),
            };
            match next {
                Some(Ok(WatchEvent::Bookmark(_))) => {}
                Some(Ok(WatchEvent::Error(s))) => {
                    // 410 Expired: the resourceVersion is too old; a fresh
                    // read gives a new one.
                    return Ok(WatchOutcome::Interrupted(format!(
                        "the watch of {what} from resourceVersion {from} ended with {} {}; reading it again",
                        s.code, s.reason
                    )));
                }
                Some(Ok(_)) => return Ok(WatchOutcome::Event),
                Some(Err(e)) => {
                    pause().await;
                    return Ok(WatchOutcome::Interrupted(format!(
                        "the watch of {what} from resourceVersion {from} was cut ({e}); reading it again and watching from the new resourceVersion"
                    )));
                }
                None if tokio::time::Instant::now() + Duration::from_secs(1) >= deadline => {
                    return Ok(WatchOutcome::Elapsed);
                }
                None => {
                    pause().await;
                    return Ok(WatchOutcome::Interrupted(format!(
                        "the watch of {what} from resourceVersion {from} ended early; reading it again and watching from the new resourceVersion"
                    )));
                }
            }
        }
    }
}
