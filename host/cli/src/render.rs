//! Human-readable rendering of reports and component descriptions.

use std::fmt::Write;
use std::path::Path;

use stepbox::engine::ComponentInfo;
use stepbox::plan::Action;
use stepbox::report::{Decision, Level, LogEntry, LogSource, RunReport, Status};

fn paint(s: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

/// One live log line: `  12ms INFO  message`.
pub fn log_line(e: &LogEntry, color: bool) -> String {
    let (label, code) = match (e.source, e.level) {
        (LogSource::Stdout, _) => ("stdout", "2"),
        (LogSource::Stderr, _) => ("stderr", "33"),
        (LogSource::Progress, _) => ("progress", "36"),
        (LogSource::Helm, _) => ("helm", "2"),
        (_, Level::Trace) => ("TRACE", "2"),
        (_, Level::Debug) => ("DEBUG", "2"),
        (_, Level::Info) => ("INFO", "32"),
        (_, Level::Warn) => ("WARN", "33"),
        (_, Level::Error) => ("ERROR", "31"),
    };
    format!(
        "{:>6}ms {} {}",
        e.at_ms,
        paint(&format!("{label:<8}"), code, color),
        e.message
    )
}

fn kubectl_name(api_version: &str, kind: &str, name: &str) -> String {
    let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    if group.is_empty() {
        format!("{}/{name}", kind.to_lowercase())
    } else {
        format!("{}.{group}/{name}", kind.to_lowercase())
    }
}

/// The end-of-run summary: plan (kubectl diff style), outputs, artifacts,
/// denials, status.
pub fn report_text(r: &RunReport, color: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{} {} in namespace {:?} ({}{}), run {}",
        paint("step", "1", color),
        r.step,
        r.namespace,
        r.backend,
        if r.dry_run { ", dry run" } else { "" },
        r.run_id
    );
    if r.plan.is_empty() {
        let _ = writeln!(out, "\nplan: no changes");
    } else {
        let _ = writeln!(out, "\nplan:");
        for e in &r.plan {
            let code = match e.action {
                Action::Created => "32",
                Action::Configured => "33",
                Action::Deleted => "31",
                Action::Unchanged => "2",
            };
            let _ = writeln!(
                out,
                "  {} {}",
                kubectl_name(&e.api_version, &e.kind, &e.name),
                paint(&e.action.to_string(), code, color)
            );
        }
        for e in &r.plan {
            if let Some(diff) = e.diff.as_deref().filter(|d| !d.trim().is_empty()) {
                let _ = writeln!(out);
                for line in diff.lines() {
                    let code = if line.starts_with("+++") || line.starts_with("---") {
                        "1"
                    } else if line.starts_with('+') {
                        "32"
                    } else if line.starts_with('-') {
                        "31"
                    } else if line.starts_with("@@") {
                        "36"
                    } else {
                        ""
                    };
                    let _ = writeln!(
                        out,
                        "{}",
                        if code.is_empty() {
                            line.to_string()
                        } else {
                            paint(line, code, color)
                        }
                    );
                }
            }
        }
    }
    let denied: Vec<_> = r
        .audit
        .iter()
        .filter(|a| a.decision == Decision::Denied)
        .collect();
    if !denied.is_empty() {
        let _ = writeln!(out, "\ndenied:");
        for a in denied {
            let _ = writeln!(out, "  {} {}: {}", a.call, a.target, a.reason);
        }
    }
    if !r.outputs.is_empty() {
        let _ = writeln!(out, "\noutputs:");
        for (k, v) in &r.outputs {
            let _ = writeln!(out, "  {k} = {v}");
        }
    }
    if !r.artifacts.is_empty() {
        let _ = writeln!(out, "\nartifacts:");
        for a in &r.artifacts {
            let _ = writeln!(
                out,
                "  {} ({} bytes) {}",
                a.name,
                a.size,
                a.host_path.display()
            );
        }
    }
    let (word, code) = match r.status {
        Status::Succeeded => ("succeeded", "32"),
        Status::Failed => ("failed", "31"),
        Status::LimitExceeded => ("limit exceeded", "31"),
        Status::Invalid => ("invalid", "31"),
        Status::Cancelled => ("cancelled", "33"),
    };
    let _ = writeln!(
        out,
        "\n{} in {} ms",
        paint(word, &format!("1;{code}"), color),
        r.duration_ms
    );
    if let Some(e) = &r.error {
        let _ = writeln!(out, "error: {e}");
    }
    out
}

/// `stepbox inspect` as text.
pub fn inspect_text(path: &Path, info: &ComponentInfo) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", path.display());
    let _ = writeln!(out, "  size:    {} bytes", info.size);
    let _ = writeln!(out, "  sha256:  {}", info.sha256);
    match &info.step_world {
        Ok(()) => {
            let _ = writeln!(out, "  world:   stepbox:step/step (runnable)");
        }
        Err(e) => {
            let _ = writeln!(out, "  world:   NOT a step: {e}");
        }
    }
    let _ = writeln!(out, "\ncapabilities:");
    if info.capabilities.is_empty() {
        let _ = writeln!(out, "  (none beyond clocks, random and stdio)");
    }
    for c in &info.capabilities {
        let _ = writeln!(out, "  {c}");
    }
    let _ = writeln!(out, "\nneeds (stepbox:needs):");
    match &info.needs {
        None => {
            let _ = writeln!(
                out,
                "  (none declared: runs may do all their policy allows; declare them with \
                 stepbox_sdk::needs! or a step.yaml)"
            );
        }
        Some(needs) => out.push_str(&needs_text(needs)),
    }
    let _ = writeln!(out, "\nimports:");
    for i in &info.imports {
        let mark = if i.provided == Some(false) {
            "  (NOT provided by this host)"
        } else {
            ""
        };
        let _ = writeln!(out, "  {} [{}]{mark}", i.name, i.kind);
    }
    let _ = writeln!(out, "\nexports:");
    for e in &info.exports {
        let _ = writeln!(out, "  {} [{}]", e.name, e.kind);
    }
    out
}

/// A declaration, one line per (group, resource) and its verbs.
fn needs_text(needs: &stepbox::needs::StepNeeds) -> String {
    let mut out = String::new();
    for g in needs.grants() {
        let _ = writeln!(out, "  {g}");
    }
    if needs.rules().is_empty() {
        let _ = writeln!(out, "  no Kubernetes objects");
    }
    if needs.helm() {
        let _ = writeln!(out, "  helm");
    }
    for entry in needs.outbound_entries() {
        let _ = writeln!(out, "  outbound: {entry}");
    }
    if let Some(level) = needs.pod_security() {
        let _ = writeln!(out, "  podSecurity: {}", level.as_str());
    }
    out
}

/// `stepbox inspect --output json`.
pub fn inspect_json(path: &Path, info: &ComponentInfo) -> serde_json::Value {
    serde_json::json!({
        "path": path.display().to_string(),
        "size": info.size,
        "sha256": info.sha256,
        "kind": info.kind,
        "step": info.step_world.is_ok(),
        "problem": info.step_world.as_ref().err(),
        "capabilities": info.capabilities,
        "needs": info.needs,
        "imports": info.imports,
        "exports": info.exports,
    })
}

/// `stepbox check` as a table.
pub fn check_text(r: &stepbox::check::CheckReport) -> String {
    use stepbox::check::Verdict;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "server:     {} ({})",
        r.server,
        r.server_version.as_deref().unwrap_or("did not answer")
    );
    let _ = writeln!(out, "namespace:  {} ({})", r.namespace, r.namespace_status);
    let _ = writeln!(out, "compared:   {} with the credentials", r.compared_with);
    if !r.rows.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<44} {:<8} {:<12} {:<8} {:<8} RESULT",
            "RESOURCE", "VERB", "NAMESPACE", "WANTED", "CLUSTER"
        );
        for row in &r.rows {
            let mut resource = if row.group.is_empty() {
                row.resource.clone()
            } else {
                format!("{}.{}", row.resource, row.group)
            };
            if !row.name.is_empty() {
                resource = format!("{resource} {:?}", row.name);
            }
            let ns = if row.namespace.is_empty() {
                "(cluster)"
            } else {
                &row.namespace
            };
            let cluster = match row.cluster {
                Some(true) => "yes",
                Some(false) => "no",
                None => "?",
            };
            let verdict = match row.verdict {
                Verdict::Ok => "ok",
                Verdict::Missing => "MISSING",
                Verdict::TooBroad => "TOO BROAD",
                Verdict::NotHeld => "ok (not held)",
                Verdict::Unknown => "unknown",
            };
            let _ = writeln!(
                out,
                "{resource:<44} {:<8} {ns:<12} {:<8} {cluster:<8} {verdict}",
                row.verb,
                if row.policy { "grants" } else { "-" }
            );
        }
    }
    if r.ok {
        let _ = writeln!(
            out,
            "\nok: the credentials hold what the policy grants, and no cluster-wide rights"
        );
    } else {
        let _ = writeln!(out);
        for p in &r.problems {
            let _ = writeln!(out, "problem: {p}");
        }
    }
    out
}
