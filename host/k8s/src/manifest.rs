//! Parsing manifests: multi-document YAML or JSON into Kubernetes objects.
//!
//! Steps are untrusted, and so is the text they hand to `kube.apply`. This
//! parser is strict and bounded:
//!
//! - at most [`MAX_MANIFEST_BYTES`] of text, and at most [`MAX_DEPTH`] levels
//!   of nesting in any document;
//! - YAML aliases are expanded by `serde_yaml_ng`, which refuses runaway
//!   expansion ("billion laughs") with an error;
//! - map keys must be strings; custom YAML tags (`!foo`) are refused (the
//!   core tags `!!str`, `!!int`, ... are fine); `<<` merge keys are applied;
//!   numbers must be finite;
//! - each document must be a mapping with a non-empty string `apiVersion`,
//!   `kind` and `metadata.name`.
//!
//! Empty documents (`---` alone, `null`, only comments) are skipped. A
//! `kind: List` (or any `*List` kind with `items`, as `kubectl get -o yaml`
//! prints) is flattened into its items. Errors name the document by its
//! 1-based position in the text (counting skipped documents too) and, inside
//! a list, the item.
//!
//! ```
//! let docs = stepbox_k8s::manifest::parse_documents(
//!     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n# nothing\n---\n\
//!      {\"apiVersion\": \"v1\", \"kind\": \"Secret\", \"metadata\": {\"name\": \"b\"}}",
//! )?;
//! assert_eq!(docs.len(), 2);
//! assert_eq!(docs[1]["kind"], "Secret");
//! # Ok::<(), stepbox_k8s::manifest::ManifestError>(())
//! ```

use serde::Deserialize;
use serde_json::{Map, Number, Value};
use serde_yaml_ng::Value as Yaml;

/// Largest manifest text accepted: 8 MiB. (Kubernetes limits one object to
/// about 1.5 MiB in etcd; 8 MiB leaves room for many objects in one call.)
pub const MAX_MANIFEST_BYTES: usize = 8 * 1024 * 1024;

/// Deepest nesting accepted in one document: 64 levels of maps and lists.
/// Real manifests stay well under 20.
pub const MAX_DEPTH: usize = 64;

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The text is larger than [`MAX_MANIFEST_BYTES`].
    #[error("manifest is {size} bytes, more than the limit of {max} bytes")]
    TooLarge {
        /// Size of the text.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The YAML (or JSON) does not parse, or expands too much.
    #[error("document {document}: {message}")]
    Syntax {
        /// 1-based document number.
        document: usize,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A document nests deeper than [`MAX_DEPTH`].
    #[error("document {document}: nested more than {max} levels deep at {path}")]
    TooDeep {
        /// 1-based document number.
        document: usize,
        /// Where the limit was hit.
        path: String,
        /// The limit.
        max: usize,
    },
    /// Flow collections (`[...]`, `{...}`) nest too deeply; refused before
    /// parsing.
    #[error("line {line}: flow collections ([...] or {{...}}) nest more than {max} levels deep")]
    FlowTooDeep {
        /// 1-based line of the text where the limit was passed.
        line: usize,
        /// The limit.
        max: usize,
    },
    /// A map key is not a string (`1: x`, `[a]: b`, `null: c`).
    #[error("document {document}: map keys must be strings, found {key} at {path}")]
    NonStringKey {
        /// 1-based document number.
        document: usize,
        /// The map holding the key.
        path: String,
        /// The key, rendered.
        key: String,
    },
    /// A custom YAML tag (`!foo`).
    #[error("document {document}: YAML tag {tag} at {path} is not supported")]
    Tag {
        /// 1-based document number.
        document: usize,
        /// Where the tag is.
        path: String,
        /// The tag.
        tag: String,
    },
    /// A number JSON cannot represent (`.nan`, `.inf`).
    #[error("document {document}: {value} at {path} is not a finite number")]
    NotFinite {
        /// 1-based document number.
        document: usize,
        /// Where the number is.
        path: String,
        /// The number, rendered.
        value: String,
    },
    /// A document (or list item) is not a mapping.
    #[error("document {document}{item}: expected a Kubernetes object (a mapping), found {found}")]
    NotAnObject {
        /// 1-based document number.
        document: usize,
        /// `", item N"` inside a list, else empty.
        item: String,
        /// What was found instead.
        found: String,
    },
    /// A required field is missing, empty or not a string.
    #[error("document {document}{item}: {problem}")]
    MissingField {
        /// 1-based document number.
        document: usize,
        /// `", item N"` inside a list, else empty.
        item: String,
        /// What is wrong ("missing metadata.name", "kind must be a string").
        problem: String,
    },
}

/// Result of manifest parsing.
pub type Result<T, E = ManifestError> = std::result::Result<T, E>;

/// Parses multi-document YAML or JSON into objects (see the
/// [module docs](self)).
///
/// # Errors
/// [`ManifestError`] for the first document that is refused.
pub fn parse_documents(text: &str) -> Result<Vec<Value>> {
    if text.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge {
            size: text.len(),
            max: MAX_MANIFEST_BYTES,
        });
    }
    if let Some(line) = flow_nesting_exceeds(text, FLOW_SCAN_LIMIT) {
        return Err(ManifestError::FlowTooDeep {
            line,
            max: FLOW_SCAN_LIMIT,
        });
    }
    let mut out = Vec::new();
    for (index, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let document = index + 1;
        let syntax = |e: serde_yaml_ng::Error| ManifestError::Syntax {
            document,
            message: e.to_string(),
        };
        let mut yaml = Yaml::deserialize(doc).map_err(syntax)?;
        yaml.apply_merge().map_err(syntax)?;
        let value = to_json(&yaml, document, &mut Vec::new())?;
        if value.is_null() {
            continue;
        }
        flatten(value, document, None, 0, &mut out)?;
    }
    Ok(out)
}

/// The path of the node being converted, for error messages (shortened in
/// the middle when very deep).
fn render_path(path: &[String]) -> String {
    if path.is_empty() {
        return "the top level".to_string();
    }
    let full = path.concat();
    let full = full.trim_start_matches('.');
    if path.len() <= 16 {
        return full.to_string();
    }
    let head = path[..8].concat();
    let tail = path[path.len() - 6..].concat();
    format!("{}…{tail}", head.trim_start_matches('.'))
}

/// Flow nesting (`[[[...` / `{{{...`) at which a manifest is refused before
/// the YAML parser sees it. libyaml's scanner does work proportional to the
/// flow depth for every token, so deep flow nesting costs quadratic time
/// even though the parse fails at depth 128 in the end.
const FLOW_SCAN_LIMIT: usize = 2 * MAX_DEPTH;

/// A lexical pre-scan for deep flow nesting: returns the 1-based line where
/// flow collections nest deeper than `limit`, if any.
///
/// It follows just enough YAML to count only brackets the parser would see
/// as flow indicators: comments, single- and double-quoted scalars (also
/// across lines), block scalars (`|`, `>`, skipped by indentation),
/// document markers, and the fact that in block context a flow collection
/// can only start where a value starts. Anything it mistakes only makes it
/// count too much, never too little, for well-formed YAML.
fn flow_nesting_exceeds(text: &str, limit: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    // Inside a block scalar: (indentation of its parent line, content indentation once known).
    let mut block: Option<(usize, Option<usize>)> = None;
    for (n, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let b = line.as_bytes();
        let indent = b.iter().take_while(|&&c| c == b' ').count();
        let blank = b[indent..].iter().all(|&c| c == b' ' || c == b'\t');
        let doc_marker = (line.starts_with("---") || line.starts_with("..."))
            && matches!(b.get(3), None | Some(b' ' | b'\t'));
        if doc_marker {
            depth = 0;
            quote = None;
            block = None;
        }
        if let Some((parent, content)) = block {
            if blank {
                continue;
            }
            match content {
                None if indent > parent => {
                    block = Some((parent, Some(indent)));
                    continue;
                }
                Some(c) if indent >= c => continue,
                _ => block = None,
            }
        }
        let mut i = if doc_marker { 3 } else { 0 };
        let mut value_start = true;
        while i < b.len() {
            let c = b[i];
            if let Some(q) = quote {
                if q == b'"' && c == b'\\' {
                    i += 2;
                    continue;
                }
                if c == q {
                    if q == b'\'' && b.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    quote = None;
                    value_start = false;
                }
                i += 1;
                continue;
            }
            let next_is_space = matches!(b.get(i + 1), None | Some(b' ' | b'\t'));
            match c {
                b' ' | b'\t' => {}
                b'#' if i == 0 || matches!(b[i - 1], b' ' | b'\t') => break,
                b'"' | b'\'' if value_start => quote = Some(c),
                // Anchors, tags and aliases come before the value they name.
                b'&' | b'!' | b'*' if value_start => {
                    while i + 1 < b.len()
                        && !matches!(b[i + 1], b' ' | b'\t' | b',' | b'[' | b']' | b'{' | b'}')
                    {
                        i += 1;
                    }
                }
                b'[' | b'{' if depth > 0 || value_start => {
                    depth += 1;
                    if depth > limit {
                        return Some(n + 1);
                    }
                    value_start = true;
                }
                b']' | b'}' if depth > 0 => {
                    depth -= 1;
                    value_start = false;
                }
                b',' if depth > 0 => value_start = true,
                b':' if depth > 0 || next_is_space => value_start = true,
                b'-' | b'?' if next_is_space && value_start => value_start = true,
                b'|' | b'>' if value_start && depth == 0 => {
                    let rest = line[i + 1..].trim_start_matches(|ch: char| {
                        ch == '-' || ch == '+' || ch.is_ascii_digit()
                    });
                    let rest = rest.trim_start();
                    if rest.is_empty() || rest.starts_with('#') {
                        block = Some((indent, None));
                        break;
                    }
                    value_start = false;
                }
                _ => value_start = false,
            }
            i += 1;
        }
    }
    None
}

fn to_json(v: &Yaml, document: usize, path: &mut Vec<String>) -> Result<Value> {
    if path.len() > MAX_DEPTH {
        return Err(ManifestError::TooDeep {
            document,
            path: render_path(path),
            max: MAX_DEPTH,
        });
    }
    Ok(match v {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Number(i.into())
            } else if let Some(u) = n.as_u64() {
                Value::Number(u.into())
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                match Number::from_f64(f) {
                    Some(num) => Value::Number(num),
                    None => {
                        return Err(ManifestError::NotFinite {
                            document,
                            path: render_path(path),
                            value: n.to_string(),
                        });
                    }
                }
            }
        }
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                path.push(format!("[{i}]"));
                out.push(to_json(item, document, path)?);
                path.pop();
            }
            Value::Array(out)
        }
        Yaml::Mapping(map) => {
            let mut out = Map::with_capacity(map.len());
            for (k, v) in map {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    other => {
                        let key = serde_yaml_ng::to_string(other)
                            .map(|s| s.trim_end().to_string())
                            .unwrap_or_else(|_| "a non-string key".into());
                        return Err(ManifestError::NonStringKey {
                            document,
                            path: render_path(path),
                            key,
                        });
                    }
                };
                path.push(format!(".{key}"));
                let value = to_json(v, document, path)?;
                path.pop();
                out.insert(key, value);
            }
            Value::Object(out)
        }
        Yaml::Tagged(tagged) => {
            return Err(ManifestError::Tag {
                document,
                path: render_path(path),
                tag: tagged.tag.to_string(),
            });
        }
    })
}

fn check_object(v: &Value, document: usize, item: &str) -> Result<()> {
    let Some(obj) = v.as_object() else {
        return Err(ManifestError::NotAnObject {
            document,
            item: item.to_string(),
            found: crate::object::type_name(v).to_string(),
        });
    };
    let missing = |problem: String| ManifestError::MissingField {
        document,
        item: item.to_string(),
        problem,
    };
    let string_field = |name: &str, value: Option<&Value>| -> Result<()> {
        match value {
            Some(Value::String(s)) if !s.is_empty() => Ok(()),
            None | Some(Value::Null) | Some(Value::String(_)) => {
                Err(missing(format!("missing {name}")))
            }
            Some(other) => Err(missing(format!(
                "{name} must be a string, found {}",
                crate::object::type_name(other)
            ))),
        }
    };
    string_field("apiVersion", obj.get("apiVersion"))?;
    string_field("kind", obj.get("kind"))?;
    match obj.get("metadata") {
        None | Some(Value::Null) => return Err(missing("missing metadata.name".into())),
        Some(Value::Object(m)) => string_field("metadata.name", m.get("name"))?,
        Some(other) => {
            return Err(missing(format!(
                "metadata must be a mapping, found {}",
                crate::object::type_name(other)
            )));
        }
    }
    Ok(())
}

fn is_list(v: &Value) -> bool {
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    kind.ends_with("List") && v.get("items").is_some_and(Value::is_array)
}

fn flatten(
    v: Value,
    document: usize,
    item: Option<String>,
    depth: usize,
    out: &mut Vec<Value>,
) -> Result<()> {
    let label = item
        .as_deref()
        .map(|i| format!(", item {i}"))
        .unwrap_or_default();
    if !v.is_object() {
        return Err(ManifestError::NotAnObject {
            document,
            item: label,
            found: crate::object::type_name(&v).to_string(),
        });
    }
    if is_list(&v) && depth < 4 {
        let Value::Object(mut m) = v else {
            return Ok(());
        };
        let Some(Value::Array(items)) = m.remove("items") else {
            return Ok(());
        };
        for (i, it) in items.into_iter().enumerate() {
            let name = match &item {
                Some(outer) => format!("{outer}.{}", i + 1),
                None => (i + 1).to_string(),
            };
            flatten(it, document, Some(name), depth + 1, out)?;
        }
        return Ok(());
    }
    check_object(&v, document, &label)?;
    out.push(v);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn multi_document_yaml_and_json() {
        let text = r#"
# leading comment
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: a
data:
  n: "1"
---
---
# only a comment
---
null
---
{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 2}}
"#;
        let docs = parse_documents(text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["data"]["n"], "1");
        assert_eq!(docs[1]["spec"]["replicas"], 2);
        assert!(parse_documents("").unwrap().is_empty());
        assert!(parse_documents("# just a comment\n").unwrap().is_empty());
        assert!(parse_documents("---\n---\n").unwrap().is_empty());
    }

    #[test]
    fn keeps_key_order_and_scalar_types() {
        let docs = parse_documents(
            "apiVersion: v1\nkind: X\nmetadata: {name: a}\nz: 1\na: 1.5\nm: true\nn: ~\ns: '007'\nbig: 18446744073709551615\nneg: -3\n",
        )
        .unwrap();
        let keys: Vec<&String> = docs[0].as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "apiVersion",
                "kind",
                "metadata",
                "z",
                "a",
                "m",
                "n",
                "s",
                "big",
                "neg"
            ]
        );
        assert_eq!(docs[0]["a"], 1.5);
        assert_eq!(docs[0]["m"], true);
        assert!(docs[0]["n"].is_null());
        assert_eq!(docs[0]["s"], "007");
        assert_eq!(docs[0]["big"], u64::MAX);
        assert_eq!(docs[0]["neg"], -3);
    }

    #[test]
    fn flattens_lists() {
        let text = r#"
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}
- apiVersion: v1
  kind: ConfigMapList
  items:
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
"#;
        let docs = parse_documents(text).unwrap();
        let names: Vec<&str> = docs
            .iter()
            .map(|d| d["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
        let err = parse_documents("apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- {kind: X}\n")
            .unwrap_err();
        assert_eq!(err.to_string(), "document 1, item 2: missing apiVersion");
        let err = parse_documents("apiVersion: v1\nkind: List\nitems: [3]\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "document 1, item 1: expected a Kubernetes object (a mapping), found a number"
        );
        // An empty list is fine.
        assert!(
            parse_documents("apiVersion: v1\nkind: List\nitems: []\n")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn missing_fields_are_named_with_document_number() {
        let ok = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n";
        let cases = [
            (
                "kind: ConfigMap\nmetadata: {name: a}\n",
                "document 2: missing apiVersion",
            ),
            (
                "apiVersion: v1\nmetadata: {name: a}\n",
                "document 2: missing kind",
            ),
            (
                "apiVersion: v1\nkind: ConfigMap\n",
                "document 2: missing metadata.name",
            ),
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
                "document 2: missing metadata.name",
            ),
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ''}\n",
                "document 2: missing metadata.name",
            ),
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: 5}\n",
                "document 2: metadata.name must be a string, found a number",
            ),
            (
                "apiVersion: v1\nkind: [a]\nmetadata: {name: a}\n",
                "document 2: kind must be a string, found an array",
            ),
            (
                "apiVersion: v1\nkind: X\nmetadata: x\n",
                "document 2: metadata must be a mapping, found a string",
            ),
            (
                "- a\n- b\n",
                "document 2: expected a Kubernetes object (a mapping), found an array",
            ),
            (
                "just text\n",
                "document 2: expected a Kubernetes object (a mapping), found a string",
            ),
        ];
        for (bad, want) in cases {
            let err = parse_documents(&format!("{ok}---\n{bad}")).unwrap_err();
            assert_eq!(err.to_string(), want);
        }
        // Numbering counts documents as written, empty ones included.
        let err = parse_documents("# comment\n---\nkind: X\n").unwrap_err();
        assert_eq!(err.to_string(), "document 1: missing apiVersion");
        let err = parse_documents(&format!("{ok}---\n---\n# empty\n---\nkind: X\n")).unwrap_err();
        assert_eq!(err.to_string(), "document 4: missing apiVersion");
    }

    #[test]
    fn syntax_errors_name_the_document() {
        let err =
            parse_documents("apiVersion: v1\nkind: X\nmetadata: {name: a}\n---\nkey: [unclosed\n")
                .unwrap_err();
        assert!(
            matches!(err, ManifestError::Syntax { document: 2, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("line"), "{err}");
        let err = parse_documents("a: 1\na: 2\n").unwrap_err();
        assert!(err.to_string().contains("duplicate"), "{err}");
    }

    #[test]
    fn rejects_odd_yaml() {
        let base = "apiVersion: v1\nkind: X\nmetadata: {name: a}\n";
        let err = parse_documents(&format!("{base}data:\n  1: x\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "document 1: map keys must be strings, found 1 at data"
        );
        let err = parse_documents(&format!("{base}data:\n  ? [a, b]\n  : x\n")).unwrap_err();
        assert!(matches!(err, ManifestError::NonStringKey { .. }), "{err}");
        let err = parse_documents(&format!("{base}spec: !custom {{a: 1}}\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "document 1: YAML tag !custom at spec is not supported"
        );
        let err = parse_documents(&format!("{base}spec:\n  x: [.nan]\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "document 1: .nan at spec.x[0] is not a finite number"
        );
        // Core tags are fine.
        let docs =
            parse_documents(&format!("{base}data:\n  port: !!str 80\n  n: !!int '3'\n")).unwrap();
        assert_eq!(docs[0]["data"]["port"], "80");
        assert_eq!(docs[0]["data"]["n"], 3);
    }

    #[test]
    fn merge_keys_and_aliases() {
        let text = r#"
apiVersion: v1
kind: X
metadata: {name: a}
base: &b {x: 1, y: 2}
derived:
  <<: *b
  y: 3
"#;
        let docs = parse_documents(text).unwrap();
        assert_eq!(docs[0]["derived"], serde_json::json!({"y": 3, "x": 1}));
    }

    #[test]
    fn size_cap() {
        let big = "#".repeat(MAX_MANIFEST_BYTES + 1);
        let err = parse_documents(&big).unwrap_err();
        assert!(matches!(err, ManifestError::TooLarge { .. }));
        assert!(err.to_string().contains("8388608"));
    }

    #[test]
    fn depth_cap() {
        let deep = |n: usize| {
            format!(
                "apiVersion: v1\nkind: X\nmetadata: {{name: a}}\nspec: {}{}\n",
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        assert!(parse_documents(&deep(40)).is_ok());
        let err = parse_documents(&deep(70)).unwrap_err();
        assert!(
            matches!(err, ManifestError::TooDeep { document: 1, .. }),
            "{err}"
        );
        // Far beyond any limit: refused up front, quickly (libyaml would
        // take minutes), not a stack overflow.
        let start = Instant::now();
        let err = parse_documents(&deep(1_000_000)).unwrap_err();
        assert!(
            matches!(err, ManifestError::FlowTooDeep { line: 4, max: 128 }),
            "{err}"
        );
        let json_deep = format!("{}{}", "{\"a\":".repeat(500_000), "}".repeat(500_000));
        assert!(matches!(
            parse_documents(&json_deep),
            Err(ManifestError::FlowTooDeep { line: 1, .. })
        ));
        assert!(matches!(
            parse_documents(&"[".repeat(1_000_000)),
            Err(ManifestError::FlowTooDeep { .. })
        ));
        let hidden = format!("a: [&x \"]]]]\" {}\n", "[".repeat(100_000));
        assert!(matches!(
            parse_documents(&hidden),
            Err(ManifestError::FlowTooDeep { .. })
        ));
        let after_block = format!("a: |\n  \"\nb: {}\n", "[".repeat(100_000));
        assert!(matches!(
            parse_documents(&after_block),
            Err(ManifestError::FlowTooDeep { line: 3, .. })
        ));
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "took {:?}",
            start.elapsed()
        );
        // Block nesting beyond the depth cap is an error too.
        let block: String = (0..200).map(|i| format!("{}a:\n", " ".repeat(i))).collect();
        assert!(parse_documents(&block).is_err());
    }

    #[test]
    fn flow_scan_has_no_false_positives_on_brackets_in_text() {
        let many = "[".repeat(300);
        let text = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: a}}\ndata:\n  dq: \"{many}\"\n  sq: '{many}'\n  \
             plain: x{many}\n  # {many}\n  script: |\n    {many}\n    {many}\n  folded: >-\n    {many}\n  \
             multi: \"a\n    {many}\"\n  json: '{{\"a\": [1, {{\"b\": \"]\"}}]}}'\n"
        );
        let docs = parse_documents(&text).unwrap();
        assert_eq!(docs[0]["data"]["plain"].as_str().map(str::len), Some(301));
        assert_eq!(
            flow_nesting_exceeds("a: [[[1]]]\nb: {c: [{d: 1}]}\n", 3),
            None
        );
        assert_eq!(flow_nesting_exceeds("a: [[[[1]]]]\n", 3), Some(1));
    }

    #[test]
    fn billion_laughs_fails_fast() {
        let mut text = String::from(
            "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            text.push_str(&format!("a{i}: &a{i} [{}]\n", vec![prev; 9].join(",")));
        }
        text.push_str("apiVersion: v1\nkind: X\nmetadata: {name: a}\n");
        let start = Instant::now();
        let err = parse_documents(&text).unwrap_err();
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "took {:?}",
            start.elapsed()
        );
        assert!(err.to_string().contains("repetition limit"), "{err}");
    }

    #[test]
    fn never_panics_on_garbage() {
        for text in [
            "\u{0}",
            "{",
            "]",
            "- - - -",
            "? ? ?",
            "*x",
            "&a",
            "!!binary xx",
            "%YAML 9.9\n---\na",
            "\t\ta: b",
            "a: 'x",
        ] {
            let _ = parse_documents(text);
        }
    }
}
