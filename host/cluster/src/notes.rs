//! Notes from a backend about what happened inside one call: a read
//! retried after a 429, a watch re-established after it was cut. The
//! caller (the kube capability) turns them into audit lines, so the run's
//! report says what happened, not only how the call ended.
//!
//! A backend calls [`note`] wherever it is; the note goes to the sink of
//! the innermost [`scope`] around the call on the same task, or nowhere.
//! Notes are delivered at once, so they reach the report even when the run
//! is ended (by its time limit) while the call still waits.

use std::future::Future;
use std::sync::Arc;

/// One note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// What kind of event, e.g. `kube.retry`, `kube.watch`.
    pub call: &'static str,
    /// The object concerned, e.g. `apps/v1 Deployment web`.
    pub target: String,
    /// What happened, in words.
    pub message: String,
}

/// Where notes go.
pub type NoteSink = Arc<dyn Fn(&Note) + Send + Sync>;

tokio::task_local! {
    static SINK: NoteSink;
}

/// Runs `future` with `sink` receiving the notes made inside it.
pub async fn scope<F: Future>(sink: NoteSink, future: F) -> F::Output {
    SINK.scope(sink, future).await
}

/// Sends a note to the current [`scope`]'s sink (dropped outside one). It
/// is also logged at debug level.
pub fn note(call: &'static str, target: impl Into<String>, message: impl Into<String>) {
    let note = Note {
        call,
        target: target.into(),
        message: message.into(),
    };
    tracing::debug!(call, target = %note.target, "{}", note.message);
    let _ = SINK.try_with(|sink| sink(&note));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn notes_reach_the_innermost_scope_only() {
        note("kube.retry", "x", "outside: dropped");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink_seen = seen.clone();
        let sink: NoteSink = Arc::new(move |n: &Note| {
            sink_seen.lock().unwrap().push(n.message.clone());
        });
        scope(sink, async {
            tokio::task::yield_now().await;
            note("kube.retry", "v1 ConfigMap a", "retried");
        })
        .await;
        assert_eq!(*seen.lock().unwrap(), ["retried"]);
    }
}
