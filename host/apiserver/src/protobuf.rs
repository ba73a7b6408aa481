//! Request bodies in Kubernetes' protobuf encoding, for the few kinds real
//! clients send that way.
//!
//! client-go 1.33's generated clients encode built-in objects as protobuf
//! (`application/vnd.kubernetes.protobuf`) and do not fall back to JSON, so
//! kubectl's typed commands (`kubectl create namespace`, `create configmap`,
//! `create secret`, `create serviceaccount`, `create token`, `auth can-i`,
//! and `DeleteOptions` of typed deletes, as helm's) send protobuf bodies. This
//! module decodes those kinds into the JSON the rest of the server works
//! with, from a small schema of their fields (field numbers as in
//! `k8s.io/api`'s `generated.proto`). Other kinds answer
//! `415 UnsupportedMediaType` naming the kind, with JSON as the way out
//! (`kubectl create -f`, `kubectl apply`). Responses are always JSON, which
//! every client accepts.
//!
//! The wire format: the magic `k8s\0`, then a `runtime.Unknown` message
//! (`typeMeta` = 1 {`apiVersion` = 1, `kind` = 2}, `raw` = 2: the object's
//! own encoding, `contentEncoding` = 3, `contentType` = 4).

use base64::Engine;
use serde_json::{Map, Value, json};

/// The media type of protobuf bodies.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

const MAGIC: &[u8] = b"k8s\0";

/// How a field's value is encoded.
#[derive(Clone, Copy)]
enum Ty {
    Str,
    Bool,
    Int,
    /// `meta/v1.Time`: RFC 3339 in JSON.
    Time,
    /// `map<string, string>`.
    MapStr,
    /// `map<string, bytes>` (base64 values).
    MapBytes,
    Msg(&'static [Field]),
}

#[derive(Clone, Copy)]
struct Field {
    num: u64,
    name: &'static str,
    ty: Ty,
    repeated: bool,
}

const fn f(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: false,
    }
}

const fn list(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: true,
    }
}

const OWNER_REFERENCE: &[Field] = &[
    f(5, "apiVersion", Ty::Str),
    f(1, "kind", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    f(6, "controller", Ty::Bool),
    f(7, "blockOwnerDeletion", Ty::Bool),
];

const OBJECT_META: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "generateName", Ty::Str),
    f(3, "namespace", Ty::Str),
    f(5, "uid", Ty::Str),
    f(6, "resourceVersion", Ty::Str),
    f(7, "generation", Ty::Int),
    f(8, "creationTimestamp", Ty::Time),
    f(11, "labels", Ty::MapStr),
    f(12, "annotations", Ty::MapStr),
    list(13, "ownerReferences", Ty::Msg(OWNER_REFERENCE)),
    list(14, "finalizers", Ty::Str),
];

const NAMESPACE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(&[list(1, "finalizers", Ty::Str)])),
];

const CONFIG_MAP: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::MapStr),
    f(3, "binaryData", Ty::MapBytes),
    f(4, "immutable", Ty::Bool),
];

const SECRET: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::MapBytes),
    f(3, "type", Ty::Str),
    f(4, "stringData", Ty::MapStr),
    f(5, "immutable", Ty::Bool),
];

const OBJECT_REFERENCE: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(2, "namespace", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    f(5, "apiVersion", Ty::Str),
    f(6, "resourceVersion", Ty::Str),
    f(7, "fieldPath", Ty::Str),
];

const SERVICE_ACCOUNT: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    list(2, "secrets", Ty::Msg(OBJECT_REFERENCE)),
    list(3, "imagePullSecrets", Ty::Msg(&[f(1, "name", Ty::Str)])),
    f(4, "automountServiceAccountToken", Ty::Bool),
];

const DELETE_OPTIONS: &[Field] = &[
    f(1, "gracePeriodSeconds", Ty::Int),
    f(
        2,
        "preconditions",
        Ty::Msg(&[f(1, "uid", Ty::Str), f(2, "resourceVersion", Ty::Str)]),
    ),
    f(3, "orphanDependents", Ty::Bool),
    f(4, "propagationPolicy", Ty::Str),
    list(5, "dryRun", Ty::Str),
];

/// `authentication.k8s.io/v1` `TokenRequest` (`kubectl create token`).
const TOKEN_REQUEST: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(
        2,
        "spec",
        Ty::Msg(&[
            list(1, "audiences", Ty::Str),
            f(4, "expirationSeconds", Ty::Int),
            f(
                3,
                "boundObjectRef",
                Ty::Msg(&[
                    f(1, "kind", Ty::Str),
                    f(2, "apiVersion", Ty::Str),
                    f(3, "name", Ty::Str),
                    f(4, "uid", Ty::Str),
                ]),
            ),
        ]),
    ),
];

/// `authorization.k8s.io/v1` `SelfSubjectAccessReview` (`kubectl auth
/// can-i`).
const SELF_SUBJECT_ACCESS_REVIEW: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(
        2,
        "spec",
        Ty::Msg(&[
            f(
                1,
                "resourceAttributes",
                Ty::Msg(&[
                    f(1, "namespace", Ty::Str),
                    f(2, "verb", Ty::Str),
                    f(3, "group", Ty::Str),
                    f(4, "version", Ty::Str),
                    f(5, "resource", Ty::Str),
                    f(6, "subresource", Ty::Str),
                    f(7, "name", Ty::Str),
                ]),
            ),
            f(
                2,
                "nonResourceAttributes",
                Ty::Msg(&[f(1, "path", Ty::Str), f(2, "verb", Ty::Str)]),
            ),
        ]),
    ),
];

fn schema(api_version: &str, kind: &str) -> Option<&'static [Field]> {
    match (api_version, kind) {
        (_, "DeleteOptions") => Some(DELETE_OPTIONS),
        ("v1", "Namespace") => Some(NAMESPACE),
        ("v1", "ConfigMap") => Some(CONFIG_MAP),
        ("v1", "Secret") => Some(SECRET),
        ("v1", "ServiceAccount") => Some(SERVICE_ACCOUNT),
        ("authentication.k8s.io/v1", "TokenRequest") => Some(TOKEN_REQUEST),
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => Some(SELF_SUBJECT_ACCESS_REVIEW),
        _ => None,
    }
}

/// Why a protobuf body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    /// The bytes are not a Kubernetes protobuf envelope.
    #[error("malformed protobuf body: {0}")]
    Malformed(String),
    /// The kind is not one this server decodes.
    #[error(
        "the dev cluster reads protobuf only for v1 Namespace, ConfigMap, Secret, ServiceAccount, DeleteOptions, TokenRequest and SelfSubjectAccessReview, not {api_version} {kind}: send JSON instead (kubectl create -f / kubectl apply -f)"
    )]
    Unsupported {
        /// The object's apiVersion.
        api_version: String,
        /// The object's kind.
        kind: String,
    },
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// One field as read off the wire.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn malformed(what: &str) -> ProtobufError {
    ProtobufError::Malformed(what.to_string())
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| malformed("truncated varint"))?;
            self.pos += 1;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(malformed("varint too long"))
    }

    fn next(&mut self) -> Result<Option<(u64, Wire<'a>)>, ProtobufError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let (num, wire) = (key >> 3, key & 7);
        let value = match wire {
            0 => Wire::Varint(self.varint()?),
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                if self.pos + n > self.buf.len() {
                    return Err(malformed("truncated fixed-size field"));
                }
                self.pos += n;
                Wire::Fixed
            }
            2 => {
                let len =
                    usize::try_from(self.varint()?).map_err(|_| malformed("length overflow"))?;
                let end = self.pos.checked_add(len).filter(|e| *e <= self.buf.len());
                let end = end.ok_or_else(|| malformed("truncated length-delimited field"))?;
                let bytes = &self.buf[self.pos..end];
                self.pos = end;
                Wire::Bytes(bytes)
            }
            _ => return Err(malformed("unsupported wire type")),
        };
        Ok(Some((num, value)))
    }
}

fn string(bytes: &[u8]) -> Result<String, ProtobufError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed("a string field is not UTF-8"))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A map entry: key = 1, value = 2.
fn entry(bytes: &[u8]) -> Result<(String, &[u8]), ProtobufError> {
    let mut r = Reader::new(bytes);
    let (mut k, mut v): (String, &[u8]) = (String::new(), &[]);
    while let Some((num, w)) = r.next()? {
        match (num, w) {
            (1, Wire::Bytes(b)) => k = string(b)?,
            (2, Wire::Bytes(b)) => v = b,
            _ => {}
        }
    }
    Ok((k, v))
}

fn time(bytes: &[u8]) -> Result<Value, ProtobufError> {
    let mut r = Reader::new(bytes);
    let mut secs = 0i64;
    while let Some((num, w)) = r.next()? {
        if let (1, Wire::Varint(v)) = (num, w) {
            secs = v as i64;
        }
    }
    Ok(chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
        .unwrap_or(Value::Null))
}

fn message(bytes: &[u8], fields: &[Field]) -> Result<Value, ProtobufError> {
    let mut out = Map::new();
    let mut r = Reader::new(bytes);
    while let Some((num, w)) = r.next()? {
        let Some(field) = fields.iter().find(|f| f.num == num) else {
            continue;
        };
        let value = match (field.ty, w) {
            (Ty::Str, Wire::Bytes(b)) => json!(string(b)?),
            (Ty::Bool, Wire::Varint(v)) => json!(v != 0),
            (Ty::Int, Wire::Varint(v)) => json!(v as i64),
            (Ty::Time, Wire::Bytes(b)) => time(b)?,
            (Ty::Msg(sub), Wire::Bytes(b)) => message(b, sub)?,
            (Ty::MapStr | Ty::MapBytes, Wire::Bytes(b)) => {
                let (k, v) = entry(b)?;
                let v = match field.ty {
                    Ty::MapStr => json!(string(v)?),
                    _ => json!(b64(v)),
                };
                let map = out
                    .entry(field.name)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(m) = map.as_object_mut() {
                    m.insert(k, v);
                }
                continue;
            }
            _ => {
                return Err(malformed(&format!(
                    "field {} has the wrong wire type",
                    field.name
                )));
            }
        };
        if field.repeated {
            let list = out
                .entry(field.name)
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Some(a) = list.as_array_mut() {
                a.push(value);
            }
        } else {
            out.insert(field.name.to_string(), value);
        }
    }
    Ok(Value::Object(out))
}

/// Decodes a protobuf request body into the object as JSON (with
/// `apiVersion` and `kind`).
///
/// # Errors
/// [`ProtobufError::Malformed`] for bytes that are not a Kubernetes
/// protobuf envelope; [`ProtobufError::Unsupported`] for kinds this module
/// has no schema for.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| malformed("missing the k8s\\0 prefix"))?;
    let mut r = Reader::new(rest);
    let (mut api_version, mut kind, mut raw): (String, String, &[u8]) =
        (String::new(), String::new(), &[]);
    while let Some((num, w)) = r.next()? {
        match (num, w) {
            (1, Wire::Bytes(b)) => {
                let mut tm = Reader::new(b);
                while let Some((n, w)) = tm.next()? {
                    match (n, w) {
                        (1, Wire::Bytes(v)) => api_version = string(v)?,
                        (2, Wire::Bytes(v)) => kind = string(v)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(b)) => raw = b,
            (3, Wire::Bytes(b)) if !b.is_empty() => {
                return Err(malformed("compressed bodies are not supported"));
            }
            _ => {}
        }
    }
    let fields = schema(&api_version, &kind).ok_or_else(|| ProtobufError::Unsupported {
        api_version: api_version.clone(),
        kind: kind.clone(),
    })?;
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    if let Value::Object(m) = message(raw, fields)? {
        obj.extend(m);
    }
    Ok(Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn bytes_field(num: u64, b: &[u8], out: &mut Vec<u8>) {
        varint((num << 3) | 2, out);
        varint(b.len() as u64, out);
        out.extend_from_slice(b);
    }

    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let mut tm = Vec::new();
        bytes_field(1, api_version.as_bytes(), &mut tm);
        bytes_field(2, kind.as_bytes(), &mut tm);
        let mut out = MAGIC.to_vec();
        bytes_field(1, &tm, &mut out);
        bytes_field(2, raw, &mut out);
        out
    }

    #[test]
    fn decodes_a_config_map() {
        let mut meta = Vec::new();
        bytes_field(1, b"settings", &mut meta);
        let mut label = Vec::new();
        bytes_field(1, b"app", &mut label);
        bytes_field(2, b"web", &mut label);
        bytes_field(11, &label, &mut meta);
        let mut raw = Vec::new();
        bytes_field(1, &meta, &mut raw);
        for (k, v) in [("a", "1"), ("b", "2")] {
            let mut e = Vec::new();
            bytes_field(1, k.as_bytes(), &mut e);
            bytes_field(2, v.as_bytes(), &mut e);
            bytes_field(2, &e, &mut raw);
        }
        varint(4 << 3, &mut raw);
        varint(1, &mut raw);
        let obj = decode(&envelope("v1", "ConfigMap", &raw)).unwrap();
        assert_eq!(
            obj,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "settings", "labels": {"app": "web"}},
                   "data": {"a": "1", "b": "2"}, "immutable": true})
        );
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        assert!(matches!(decode(b"{}"), Err(ProtobufError::Malformed(_))));
        let err = decode(&envelope("apps/v1", "Deployment", &[])).unwrap_err();
        assert!(err.to_string().contains("apps/v1 Deployment"), "{err}");
        let mut truncated = envelope("v1", "Namespace", &[]);
        truncated.push(0x0a);
        assert!(decode(&truncated).is_err());
    }
}
