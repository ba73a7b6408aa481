//! Pod logs in the embedded namespace, which runs no containers.
//!
//! A Pod has no log here unless whoever made it says what the log is: the
//! annotation `logs.stepbox.dev/CONTAINER` holds the text of that
//! container's log, `logs.stepbox.dev/CONTAINER.previous` that of its
//! previous instance. Tests (and `stepbox dev-cluster --seed`) seed failing
//! Pods this way, so `kubectl logs` and a step's `kube.logs` see what a
//! crashing container would have printed. Without the annotation the log
//! is empty and the answer says why.

use serde_json::Value;
use stepbox_k8s::object;

use super::MemoryCluster;
use crate::{ClusterError, LogOptions, MAX_LOG_BYTES, PodLog, Result};

/// The annotation prefix that holds a container's log.
pub const LOG_ANNOTATION_PREFIX: &str = "logs.stepbox.dev/";

impl MemoryCluster {
    /// The log of a container of pod `pod` in `namespace`: its
    /// [`LOG_ANNOTATION_PREFIX`] annotation, cut to `tail_lines`.
    /// `since_seconds` cannot be honoured (the lines carry no times) and is
    /// said so in the note.
    ///
    /// # Errors
    /// [`ClusterError::NotFound`] for a pod or container that does not
    /// exist; [`ClusterError::Invalid`] when the pod has several containers
    /// and none is named (kubectl's wording).
    pub fn pod_log(&self, namespace: &str, pod: &str, options: &LogOptions) -> Result<PodLog> {
        let res = stepbox_k8s::resources::lookup("v1", "Pod");
        let obj = self.get_object(&res, namespace, pod).ok_or_else(|| {
            ClusterError::NotFound(format!("pods {pod:?} not found in namespace {namespace:?}"))
        })?;
        let container = container(&obj, pod, options.container.as_deref())?;
        let key = if options.previous {
            format!("{LOG_ANNOTATION_PREFIX}{container}.previous")
        } else {
            format!("{LOG_ANNOTATION_PREFIX}{container}")
        };
        let Some(text) = object::annotations(&obj).get(&key).cloned() else {
            return Ok(PodLog {
                text: String::new(),
                note: Some(format!(
                    "the embedded namespace runs no containers, so container {container:?} of pod {pod:?} has no log \
                     (annotation {key} seeds one)"
                )),
            });
        };
        let mut text = tail(&text, options.tail_lines);
        if text.len() > MAX_LOG_BYTES {
            let mut cut = text.len() - MAX_LOG_BYTES;
            while !text.is_char_boundary(cut) {
                cut += 1;
            }
            text = text[cut..].to_string();
        }
        let note = options.since_seconds.map(|_| {
            "the embedded namespace keeps no times for log lines: since-seconds was not applied"
                .to_string()
        });
        Ok(PodLog { text, note })
    }
}

/// The container a request names, or the pod's only one.
fn container(pod: &Value, name: &str, wanted: Option<&str>) -> Result<String> {
    let names: Vec<&str> = ["/spec/initContainers", "/spec/containers"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .collect();
    match wanted.filter(|w| !w.is_empty()) {
        Some(w) if names.contains(&w) => Ok(w.to_string()),
        Some(w) => Err(ClusterError::NotFound(format!(
            "container {w:?} is not valid for pod {name:?}: its containers are [{}]",
            names.join(", ")
        ))),
        None => {
            let main: Vec<&str> = pod
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .collect();
            match main.as_slice() {
                [one] => Ok((*one).to_string()),
                [] => Err(ClusterError::NotFound(format!(
                    "pod {name:?} has no containers"
                ))),
                many => Err(ClusterError::Invalid(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    many.join(" ")
                ))),
            }
        }
    }
}

/// The last `lines` lines of `text` (all of it for `None`).
fn tail(text: &str, lines: Option<u32>) -> String {
    let Some(n) = lines else {
        return text.to_string();
    };
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(n as usize);
    let mut out = all[start..].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> MemoryCluster {
        let c = MemoryCluster::new();
        c.seed_yaml(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web-1\n  annotations:\n    logs.stepbox.dev/app: \"one\\ntwo\\nthree\\n\"\n\
             spec:\n  containers: [{name: app, image: x}, {name: side, image: y}]\n",
            "dev",
        )
        .unwrap();
        c
    }

    fn opts(container: &str, tail: Option<u32>) -> LogOptions {
        LogOptions {
            container: Some(container.into()),
            tail_lines: tail,
            ..LogOptions::default()
        }
    }

    #[test]
    fn seeded_logs_are_served_and_tailed() {
        let c = cluster();
        let log = c.pod_log("dev", "web-1", &opts("app", None)).unwrap();
        assert_eq!(log.text, "one\ntwo\nthree\n");
        assert_eq!(log.note, None);
        let log = c.pod_log("dev", "web-1", &opts("app", Some(2))).unwrap();
        assert_eq!(log.text, "two\nthree\n");
    }

    #[test]
    fn unseeded_logs_are_empty_and_say_why() {
        let log = cluster()
            .pod_log("dev", "web-1", &opts("side", None))
            .unwrap();
        assert_eq!(log.text, "");
        assert!(log.note.unwrap().contains("runs no containers"));
    }

    #[test]
    fn containers_must_exist_and_be_chosen() {
        let c = cluster();
        let e = c
            .pod_log("dev", "web-1", &LogOptions::default())
            .unwrap_err();
        assert!(e.to_string().contains("choose one of: [app side]"), "{e}");
        let e = c.pod_log("dev", "web-1", &opts("nope", None)).unwrap_err();
        assert!(matches!(e, ClusterError::NotFound(_)), "{e}");
        let e = c.pod_log("dev", "gone", &opts("app", None)).unwrap_err();
        assert!(matches!(e, ClusterError::NotFound(_)), "{e}");
    }
}
