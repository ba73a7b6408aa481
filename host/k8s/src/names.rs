//! Kubernetes name validation, with the API server's wording.
//!
//! Each check returns `Err(reason)` with a sentence saying what is expected,
//! for the caller to wrap with the offending name and context.
//!
//! ```
//! use stepbox_k8s::names;
//!
//! assert!(names::dns1123_subdomain("web.v2").is_ok());
//! assert!(names::dns1123_subdomain("Web").is_err());
//! assert!(names::label_value("").is_ok());
//! ```

use crate::ResourceInfo;

/// Longest DNS-1123 subdomain.
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;
/// Longest DNS label (and label name or value).
pub const DNS_LABEL_MAX: usize = 63;

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn label_chars_ok(s: &str) -> bool {
    let first_last_ok = s.chars().next().is_some_and(is_lower_alnum)
        && s.chars().last().is_some_and(is_lower_alnum);
    first_last_ok && s.chars().all(|c| is_lower_alnum(c) || c == '-')
}

/// An RFC 1123 label: at most 63 characters of `[a-z0-9-]`, starting and
/// ending alphanumeric (namespace names).
pub fn dns1123_label(s: &str) -> Result<(), String> {
    if s.len() > DNS_LABEL_MAX {
        return Err(format!("must be no more than {DNS_LABEL_MAX} characters"));
    }
    if !label_chars_ok(s) {
        return Err("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', \
                    and must start and end with an alphanumeric character (e.g. 'my-name', or '123-abc')"
            .into());
    }
    Ok(())
}

/// An RFC 1123 subdomain: at most 253 characters, dot-separated RFC 1123
/// labels (most object names).
pub fn dns1123_subdomain(s: &str) -> Result<(), String> {
    if s.len() > DNS1123_SUBDOMAIN_MAX {
        return Err(format!(
            "must be no more than {DNS1123_SUBDOMAIN_MAX} characters"
        ));
    }
    if s.is_empty() || !s.split('.').all(label_chars_ok) {
        return Err("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \
                    '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')"
            .into());
    }
    Ok(())
}

/// An RFC 1035 label: like an RFC 1123 label but starting with a letter
/// (Service names).
pub fn dns1035_label(s: &str) -> Result<(), String> {
    if s.len() > DNS_LABEL_MAX {
        return Err(format!("must be no more than {DNS_LABEL_MAX} characters"));
    }
    let starts_alpha = s.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    if !starts_alpha || !label_chars_ok(s) {
        return Err("a DNS-1035 label must consist of lower case alphanumeric characters or '-', \
                    start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name', or 'abc-123')"
            .into());
    }
    Ok(())
}

/// A path segment name: anything that is not `.` or `..` and holds no `/` or
/// `%` (RBAC object names such as `system:auth-delegator`).
pub fn path_segment_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("may not be empty".into());
    }
    if s == "." || s == ".." {
        return Err(format!("may not be '{s}'"));
    }
    if s.contains('/') || s.contains('%') {
        return Err("may not contain '/' or '%'".into());
    }
    Ok(())
}

/// Validates the name of an object of kind `res` the way the API server
/// does for that kind: Services take RFC 1035 labels, Namespaces RFC 1123
/// labels, RBAC objects path segment names, everything else RFC 1123
/// subdomains.
pub fn object_name(res: &ResourceInfo, name: &str) -> Result<(), String> {
    match (res.group.as_str(), res.kind.as_str()) {
        ("", "Service") => dns1035_label(name),
        ("", "Namespace") => dns1123_label(name),
        ("rbac.authorization.k8s.io", _) => path_segment_name(name),
        _ => dns1123_subdomain(name),
    }
}

fn qualified_name_part(s: &str) -> Result<(), String> {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    if s.is_empty() {
        return Err("name part must be non-empty".into());
    }
    if s.len() > DNS_LABEL_MAX {
        return Err(format!(
            "name part must be no more than {DNS_LABEL_MAX} characters"
        ));
    }
    let ok = s.chars().next().is_some_and(alnum)
        && s.chars().last().is_some_and(alnum)
        && s.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err("name part must consist of alphanumeric characters, '-', '_' or '.', \
                    and must start and end with an alphanumeric character (e.g. 'MyName', or 'my.name', or '123-abc')"
            .into());
    }
    Ok(())
}

/// A qualified name (label and annotation keys): an optional DNS subdomain
/// prefix and `/`, then a name of at most 63 characters of `[A-Za-z0-9-_.]`
/// starting and ending alphanumeric.
pub fn qualified_name(s: &str) -> Result<(), String> {
    match s.split_once('/') {
        Some((prefix, name)) => {
            if prefix.is_empty() {
                return Err("prefix part must be non-empty".into());
            }
            dns1123_subdomain(prefix).map_err(|e| format!("prefix part {e}"))?;
            qualified_name_part(name)
        }
        None => qualified_name_part(s),
    }
}

/// A label value: empty, or at most 63 characters of `[A-Za-z0-9-_.]`
/// starting and ending alphanumeric.
pub fn label_value(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Ok(());
    }
    qualified_name_part(s).map_err(|e| e.replacen("name part", "a valid label value", 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::lookup;

    #[test]
    fn subdomains() {
        for ok in ["a", "web", "web-1", "a.b.c", "1abc", &"a".repeat(253)] {
            assert!(dns1123_subdomain(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Web",
            "-a",
            "a-",
            "a..b",
            ".a",
            "a_b",
            "a b",
            "ü",
            &"a".repeat(254),
        ] {
            assert!(dns1123_subdomain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn labels() {
        assert!(dns1123_label("dev-1").is_ok());
        assert!(dns1123_label("a.b").is_err());
        assert!(dns1123_label(&"a".repeat(64)).is_err());
        assert!(dns1035_label("web").is_ok());
        assert!(dns1035_label("1web").is_err());
        assert!(path_segment_name("system:auth-delegator").is_ok());
        assert!(path_segment_name("..").is_err());
        assert!(path_segment_name("a/b").is_err());
    }

    #[test]
    fn per_kind_rules() {
        assert!(object_name(&lookup("v1", "Service"), "1svc").is_err());
        assert!(object_name(&lookup("v1", "ConfigMap"), "1cm").is_ok());
        assert!(object_name(&lookup("v1", "Namespace"), "a.b").is_err());
        assert!(object_name(&lookup("rbac.authorization.k8s.io/v1", "Role"), "system:x").is_ok());
        assert!(object_name(&lookup("v1", "ConfigMap"), "system:x").is_err());
    }

    #[test]
    fn label_keys_and_values() {
        for ok in ["app", "app.kubernetes.io/name", "A_b.c-d", "x/y"] {
            assert!(qualified_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/a", "a/", "-a", "a/b/c", "Bad_/x", &"a".repeat(64)] {
            assert!(qualified_name(bad).is_err(), "{bad}");
        }
        assert!(label_value("").is_ok());
        assert!(label_value("v1.2_3").is_ok());
        assert!(label_value("a b").is_err());
        assert!(label_value("-a").unwrap_err().contains("label value"));
    }
}
