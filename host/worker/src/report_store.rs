//! The report ConfigMap of a StepRun: its log while it runs (what
//! `stepbox submit --follow` streams) and the full JSON report and log
//! when it is done (what `stepbox logs` reads). Owned by the StepRun, so
//! it goes when the StepRun goes.

use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use stepbox::report::{LogEntry, RunReport};

use crate::crd::StepRun;

/// The key of the log (text, one line per entry).
pub const LOG_KEY: &str = "log";
/// The key of the JSON report.
pub const REPORT_KEY: &str = "report.json";
/// The most the log and report may hold together (a ConfigMap is at most
/// 1 MiB); the log is cut from the front beyond it.
pub const MAX_BYTES: usize = 900 * 1024;

/// The report ConfigMap's name for StepRun `name`: `NAME-report`, shortened
/// with a hash when that would pass the 253 characters of a name.
pub fn report_name(name: &str) -> String {
    let full = format!("{name}-report");
    if full.len() <= 253 {
        return full;
    }
    let hash = stepbox_oci::digest_of(name.as_bytes());
    let hash = &hash["sha256:".len().."sha256:".len() + 10];
    format!("{}-{hash}-report", &name[..253 - 18])
}

/// One log line as it is stored: `  12ms info  message`.
pub fn log_line(e: &LogEntry) -> String {
    let level = format!("{:?}", e.level).to_lowercase();
    format!("{:>7} {level:<5} {}\n", format!("{}ms", e.at_ms), e.message)
}

/// The log of a running run, collected from the recorder's sink.
#[derive(Debug, Clone, Default)]
pub struct LiveLog {
    inner: Arc<Mutex<LogState>>,
}

#[derive(Debug, Default)]
struct LogState {
    text: String,
    dropped: usize,
    changed: bool,
}

impl LiveLog {
    /// Appends a line (dropping the oldest beyond [`MAX_BYTES`]).
    pub fn push(&self, e: &LogEntry) {
        let mut s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        s.text.push_str(&log_line(e));
        if s.text.len() > MAX_BYTES {
            let mut cut = s.text.len() - MAX_BYTES / 2;
            while !s.text.is_char_boundary(cut) {
                cut += 1;
            }
            let cut = s.text[cut..].find('\n').map_or(cut, |i| cut + i + 1);
            s.dropped += s.text[..cut].matches('\n').count();
            s.text.drain(..cut);
        }
        s.changed = true;
    }

    /// The log so far, if it changed since the last call.
    pub fn take_changed(&self) -> Option<String> {
        let mut s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if !s.changed {
            return None;
        }
        s.changed = false;
        Some(render(&s))
    }
}

fn render(s: &LogState) -> String {
    if s.dropped == 0 {
        s.text.clone()
    } else {
        format!("[{} earlier lines dropped]\n{}", s.dropped, s.text)
    }
}

/// Writes the report ConfigMap of `run` (server-side apply, owned by the
/// StepRun): `log`, and `report` when the run is done.
///
/// # Errors
/// The API server's, for the caller to log (a run's outcome is in its
/// status either way).
pub async fn write(
    api: &Api<ConfigMap>,
    run: &StepRun,
    log: &str,
    report: Option<&RunReport>,
) -> kube::Result<()> {
    use kube::ResourceExt;
    let name = report_name(&run.name_any());
    let mut data = serde_json::Map::new();
    let report_json = report.map(|r| serde_json::to_string(r).unwrap_or_default());
    let room = MAX_BYTES.saturating_sub(report_json.as_ref().map_or(0, String::len));
    let log = if log.len() > room {
        let mut cut = log.len() - room;
        while !log.is_char_boundary(cut) {
            cut += 1;
        }
        format!("[log cut to fit the ConfigMap]\n{}", &log[cut..])
    } else {
        log.to_string()
    };
    data.insert(LOG_KEY.into(), json!(log));
    if let Some(r) = report_json {
        if r.len() <= MAX_BYTES {
            data.insert(REPORT_KEY.into(), json!(r));
        } else {
            data.insert(
                REPORT_KEY.into(),
                json!(json!({"error": "the report is larger than a ConfigMap holds; see the worker's log"}).to_string()),
            );
        }
    }
    let cm = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/managed-by": "stepbox-worker",
                "stepbox.dev/steprun": run.name_any(),
            },
            "ownerReferences": [{
                "apiVersion": "stepbox.dev/v1alpha1",
                "kind": "StepRun",
                "name": run.name_any(),
                "uid": run.uid().unwrap_or_default(),
                "controller": true,
                "blockOwnerDeletion": false,
            }],
        },
        "data": data,
    });
    api.patch(
        &name,
        &PatchParams::apply(crate::FIELD_MANAGER).force(),
        &Patch::Apply(&cm),
    )
    .await
    .map(|_| ())
}

/// The log of a report ConfigMap.
pub fn log_of(cm: &ConfigMap) -> Option<&str> {
    cm.data.as_ref()?.get(LOG_KEY).map(String::as_str)
}

/// The JSON report of a report ConfigMap.
pub fn report_of(cm: &ConfigMap) -> Option<&str> {
    cm.data.as_ref()?.get(REPORT_KEY).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_and_stay_distinct() {
        assert_eq!(report_name("deploy-42"), "deploy-42-report");
        let long_a = "a".repeat(250);
        let long_b = format!("{}b", "a".repeat(249));
        let (a, b) = (report_name(&long_a), report_name(&long_b));
        assert!(a.len() <= 253 && b.len() <= 253);
        assert_ne!(a, b);
    }

    #[test]
    fn the_live_log_keeps_its_tail_within_budget() {
        use stepbox::report::{Level, LogSource};
        let log = LiveLog::default();
        let line = "x".repeat(1000);
        for i in 0..2000 {
            log.push(&LogEntry {
                at_ms: i,
                level: Level::Info,
                source: LogSource::Step,
                message: line.clone(),
            });
        }
        let text = log.take_changed().unwrap();
        assert!(text.len() <= MAX_BYTES + 64, "{}", text.len());
        assert!(text.starts_with('['), "{}", &text[..40]);
        assert!(text.contains("1999ms"));
        assert!(log.take_changed().is_none());
    }
}
