//! YAML manifests to JSON values and back.
//!
//! ```no_run
//! use stepbox_sdk::yaml;
//!
//! # fn demo() -> stepbox_sdk::Result<()> {
//! let text = std::fs::read_to_string("/packages/app.yaml")?;
//! for doc in yaml::documents(&text)? {
//!     stepbox_sdk::info!("{} {}", doc["kind"], doc["metadata"]["name"]);
//! }
//! # Ok(())
//! # }
//! ```

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Parses YAML text of one or many documents (separated by `---`) into JSON
/// values, in order. Empty and `null` documents are skipped; merge keys
/// (`<<: *base`) are applied. A parse error is [`Error::Invalid`] naming the
/// document's number (from 1) and the line.
pub fn documents(text: &str) -> Result<Vec<serde_json::Value>> {
    let mut docs = Vec::new();
    for (index, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let number = index + 1;
        let mut value = serde_yaml_ng::Value::deserialize(document)
            .map_err(|e| Error::invalid(format!("document {number}: {e}")))?;
        value
            .apply_merge()
            .map_err(|e| Error::invalid(format!("document {number}: {e}")))?;
        if value.is_null() {
            continue;
        }
        let json = serde_json::to_value(&value)
            .map_err(|e| Error::invalid(format!("document {number}: {e}")))?;
        docs.push(json);
    }
    Ok(docs)
}

/// Serializes a value (a JSON value, a `k8s_openapi` object, ...) as one
/// YAML document.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    Ok(serde_yaml_ng::to_string(value)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn several_documents_skipping_empty_ones() {
        let text = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n---\n# only a comment\n---\nnull\n---\nkind: Service\n";
        let docs = documents(text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["metadata"]["name"], "a");
        assert_eq!(docs[1], json!({"kind": "Service"}));
        assert!(documents("").unwrap().is_empty());
    }

    #[test]
    fn keeps_the_order_of_keys() {
        let docs =
            documents("kind: ConfigMap\napiVersion: v1\ndata:\n  z: '1'\n  a: '2'\n").unwrap();
        assert_eq!(
            docs[0].to_string(),
            r#"{"kind":"ConfigMap","apiVersion":"v1","data":{"z":"1","a":"2"}}"#
        );
    }

    #[test]
    fn merge_keys_are_applied() {
        let docs = documents("base: &b\n  a: 1\nderived:\n  <<: *b\n  c: 2\n").unwrap();
        assert_eq!(docs[0]["derived"], json!({"a": 1, "c": 2}));
    }

    #[test]
    fn errors_name_the_document() {
        let e = documents("a: 1\n---\nkind: [unclosed\n").unwrap_err();
        assert!(e.is_invalid());
        assert!(e.message().starts_with("document 2: "), "{e}");
        assert!(e.message().contains("line"), "{e}");
    }

    #[test]
    fn round_trip() {
        let value =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"yes": "no", "n": "0755"}});
        let text = to_string(&value).unwrap();
        assert!(
            !text.starts_with("---"),
            "one bare document, ready to join with ---: {text}"
        );
        assert_eq!(documents(&text).unwrap(), vec![value.clone()]);
        let joined = [text.clone(), text].join("\n---\n");
        assert_eq!(documents(&joined).unwrap(), vec![value.clone(), value]);
    }
}
