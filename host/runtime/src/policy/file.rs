//! The policy file format (`kind: StepPolicy`, see the [module docs](super)):
//! parsing, validation with messages that name the field, and the sizes and
//! durations it is written in.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use stepbox_k8s::resources::REQUEST_VERBS;

use super::{
    API_VERSION, DEFAULT_YAML, KIND, Limits, Outbound, PodSecurityLevel, Policy, PolicyError,
    PolicyRule, Result,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PolicyFile {
    api_version: String,
    kind: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    require_digest: bool,
    #[serde(default)]
    pod_security: Option<String>,
    rules: Vec<PolicyRule>,
    #[serde(default)]
    limits: LimitsFile,
    #[serde(default)]
    outbound: Vec<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LimitsFile {
    memory: Option<Scalar>,
    timeout: Option<Scalar>,
    log_bytes: Option<Scalar>,
    output_bytes: Option<Scalar>,
    workspace_bytes: Option<Scalar>,
    workspace_files: Option<Scalar>,
    http_request_bytes: Option<Scalar>,
    http_response_bytes: Option<Scalar>,
    http_timeout: Option<Scalar>,
}

/// A size or duration as written: a number or a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Int(u64),
    Text(String),
}

/// Parses a size: plain bytes, or a number (decimals allowed) with `Ki`,
/// `Mi`, `Gi`, `Ti` (powers of 1024) or `K`/`k`, `M`, `G`, `T` (powers of
/// 1000). Fractions of a byte round up.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let multiplier: u64 = match suffix.trim_start() {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "K" | "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        _ => return None,
    };
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.matches('.').count() > 1
    {
        return None;
    }
    match num.split_once('.') {
        None => num.parse::<u64>().ok()?.checked_mul(multiplier),
        Some((whole, frac)) => {
            let whole: u64 = whole.parse().ok()?;
            let frac_digits = frac.len().min(18);
            let frac_value: u64 = frac[..frac_digits].parse().ok()?;
            let scale = 10u64.checked_pow(u32::try_from(frac_digits).ok()?)?;
            let frac_bytes =
                (u128::from(frac_value) * u128::from(multiplier)).div_ceil(u128::from(scale));
            whole
                .checked_mul(multiplier)?
                .checked_add(u64::try_from(frac_bytes).ok()?)
        }
    }
}

fn size_field(field: &str, v: Option<Scalar>, default: u64, allow_zero: bool) -> Result<u64> {
    let bad = |message: String| PolicyError::Field {
        field: field.to_string(),
        message,
    };
    let n = match v {
        None => return Ok(default),
        Some(Scalar::Int(n)) => n,
        Some(Scalar::Text(s)) => parse_size(&s).ok_or_else(|| {
            bad(format!(
                "invalid size {s:?}: expected bytes, or a number with a suffix Ki, Mi, Gi, Ti (1024) or K, M, G, T (1000), e.g. \"256Mi\""
            ))
        })?,
    };
    if n == 0 && !allow_zero {
        return Err(bad("must be greater than zero".into()));
    }
    Ok(n)
}

fn duration_field(field: &str, v: Option<Scalar>, default: Duration) -> Result<Duration> {
    let bad = |message: String| PolicyError::Field {
        field: field.to_string(),
        message,
    };
    let d = match v {
        None => return Ok(default),
        Some(Scalar::Int(secs)) => Duration::from_secs(secs),
        Some(Scalar::Text(s)) => match s.trim().parse::<u64>() {
            Ok(secs) => Duration::from_secs(secs),
            Err(_) => humantime::parse_duration(s.trim()).map_err(|e| {
                bad(format!(
                    "invalid duration {s:?}: {e}; expected e.g. \"90s\", \"10m\" or \"1h 30m\""
                ))
            })?,
        },
    };
    if d.is_zero() {
        return Err(bad("must be greater than zero".into()));
    }
    Ok(d)
}

pub(crate) fn validate_rule(i: usize, rule: &PolicyRule) -> Result<()> {
    let field = |name: &str| format!("rules[{i}].{name}");
    let bad = |name: &str, message: String| PolicyError::Field {
        field: field(name),
        message,
    };
    if rule.api_groups.is_empty() {
        return Err(bad(
            "apiGroups",
            "must list at least one group (\"\" is the core group, \"*\" any)".into(),
        ));
    }
    if rule.resources.is_empty() {
        return Err(bad(
            "resources",
            "must list at least one resource (\"*\" for any)".into(),
        ));
    }
    if rule.verbs.is_empty() {
        return Err(bad("verbs", "must list at least one verb".into()));
    }
    for (j, v) in rule.verbs.iter().enumerate() {
        if v != "*" && !REQUEST_VERBS.contains(&v.as_str()) {
            return Err(bad(
                &format!("verbs[{j}]"),
                format!(
                    "unknown verb {v:?}; expected one of {}, *",
                    REQUEST_VERBS.join(", ")
                ),
            ));
        }
    }
    for (j, r) in rule.resources.iter().enumerate() {
        let ok = !r.is_empty()
            && r.split('/').count() <= 2
            && r.split('/').all(|p| {
                p == "*"
                    || (!p.is_empty()
                        && p.chars().all(|c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'
                        }))
            });
        if !ok {
            return Err(bad(
                &format!("resources[{j}]"),
                format!(
                    "invalid resource {r:?}; expected a lowercase plural like \"deployments\", \"pods/log\", \"*\" or \"*/scale\""
                ),
            ));
        }
    }
    Ok(())
}

/// `podSecurity`: a level of the Pod Security Standards, baseline when
/// unset.
fn pod_security_field(v: Option<&str>) -> Result<PodSecurityLevel> {
    let Some(name) = v else {
        return Ok(PodSecurityLevel::default());
    };
    PodSecurityLevel::parse(name).ok_or_else(|| PolicyError::Field {
        field: "podSecurity".into(),
        message: format!(
            "unknown level {name:?}; expected privileged, baseline or restricted (the Pod Security Standards)"
        ),
    })
}

impl Policy {
    /// Parses a policy file (the module docs give the format).
    ///
    /// # Errors
    /// [`PolicyError::Parse`] for YAML errors, unknown fields and wrong
    /// types; [`PolicyError::Field`] for a wrong `apiVersion`/`kind`, a bad
    /// namespace, verb, resource, size or duration. Messages name the field
    /// and say what is expected.
    pub fn from_yaml(text: &str) -> Result<Self> {
        if text.len() > stepbox_k8s::manifest::MAX_MANIFEST_BYTES {
            return Err(PolicyError::Parse(format!(
                "the policy is {} bytes, more than the limit of {}",
                text.len(),
                stepbox_k8s::manifest::MAX_MANIFEST_BYTES
            )));
        }
        let file: PolicyFile = serde_yaml_ng::from_str(text).map_err(|e| {
            let msg = e.to_string();
            if msg.contains("missing field `rules`") {
                PolicyError::Parse(format!(
                    "{msg} (a StepPolicy must list its rules; `rules: []` grants nothing)"
                ))
            } else {
                PolicyError::Parse(msg)
            }
        })?;
        if file.api_version != API_VERSION {
            return Err(PolicyError::Field {
                field: "apiVersion".into(),
                message: format!("expected {API_VERSION:?}, found {:?}", file.api_version),
            });
        }
        if file.kind != KIND {
            return Err(PolicyError::Field {
                field: "kind".into(),
                message: format!("expected {KIND:?}, found {:?}", file.kind),
            });
        }
        if let Some(ns) = &file.namespace {
            stepbox_k8s::names::dns1123_label(ns).map_err(|why| PolicyError::Field {
                field: "namespace".into(),
                message: format!("invalid namespace {ns:?}: {why}"),
            })?;
        }
        for (i, rule) in file.rules.iter().enumerate() {
            validate_rule(i, rule)?;
        }
        let l = file.limits;
        let limits = Limits {
            memory_bytes: size_field(
                "limits.memory",
                l.memory,
                Limits::DEFAULT_MEMORY_BYTES,
                false,
            )?,
            timeout: duration_field("limits.timeout", l.timeout, Limits::DEFAULT_TIMEOUT)?,
            log_bytes: size_field(
                "limits.logBytes",
                l.log_bytes,
                Limits::DEFAULT_LOG_BYTES,
                true,
            )?,
            output_bytes: size_field(
                "limits.outputBytes",
                l.output_bytes,
                Limits::DEFAULT_OUTPUT_BYTES,
                true,
            )?,
            workspace_bytes: size_field(
                "limits.workspaceBytes",
                l.workspace_bytes,
                Limits::DEFAULT_WORKSPACE_BYTES,
                true,
            )?,
            workspace_files: size_field(
                "limits.workspaceFiles",
                l.workspace_files,
                Limits::DEFAULT_WORKSPACE_FILES,
                true,
            )?,
            http_request_bytes: size_field(
                "limits.httpRequestBytes",
                l.http_request_bytes,
                Limits::DEFAULT_HTTP_REQUEST_BYTES,
                true,
            )?,
            http_response_bytes: size_field(
                "limits.httpResponseBytes",
                l.http_response_bytes,
                Limits::DEFAULT_HTTP_RESPONSE_BYTES,
                true,
            )?,
            http_timeout: duration_field(
                "limits.httpTimeout",
                l.http_timeout,
                Limits::DEFAULT_HTTP_TIMEOUT,
            )?,
        };
        Ok(Self {
            namespace: file.namespace,
            rules: file.rules,
            limits,
            require_digest: file.require_digest,
            outbound: Outbound::parse(&file.outbound)?,
            pod_security: pod_security_field(file.pod_security.as_deref())?,
        })
    }

    /// Reads and parses a policy file.
    ///
    /// # Errors
    /// [`PolicyError::Io`] when the file cannot be read, else as
    /// [`Policy::from_yaml`].
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml(&text)
    }

    /// The built-in default policy as commented YAML (what
    /// `stepbox policy default` prints); it parses to [`Policy::default`].
    pub fn default_yaml() -> &'static str {
        DEFAULT_YAML
    }
}
