//! The guest's stdout and stderr, captured line by line into the run log.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use crate::report::{Level, LogSource, RunRecorder};

/// Longest line kept whole; longer lines are split (never inside a secret,
/// so each piece is still masked).
const MAX_LINE: usize = 16 * 1024;

/// A WASI stdout/stderr that turns what the guest writes into log lines.
#[derive(Clone)]
pub struct LogStream {
    recorder: RunRecorder,
    source: LogSource,
    level: Level,
    pending: Arc<Mutex<Vec<u8>>>,
}

impl LogStream {
    /// A stream logging into `recorder` as `source` (stdout: info, stderr: warn).
    pub fn new(recorder: RunRecorder, source: LogSource) -> Self {
        let level = if source == LogSource::Stderr {
            Level::Warn
        } else {
            Level::Info
        };
        Self {
            recorder,
            source,
            level,
            pending: Arc::default(),
        }
    }

    /// Logs what is left of an unterminated last line.
    pub fn flush_partial(&self) {
        let rest = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if !rest.is_empty() {
            let _ = self.emit(&rest);
        }
    }

    fn emit(&self, line: &[u8]) -> Result<(), crate::report::LimitReached> {
        let text = String::from_utf8_lossy(line);
        self.recorder
            .log(self.level, self.source, text.trim_end_matches('\r'))
    }

    fn write_bytes(&self, buf: &[u8]) -> io::Result<usize> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.extend_from_slice(buf);
        loop {
            let cut = match pending.iter().position(|&b| b == b'\n') {
                Some(i) => i,
                None if pending.len() >= MAX_LINE => {
                    self.recorder.masker().safe_cut(&pending, MAX_LINE)
                }
                None => break,
            };
            let line: Vec<u8> = pending.drain(..cut).collect();
            if pending.first() == Some(&b'\n') {
                pending.remove(0);
            }
            if let Err(limit) = self.emit(&line) {
                pending.clear();
                return Err(io::Error::other(limit.0.to_string()));
            }
        }
        Ok(buf.len())
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for LogStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(self.write_bytes(buf))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
