//! The secret masker ([`stepbox::mask::SecretMasker`]) on text built from
//! secrets, their base64 encodings and arbitrary text in between.
//!
//! Invariants, for secrets without `*` (which [`MASK`] is made of, so a
//! mask next to text can spell them) and that are not made only of `#` and
//! digits (the suffix `mask_value` gives colliding keys):
//!
//! - masked text contains no secret, and no standard or URL-safe base64
//!   encoding (padded or not) of a secret of at least
//!   [`MIN_ENCODED_SECRET_LEN`] bytes;
//! - masking is idempotent, and text without a secret is returned as is
//!   (borrowed);
//! - [`SecretMasker::safe_cut`] cuts at or before the requested byte, on a
//!   character boundary, never at 0, and no occurrence straddles the cut
//!   (unless occurrences chained from byte 0 cover every possible cut, as
//!   documented), so two pieces masked apart show no secret either;
//! - [`SecretMasker::mask_value`] leaves no secret in any string or map
//!   key of a JSON tree, and keeps every entry.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use stepbox::mask::{MASK, MIN_ENCODED_SECRET_LEN, SecretMasker};

#[derive(Debug, Arbitrary)]
enum Piece {
    Text(String),
    /// Secret `.0`, in encoding `.1` (0: plain, 1-4: base64 variants).
    Secret(u8, u8),
    /// A prefix of secret `.0`'s encoding `.1`, `.2` bytes long.
    Partial(u8, u8, u8),
}

#[derive(Debug, Arbitrary)]
struct Input {
    secrets: Vec<String>,
    pieces: Vec<Piece>,
    cut: u16,
    keys_as_json: bool,
}

fn encodings(secret: &str) -> Vec<String> {
    let mut out = vec![secret.to_string()];
    if secret.len() >= MIN_ENCODED_SECRET_LEN {
        for engine in [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            out.push(engine.encode(secret.as_bytes()));
        }
    }
    out
}

fn checkable(secret: &str) -> bool {
    !secret.is_empty()
        && !secret.contains('*')
        && !secret.chars().all(|c| c == '#' || c.is_ascii_digit())
}

fn assert_clean(patterns: &[String], what: &str, text: &str) {
    for p in patterns {
        assert!(
            !text.contains(p.as_str()),
            "{p:?} shows in {what}: {text:?}"
        );
    }
}

fn strings_and_keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings_and_keys(x, out)),
        Value::Object(m) => {
            for (k, x) in m {
                out.push(k.clone());
                strings_and_keys(x, out);
            }
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let secrets: Vec<String> = input
        .secrets
        .into_iter()
        .take(4)
        .map(|s| s.chars().take(48).collect())
        .collect();
    let masker = SecretMasker::new(&secrets);
    let all: Vec<Vec<String>> = secrets.iter().map(|s| encodings(s)).collect();
    // Every pattern the masker hides, and those the invariants may check.
    let patterns: Vec<String> = all
        .iter()
        .flatten()
        .filter(|p| !p.is_empty())
        .cloned()
        .collect();
    let checked: Vec<String> = secrets
        .iter()
        .zip(&all)
        .filter(|(s, _)| checkable(s))
        .flat_map(|(_, e)| e.iter().filter(|p| checkable(p)).cloned())
        .collect();
    let mut text = String::new();
    for piece in input.pieces.iter().take(32) {
        match piece {
            Piece::Text(t) => text.push_str(t),
            Piece::Secret(i, e) | Piece::Partial(i, e, _) if !all.is_empty() => {
                let encs = &all[usize::from(*i) % all.len()];
                let enc = &encs[usize::from(*e) % encs.len()];
                match piece {
                    Piece::Partial(_, _, n) => {
                        let n = usize::from(*n) % (enc.len() + 1);
                        // Encodings are ASCII; plain secrets cut on a char boundary.
                        let n = (0..=n)
                            .rev()
                            .find(|&k| enc.is_char_boundary(k))
                            .unwrap_or(0);
                        text.push_str(&enc[..n]);
                    }
                    _ => text.push_str(enc),
                }
            }
            _ => {}
        }
    }

    let masked = masker.mask(&text);
    assert_clean(&checked, "masked text", &masked);
    if !patterns.iter().any(|p| text.contains(p.as_str())) {
        assert!(
            matches!(masked, std::borrow::Cow::Borrowed(_)),
            "text without secrets was changed"
        );
        assert_eq!(masked, text);
    }
    if checked.len() == patterns.len() {
        assert_eq!(masker.mask(&masked), masked, "masking is not idempotent");
    }
    let _ = MASK;

    // Cutting: nothing straddles the cut.
    let bytes = text.as_bytes();
    let at = usize::from(input.cut) % (bytes.len() + 1);
    let cut = masker.safe_cut(bytes, at);
    assert!(cut <= at, "cut {cut} after {at}");
    assert!(at == 0 || cut > 0, "no progress: cut 0 of {at}");
    // The last character boundary in 1..=at, if any.
    let floor = (1..=at).rev().find(|&i| text.is_char_boundary(i));
    assert!(
        text.is_char_boundary(cut) || floor.is_none(),
        "cut {cut} inside a character of {text:?}"
    );
    // Occurrences straddling the cut, as (start, pattern).
    let mut straddling = Vec::new();
    for p in &patterns {
        let mut from = 0;
        while let Some(pos) = text[from..].find(p.as_str()) {
            let start = from + pos;
            if start < cut && cut < start + p.len() {
                straddling.push((start, p));
            }
            from = start + text[start..].chars().next().map_or(1, char::len_utf8);
        }
    }
    if !straddling.is_empty() {
        // Allowed only when occurrences chained from byte 0 leave no cut
        // in 1..=at free: then the cut is the asked one (char-floored).
        assert!(
            cut == floor.unwrap_or(at) && patterns.iter().any(|p| text.starts_with(p.as_str())),
            "{straddling:?} straddle cut {cut} (asked {at}) of {text:?}"
        );
    } else if text.is_char_boundary(cut) {
        let (head, tail) = text.split_at(cut);
        assert_clean(&checked, "a masked head", &masker.mask(head));
        assert_clean(&checked, "a masked tail", &masker.mask(tail));
    }

    // JSON: strings and keys.
    let mut tree = Value::Object(
        input
            .pieces
            .iter()
            .take(8)
            .enumerate()
            .map(|(i, _)| {
                let key = if input.keys_as_json {
                    text.clone()
                } else {
                    format!("{i}{text}")
                };
                (key, Value::String(text.clone()))
            })
            .collect::<Map<_, _>>(),
    );
    tree["list"] = Value::Array(vec![Value::String(text.clone()), Value::Null]);
    let entries = tree.as_object().map_or(0, Map::len);
    masker.mask_value(&mut tree);
    assert_eq!(
        tree.as_object().map_or(0, Map::len),
        entries,
        "mask_value lost an entry"
    );
    let mut found = Vec::new();
    strings_and_keys(&tree, &mut found);
    for s in &found {
        assert_clean(&checked, "a masked JSON string or key", s);
    }
});
