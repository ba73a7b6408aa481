//! What one run produced: its log, outputs, plan, audit trail and artifacts.
//!
//! A [`RunRecorder`] is shared by every capability of one run (and by the
//! captured stdout/stderr of the guest). Every string that enters it passes
//! through the run's [`SecretMasker`] first, so nothing read back from a
//! recorder (and so nothing in a [`RunReport`]) can hold a secret value.
//!
//! The recorder also enforces the byte limits of the run (log, outputs, and
//! [`MAX_RECORD_BYTES`] of audit and plan): when one is used up it records
//! which, and the runtime ends the run with [`Status::LimitExceeded`] at the
//! guest's next host call or epoch tick, or at once if the guest is waiting
//! in the host ([`RunRecorder::limit_tripped`]). Limits found outside the
//! recorder (time, memory, workspace) are recorded with
//! [`RunRecorder::limit_exceeded`] the same way.
//!
//! The error of a report is cut to [`MAX_ERROR_BYTES`] (after masking), so a
//! step cannot make its report huge by failing with a huge message.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::mask::SecretMasker;
use stepbox_k8s::plan::PlanEntry;

/// Most bytes of audit lines and plan entries (diffs included) one run may
/// record. Each capability call leaves an audit line and each write a plan
/// entry with the object's diff, all kept in host memory until the run ends:
/// this bounds that memory (and, since every write is in the plan, how much a
/// run can write to the embedded namespace). Real steps record kilobytes.
pub const MAX_RECORD_BYTES: u64 = 16 * 1024 * 1024;

/// Longest error message a report keeps (64 KiB); longer ones are cut and
/// say so.
pub const MAX_ERROR_BYTES: usize = 64 * 1024;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// `run` returned `ok`.
    Succeeded,
    /// `run` returned `err`, or the guest trapped (a bug in the step).
    Failed,
    /// A limit of the run (time, memory, log, output or workspace bytes, ...)
    /// ended it.
    LimitExceeded,
    /// The run never started: unreadable or malformed component, wrong world,
    /// bad options.
    Invalid,
    /// Whoever started the run stopped it ([`crate::RunOptions::cancel`]).
    Cancelled,
}

impl Status {
    /// The process exit code the CLI uses for this status.
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Succeeded => 0,
            Status::Failed => 1,
            Status::Invalid => 2,
            Status::LimitExceeded => 3,
            Status::Cancelled => 1,
        }
    }
}

/// A limit of the run that can end it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum LimitKind {
    /// Wall-clock time.
    Time {
        /// The limit.
        #[serde(with = "humantime_serde_compat")]
        limit: Duration,
    },
    /// Linear memory of the guest.
    Memory {
        /// The limit in bytes.
        limit: u64,
        /// What the guest asked for.
        requested: u64,
    },
    /// Bytes written to the run log (including stdout/stderr).
    LogBytes {
        /// The limit in bytes.
        limit: u64,
    },
    /// Bytes of output names and values.
    OutputBytes {
        /// The limit in bytes.
        limit: u64,
    },
    /// Bytes added to `/workspace`.
    WorkspaceBytes {
        /// The limit in bytes.
        limit: u64,
    },
    /// Files, directories and symlinks added to `/workspace`.
    WorkspaceFiles {
        /// The limit.
        limit: u64,
    },
    /// Directories nested deeper than the host measures.
    WorkspaceDepth {
        /// The deepest nesting allowed.
        limit: u64,
    },
    /// Elements of the guest's tables (all tables together).
    TableElements {
        /// The limit.
        limit: u64,
    },
    /// Handles (open files, streams, ...) the guest holds in the host at once.
    Handles {
        /// The limit.
        limit: u64,
    },
    /// Bytes of audit lines and plan entries ([`MAX_RECORD_BYTES`]).
    RecordBytes {
        /// The limit in bytes.
        limit: u64,
    },
}

impl std::fmt::Display for LimitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitKind::Time { limit } => write!(
                f,
                "time limit exceeded: the step ran longer than {} (raise it with --timeout or limits.timeout in the policy)",
                humantime::format_duration(*limit)
            ),
            LimitKind::Memory { limit, requested } => write!(
                f,
                "memory limit exceeded: the step asked for {} of linear memory, the limit is {} (raise it with --memory or limits.memory in the policy)",
                format_bytes(*requested),
                format_bytes(*limit)
            ),
            LimitKind::LogBytes { limit } => write!(
                f,
                "log limit exceeded: the step wrote more than {} of log (raise limits.logBytes in the policy)",
                format_bytes(*limit)
            ),
            LimitKind::OutputBytes { limit } => write!(
                f,
                "output limit exceeded: the step's outputs exceed {} (raise limits.outputBytes in the policy)",
                format_bytes(*limit)
            ),
            LimitKind::WorkspaceBytes { limit } => write!(
                f,
                "workspace limit exceeded: the step wrote more than {} to /workspace (raise limits.workspaceBytes in the policy)",
                format_bytes(*limit)
            ),
            LimitKind::WorkspaceFiles { limit } => write!(
                f,
                "workspace limit exceeded: the step created more than {limit} files and directories in /workspace (raise limits.workspaceFiles in the policy)"
            ),
            LimitKind::WorkspaceDepth { limit } => write!(
                f,
                "workspace limit exceeded: the step nested directories in /workspace more than {limit} levels deep"
            ),
            LimitKind::TableElements { limit } => write!(
                f,
                "table limit exceeded: the step grew its tables past {limit} elements"
            ),
            LimitKind::Handles { limit } => write!(
                f,
                "handle limit exceeded: the step held more than {limit} open handles (files, streams, ...) at once"
            ),
            LimitKind::RecordBytes { limit } => write!(
                f,
                "record limit exceeded: the step's capability calls filled more than {} of audit and plan (too many calls or changes)",
                format_bytes(*limit)
            ),
        }
    }
}

/// `1048576` → `1 MiB`; sizes that are not whole KiB/MiB/GiB stay in bytes.
pub fn format_bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if n >= size && n.is_multiple_of(size) {
            return format!("{} {unit}", n / size);
        }
    }
    if n >= 1 << 20 {
        return format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64);
    }
    format!("{n} bytes")
}

mod humantime_serde_compat {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}

/// Log levels of the run log (the WIT `level`, plus where a line came from).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Very detailed.
    Trace,
    /// Detailed.
    Debug,
    /// Normal progress.
    Info,
    /// Something looks wrong.
    Warn,
    /// Something failed.
    Error,
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        })
    }
}

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogSource {
    /// The step's `run.log` calls.
    Step,
    /// The guest's stdout.
    Stdout,
    /// The guest's stderr.
    Stderr,
    /// `run.progress` calls.
    Progress,
    /// The `helm` binary the host ran for a helm call (its stderr and
    /// exit status, at debug level).
    Helm,
    /// stepbox itself, about the run (a step that declares no needs).
    Host,
}

/// One line of the run log.
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    /// Milliseconds since the run started.
    pub at_ms: u64,
    /// Severity.
    pub level: Level,
    /// Where it came from.
    pub source: LogSource,
    /// The line, secrets masked.
    pub message: String,
}

/// Whether a capability call was allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The policy allowed the call.
    Allowed,
    /// The policy refused the call; the step got `forbidden`.
    Denied,
}

/// One audit line: a capability call, the policy's decision and the outcome.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    /// Milliseconds since the run started.
    pub at_ms: u64,
    /// The call, e.g. `kube.apply`.
    pub call: String,
    /// What it was about, e.g. `apps/v1 Deployment web`.
    pub target: String,
    /// Allowed or denied.
    pub decision: Decision,
    /// Why it was denied, or the error it ended with; empty on success.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// A step output.
#[derive(Debug, Clone)]
pub struct Output {
    /// The value (secrets masked).
    pub value: String,
    /// Shown as `********` in reports.
    pub sensitive: bool,
}

/// A file the step published.
#[derive(Debug, Clone, Serialize)]
pub struct Artifact {
    /// The name the step gave it.
    pub name: String,
    /// Path inside the guest (under /workspace).
    pub path: String,
    /// Path on the host.
    pub host_path: std::path::PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Hex sha256 of the content.
    pub sha256: String,
}

/// An artifact pulled by reference, pinned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pinned {
    /// The reference as pulled, pinned: `REGISTRY/REPO@sha256:…`.
    pub reference: String,
    /// The manifest digest.
    pub digest: String,
}

/// Where a run's step and package came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sources {
    /// The step, when pulled from a registry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<Pinned>,
    /// The package, when pulled from a registry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<Pinned>,
}

impl Sources {
    /// True when neither came from a registry.
    pub fn is_empty(&self) -> bool {
        self.step.is_none() && self.package.is_none()
    }
}

/// Receives log lines as they happen (the CLI prints them live).
pub type LogSink = Arc<dyn Fn(&LogEntry) + Send + Sync>;

/// Where audit lines and plan entries go: a run's [`RunRecorder`], or
/// stderr for `stepbox gateway`. Implementations mask secrets themselves.
pub trait AuditSink: Send + Sync {
    /// Records one request or call: what (`call`), on what (`target`),
    /// whether it was allowed and why (or what came of it).
    fn audit(&self, call: &str, target: &str, decision: Decision, reason: &str);

    /// Records a write that changed (or would change) an object.
    fn plan(&self, entry: PlanEntry);
}

impl AuditSink for RunRecorder {
    fn audit(&self, call: &str, target: &str, decision: Decision, reason: &str) {
        RunRecorder::audit(self, call, target, decision, reason);
    }

    fn plan(&self, entry: PlanEntry) {
        RunRecorder::plan(self, entry);
    }
}

#[derive(Default)]
struct Inner {
    log: Vec<LogEntry>,
    log_bytes: u64,
    audit: Vec<AuditRecord>,
    plan: Vec<PlanEntry>,
    outputs: BTreeMap<String, Output>,
    output_bytes: u64,
    artifacts: Vec<Artifact>,
    progress: Option<(u8, String)>,
    record_bytes: u64,
    limit_hit: Option<LimitKind>,
}

impl Inner {
    /// Records the first limit that ends the run; later ones are ignored.
    fn hit(&mut self, limit: LimitKind, tripped: &Notify) -> LimitKind {
        match &self.limit_hit {
            Some(first) => first.clone(),
            None => {
                self.limit_hit = Some(limit.clone());
                tripped.notify_one();
                limit
            }
        }
    }

    /// Counts `bytes` of audit or plan; false (and the limit recorded) once
    /// the run has recorded more than [`MAX_RECORD_BYTES`].
    fn record(&mut self, bytes: usize, tripped: &Notify) -> bool {
        self.record_bytes = self.record_bytes.saturating_add(bytes as u64);
        if self.record_bytes > MAX_RECORD_BYTES {
            self.hit(
                LimitKind::RecordBytes {
                    limit: MAX_RECORD_BYTES,
                },
                tripped,
            );
            return false;
        }
        true
    }
}

/// Collects everything one run produces; cheap to clone (shared).
#[derive(Clone)]
pub struct RunRecorder {
    inner: Arc<Mutex<Inner>>,
    masker: SecretMasker,
    started: Instant,
    log_limit: u64,
    output_limit: u64,
    sink: Option<LogSink>,
    tripped: Arc<Notify>,
}

impl std::fmt::Debug for RunRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunRecorder").finish_non_exhaustive()
    }
}

/// Returned when a byte limit is used up; the run must end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitReached(pub LimitKind);

impl RunRecorder {
    /// A recorder masking `masker`'s secrets, with the given byte limits and
    /// an optional live log sink.
    pub fn new(
        masker: SecretMasker,
        log_limit: u64,
        output_limit: u64,
        sink: Option<LogSink>,
    ) -> Self {
        Self {
            inner: Arc::default(),
            masker,
            started: Instant::now(),
            log_limit,
            output_limit,
            sink,
            tripped: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked while holding
        // it; the data (plain records) is still consistent enough to report.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// The masker of this run.
    pub fn masker(&self) -> &SecretMasker {
        &self.masker
    }

    /// Masks secrets in `s`.
    pub fn mask(&self, s: &str) -> String {
        self.masker.mask(s).into_owned()
    }

    /// Appends a log line. Fails (and records the limit) when the log byte
    /// limit is used up; the line is then dropped.
    pub fn log(&self, level: Level, source: LogSource, message: &str) -> Result<(), LimitReached> {
        let message = self.masker.mask(message).into_owned();
        let entry = {
            let mut inner = self.lock();
            if let Some(limit) = &inner.limit_hit {
                return Err(LimitReached(limit.clone()));
            }
            inner.log_bytes += message.len() as u64;
            if inner.log_bytes > self.log_limit {
                let limit = inner.hit(
                    LimitKind::LogBytes {
                        limit: self.log_limit,
                    },
                    &self.tripped,
                );
                return Err(LimitReached(limit));
            }
            let entry = LogEntry {
                at_ms: self.now_ms(),
                level,
                source,
                message,
            };
            inner.log.push(entry.clone());
            entry
        };
        if let Some(sink) = &self.sink {
            sink(&entry);
        }
        Ok(())
    }

    /// Records progress (also logged, at info level).
    pub fn progress(&self, percent: u8, message: &str) -> Result<(), LimitReached> {
        let percent = percent.min(100);
        let message = self.mask(message);
        self.lock().progress = Some((percent, message.clone()));
        self.log(
            Level::Info,
            LogSource::Progress,
            &format!("[{percent:>3}%] {message}"),
        )
    }

    /// Sets an output. Fails (and records the limit) when output bytes are
    /// used up.
    pub fn set_output(&self, name: &str, value: &str, sensitive: bool) -> Result<(), LimitReached> {
        let mut inner = self.lock();
        if let Some(limit) = &inner.limit_hit {
            return Err(LimitReached(limit.clone()));
        }
        let old = inner
            .outputs
            .get(name)
            .map(|o| (name.len() + o.value.len()) as u64)
            .unwrap_or(0);
        let new_total = inner.output_bytes - old + (name.len() + value.len()) as u64;
        if new_total > self.output_limit {
            let limit = inner.hit(
                LimitKind::OutputBytes {
                    limit: self.output_limit,
                },
                &self.tripped,
            );
            return Err(LimitReached(limit));
        }
        inner.output_bytes = new_total;
        let value = self.masker.mask(value).into_owned();
        inner
            .outputs
            .insert(self.mask(name), Output { value, sensitive });
        Ok(())
    }

    /// Appends an audit line (target and reason masked). Past
    /// [`MAX_RECORD_BYTES`] of audit and plan the line is dropped and the
    /// limit recorded, which ends the run.
    pub fn audit(&self, call: &str, target: &str, decision: Decision, reason: &str) {
        let size = call.len() + target.len() + reason.len();
        if !self.lock().record(size, &self.tripped) {
            return;
        }
        let record = AuditRecord {
            at_ms: self.now_ms(),
            call: call.to_string(),
            target: self.mask(target),
            decision,
            reason: self.mask(reason),
        };
        tracing::debug!(target: "stepbox::audit", call, target = %record.target, ?decision, reason = %record.reason, "capability call");
        self.lock().audit.push(record);
    }

    /// Appends a plan entry (values masked). Counted with the audit against
    /// [`MAX_RECORD_BYTES`], like [`RunRecorder::audit`].
    pub fn plan(&self, mut entry: PlanEntry) {
        let size = entry.name.len()
            + entry.diff.as_ref().map_or(0, String::len)
            + entry
                .changes
                .iter()
                .map(|c| {
                    let value = |v: &Option<serde_json::Value>| {
                        v.as_ref().map_or(0, |v| v.to_string().len())
                    };
                    c.path.len() + value(&c.before) + value(&c.after)
                })
                .sum::<usize>();
        if !self.lock().record(size, &self.tripped) {
            return;
        }
        for change in &mut entry.changes {
            change.path = self.mask(&change.path);
            if let Some(v) = change.before.as_mut() {
                self.masker.mask_value(v);
            }
            if let Some(v) = change.after.as_mut() {
                self.masker.mask_value(v);
            }
        }
        entry.name = self.mask(&entry.name);
        if let Some(d) = entry.diff.take() {
            entry.diff = Some(self.mask(&d));
        }
        self.lock().plan.push(entry);
    }

    /// Records an artifact.
    pub fn artifact(&self, artifact: Artifact) {
        self.lock().artifacts.push(artifact);
    }

    /// Removes and returns the artifacts recorded so far (to check them
    /// again; see [`RunCtx::reverify_artifacts`](crate::caps::run::RunCtx::reverify_artifacts)).
    pub fn take_artifacts(&self) -> Vec<Artifact> {
        std::mem::take(&mut self.lock().artifacts)
    }

    /// Records that a limit ended the run (time, memory, workspace, ...),
    /// unless another limit was recorded first.
    pub fn limit_exceeded(&self, limit: LimitKind) {
        self.lock().hit(limit, &self.tripped);
    }

    /// Completes once a limit has been recorded (at once if one was already):
    /// the runtime uses it to end a run that is waiting in a host call.
    pub async fn limit_tripped(&self) {
        if self.limit_hit().is_some() {
            return;
        }
        self.tripped.notified().await;
    }

    /// The limit that ended the run, if any.
    pub fn limit_hit(&self) -> Option<LimitKind> {
        self.lock().limit_hit.clone()
    }

    /// How long the run has taken so far.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Builds the final report.
    pub fn finish(&self, status: Status, error: Option<String>, meta: RunMeta) -> RunReport {
        let inner = self.lock();
        RunReport {
            status,
            step: meta.step,
            run_id: meta.run_id,
            namespace: meta.namespace,
            backend: meta.backend,
            dry_run: meta.dry_run,
            sources: meta.sources,
            duration_ms: self.elapsed().as_millis() as u64,
            outputs: inner
                .outputs
                .iter()
                .map(|(k, o)| {
                    let v = if o.sensitive {
                        crate::mask::MASK.to_string()
                    } else {
                        o.value.clone()
                    };
                    (k.clone(), v)
                })
                .collect(),
            sensitive_outputs: inner
                .outputs
                .iter()
                .filter(|(_, o)| o.sensitive)
                .map(|(k, _)| k.clone())
                .collect(),
            plan: inner.plan.clone(),
            log: inner.log.clone(),
            audit: inner.audit.clone(),
            artifacts: inner.artifacts.clone(),
            limit: inner.limit_hit.clone(),
            error: error.map(|e| truncate_error(self.mask(&e))),
        }
    }
}

/// Cuts an error message to [`MAX_ERROR_BYTES`] (at a character boundary),
/// saying how much was cut. Run on masked text, so the cut cannot expose
/// part of a secret.
fn truncate_error(mut error: String) -> String {
    if error.len() <= MAX_ERROR_BYTES {
        return error;
    }
    let total = error.len();
    let mut cut = MAX_ERROR_BYTES;
    while !error.is_char_boundary(cut) {
        cut -= 1;
    }
    error.truncate(cut);
    error.push_str(&format!(
        "... [error truncated: {} of {} shown]",
        format_bytes(cut as u64),
        format_bytes(total as u64)
    ));
    error
}

/// Facts about a run that go into its report.
#[derive(Debug, Clone, Default)]
pub struct RunMeta {
    /// Step name.
    pub step: String,
    /// Where the step and its package came from, when pulled from a
    /// registry.
    pub sources: Sources,
    /// Run id.
    pub run_id: String,
    /// Namespace the run was confined to.
    pub namespace: String,
    /// Cluster backend name ("memory", "live").
    pub backend: String,
    /// Whether the run changed nothing real.
    pub dry_run: bool,
}

/// The result of one run, as `stepbox run --output json` prints it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// How the run ended.
    pub status: Status,
    /// Step name.
    pub step: String,
    /// Run id.
    pub run_id: String,
    /// Namespace the run was confined to.
    pub namespace: String,
    /// Cluster backend ("memory" for the embedded namespace).
    pub backend: String,
    /// True when nothing real was changed.
    pub dry_run: bool,
    /// Where the step and its package came from, when pulled from a
    /// registry: the references pinned to their digests.
    #[serde(skip_serializing_if = "Sources::is_empty")]
    pub sources: Sources,
    /// Wall time of the run.
    pub duration_ms: u64,
    /// Outputs, name → value; sensitive ones are `********`.
    pub outputs: BTreeMap<String, String>,
    /// Names of the sensitive outputs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sensitive_outputs: Vec<String>,
    /// What the run changed, in order.
    pub plan: Vec<PlanEntry>,
    /// The run log.
    pub log: Vec<LogEntry>,
    /// One line per capability call.
    pub audit: Vec<AuditRecord>,
    /// Published files.
    pub artifacts: Vec<Artifact>,
    /// The limit that ended the run, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<LimitKind>,
    /// Why the run did not succeed.
    pub error: Option<String>,
}

impl RunReport {
    /// A report for a run that could not start.
    pub fn invalid(error: String, meta: RunMeta) -> Self {
        RunRecorder::new(SecretMasker::default(), 0, 0, None).finish(
            Status::Invalid,
            Some(error),
            meta,
        )
    }

    /// A report for a run that could not start for a reason outside its
    /// input (the cluster cannot be reached): status `failed`.
    pub fn not_started(error: String, meta: RunMeta) -> Self {
        RunRecorder::new(SecretMasker::default(), 0, 0, None).finish(
            Status::Failed,
            Some(error),
            meta,
        )
    }
}
