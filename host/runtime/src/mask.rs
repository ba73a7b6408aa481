//! Masking secret values wherever text leaves a run.
//!
//! A [`SecretMasker`] is built once per run from the run's secret values and
//! applied to the log, outputs, audit records, plan and error messages. Each
//! occurrence of a secret becomes [`MASK`] (`********`).
//!
//! Because Kubernetes `Secret` objects carry their values base64-encoded
//! under `data`, the masker also hides the standard and URL-safe base64
//! encodings (padded and unpadded) of every secret of at least
//! [`MIN_ENCODED_SECRET_LEN`] bytes. (Shorter secrets encode to strings too
//! short to hide without masking innocent text.)
//!
//! Overlapping or adjacent occurrences (of one secret or several) are masked
//! as one span, so no fragment of a secret survives between two masks.
//!
//! ```
//! use stepbox::mask::SecretMasker;
//!
//! let masker = SecretMasker::new(["hunter2"]);
//! assert_eq!(masker.mask("password=hunter2"), "password=********");
//! // base64 of "hunter2" is "aHVudGVyMg==".
//! assert_eq!(masker.mask("data: aHVudGVyMg=="), "data: ********");
//! assert_eq!(masker.mask("nothing secret"), "nothing secret");
//! ```

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::{Map, Value};

/// What a secret is replaced with.
pub const MASK: &str = "********";

/// Secrets at least this long (in bytes) also have their base64 encodings
/// masked.
pub const MIN_ENCODED_SECRET_LEN: usize = 4;

/// Replaces secret values (and their base64 encodings) in text and JSON.
/// Cheap to clone and share between threads.
#[derive(Debug, Clone, Default)]
pub struct SecretMasker {
    /// Patterns to hide, longest first, de-duplicated, none empty.
    patterns: Arc<[String]>,
}

impl SecretMasker {
    /// A masker for `secrets`. Empty values are ignored.
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut patterns: Vec<String> = Vec::new();
        for secret in secrets {
            let s = secret.as_ref();
            if s.is_empty() {
                continue;
            }
            patterns.push(s.to_string());
            if s.len() >= MIN_ENCODED_SECRET_LEN {
                for engine in [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
                    patterns.push(engine.encode(s.as_bytes()));
                }
            }
        }
        patterns.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        patterns.dedup();
        Self {
            patterns: patterns.into(),
        }
    }

    /// True when there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The number of patterns masked (secrets plus their encodings).
    pub fn pattern_count(&self) -> usize {
        self.patterns.len()
    }

    /// `text` with every occurrence of a secret replaced by [`MASK`].
    /// Borrows when nothing matches.
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.patterns.is_empty() || text.is_empty() {
            return Cow::Borrowed(text);
        }
        // Collect every occurrence (overlapping ones too) as byte spans.
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for p in self.patterns.iter() {
            let mut from = 0;
            while let Some(found) = text.get(from..).and_then(|rest| rest.find(p.as_str())) {
                let start = from + found;
                spans.push((start, start + p.len()));
                // Next search starts one character later, to catch overlaps.
                from = start + text[start..].chars().next().map_or(1, char::len_utf8);
            }
        }
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut cursor = 0;
        let mut i = 0;
        while i < spans.len() {
            let (start, mut end) = spans[i];
            i += 1;
            while i < spans.len() && spans[i].0 <= end {
                end = end.max(spans[i].1);
                i += 1;
            }
            out.push_str(&text[cursor..start]);
            out.push_str(MASK);
            cursor = end;
        }
        out.push_str(&text[cursor..]);
        Cow::Owned(out)
    }

    /// Where to cut `text` at or before byte `at` so that no occurrence of a
    /// secret (or its encodings) straddles the cut, and not inside a UTF-8
    /// character: text split into pieces there can still be masked piece by
    /// piece. Returns `at` (or `text.len()`, if shorter) when nothing
    /// straddles it; only a secret longer than `at` starting at byte 0 cannot
    /// be kept whole, and is then cut at the last character boundary at or
    /// before `at`. The cut is never 0 when `at` is not: if no character
    /// starts in `1..=at` (bytes that are not UTF-8), it is `at` itself.
    ///
    /// ```
    /// let masker = stepbox::mask::SecretMasker::new(["hunter2"]);
    /// let text = b"xxxxhunter2yyyy";
    /// assert_eq!(masker.safe_cut(text, 6), 4);
    /// assert_eq!(masker.safe_cut(text, 12), 12);
    /// ```
    pub fn safe_cut(&self, text: &[u8], at: usize) -> usize {
        let at = at.min(text.len());
        let mut cut = at;
        while cut > 0 && cut < text.len() && (text[cut] & 0b1100_0000) == 0b1000_0000 {
            cut -= 1;
        }
        let boundary = cut;
        loop {
            let mut moved = false;
            for p in self.patterns.iter().map(String::as_bytes) {
                // Any occurrence inside this window starts before the cut and
                // ends after it.
                let lo = cut.saturating_sub(p.len() - 1);
                let hi = (cut + p.len() - 1).min(text.len());
                if hi - lo < p.len() {
                    continue;
                }
                if let Some(pos) = text[lo..hi].windows(p.len()).position(|w| w == p) {
                    cut = lo + pos;
                    moved = true;
                }
            }
            if !moved || cut == 0 {
                break;
            }
        }
        match (cut, boundary) {
            (0, 0) => at,
            (0, b) => b,
            (c, _) => c,
        }
    }

    /// Masks every string in a JSON tree in place, map keys included. (When
    /// two keys mask to the same text, later ones get a `#2`, `#3`, ...
    /// suffix so no entry is lost.)
    pub fn mask_value(&self, value: &mut Value) {
        if self.patterns.is_empty() {
            return;
        }
        match value {
            Value::String(s) => {
                if let Cow::Owned(masked) = self.mask(s) {
                    *s = masked;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.mask_value(v)),
            Value::Object(map) => {
                let needs_rekey = map.keys().any(|k| matches!(self.mask(k), Cow::Owned(_)));
                if needs_rekey {
                    let old = std::mem::take(map);
                    let mut rebuilt = Map::with_capacity(old.len());
                    for (k, mut v) in old {
                        self.mask_value(&mut v);
                        let key = self.mask(&k).into_owned();
                        let mut unique = key.clone();
                        let mut n = 2;
                        while rebuilt.contains_key(&unique) {
                            unique = format!("{key}#{n}");
                            n += 1;
                        }
                        rebuilt.insert(unique, v);
                    }
                    *map = rebuilt;
                } else {
                    map.values_mut().for_each(|v| self.mask_value(v));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Fuzzing (mask) found that when a secret starting at byte 0 covers
    /// the cut, `safe_cut` returned `at` itself, even inside a character.
    #[test]
    fn safe_cut_of_a_leading_secret_stays_on_a_char_boundary() {
        let m = SecretMasker::new(["\u{e9}\u{e9}\u{e9}\u{e9}"]);
        let text = "\u{e9}\u{e9}\u{e9}\u{e9}tail".as_bytes();
        assert_eq!(m.safe_cut(text, 3), 2);
        assert_eq!(m.safe_cut(text, 4), 4);
        assert_eq!(m.safe_cut(text, 8), 8);
        // No boundary before `at`: still some progress.
        assert_eq!(m.safe_cut(&[0x80; 10], 5), 5);
        assert_eq!(m.safe_cut(text, 1), 1);
    }

    #[test]
    fn masks_plain_values() {
        let m = SecretMasker::new(["s3cret", ""]);
        assert_eq!(m.mask("a s3cret b s3cret"), "a ******** b ********");
        assert!(matches!(m.mask("clean"), Cow::Borrowed(_)));
        assert_eq!(m.mask(""), "");
    }

    #[test]
    fn empty_masker_is_a_no_op() {
        let m = SecretMasker::new(Vec::<String>::new());
        assert!(m.is_empty());
        assert!(matches!(m.mask("anything"), Cow::Borrowed(_)));
        let mut v = json!({"a": "b"});
        m.mask_value(&mut v);
        assert_eq!(v, json!({"a": "b"}));
        assert!(SecretMasker::new([""]).is_empty());
        assert!(SecretMasker::default().is_empty());
    }

    #[test]
    fn masks_base64_encodings() {
        // "p>p?p>" has different standard and URL-safe encodings.
        let secret = "p>p?p>";
        let std_enc = STANDARD.encode(secret);
        let url_enc = URL_SAFE.encode(secret);
        assert_ne!(std_enc, url_enc);
        let m = SecretMasker::new([secret]);
        assert_eq!(
            m.mask(&format!("a {std_enc} b {url_enc} c")),
            "a ******** b ******** c"
        );
        let padded = STANDARD.encode("abcd");
        assert!(padded.ends_with("=="));
        let m = SecretMasker::new(["abcd"]);
        assert_eq!(m.mask(&format!("x={padded}")), "x=********");
        assert_eq!(
            m.mask(&format!("x={}.", STANDARD_NO_PAD.encode("abcd"))),
            "x=********."
        );
        // Short secrets: the value only.
        let m = SecretMasker::new(["abc"]);
        assert_eq!(m.pattern_count(), 1);
        assert_eq!(m.mask(&STANDARD.encode("abc")), STANDARD.encode("abc"));
    }

    #[test]
    fn overlapping_secrets_mask_fully() {
        // Partial overlap: "abcdef" holds "abcd" and "cdef"; nothing may leak.
        let m = SecretMasker::new(["abcd", "cdef"]);
        assert_eq!(m.mask("xxabcdefyy"), "xx********yy");
        // Containment: the longer one wins, one mask.
        let m = SecretMasker::new(["pass", "password123"]);
        assert_eq!(m.mask("password123 pass"), "******** ********");
        // Self-overlap.
        let m = SecretMasker::new(["aa"]);
        assert_eq!(m.mask("baaab"), "b********b");
        // Adjacent occurrences merge.
        let m = SecretMasker::new(["ab"]);
        assert_eq!(m.mask("abab"), "********");
        // A secret that looks like the mask itself does not loop.
        let m = SecretMasker::new(["*"]);
        assert_eq!(m.mask("a*b"), "a********b");
    }

    #[test]
    fn unicode_is_safe() {
        let m = SecretMasker::new(["ü"]);
        assert_eq!(m.mask("güt ü"), "g********t ********");
        let m = SecretMasker::new(["é€"]);
        assert_eq!(m.mask("x€é€é€y"), "x€********y");
    }

    #[test]
    fn masks_json_trees_including_keys() {
        let m = SecretMasker::new(["tok3n"]);
        let mut v = json!({
            "out": "Bearer tok3n",
            "list": ["tok3n", 1, null, {"tok3n": "x"}],
            "tok3n": "a",
            "********": "b",
            "n": 5
        });
        m.mask_value(&mut v);
        assert_eq!(
            v,
            json!({
                "out": "Bearer ********",
                "list": ["********", 1, null, {"********": "x"}],
                "********": "a",
                "********#2": "b",
                "n": 5
            })
        );
    }

    #[test]
    fn safe_cut_never_splits_a_secret() {
        let m = SecretMasker::new(["hunter2"]);
        let text = b"aaaahunter2bbbbhunter2";
        for at in 0..=text.len() {
            let cut = m.safe_cut(text, at);
            let (a, b) = text.split_at(cut);
            let masked = format!(
                "{}{}",
                m.mask(std::str::from_utf8(a).unwrap()),
                m.mask(std::str::from_utf8(b).unwrap())
            );
            assert!(
                !masked.contains("hunter2"),
                "cut at {at} -> {cut}: {masked}"
            );
        }
        assert_eq!(m.safe_cut(text, 100), text.len());
        // Not inside a character.
        let m = SecretMasker::default();
        assert_eq!(m.safe_cut("aé".as_bytes(), 2), 1);
        // A secret longer than the cut, at the start, cannot be kept whole.
        let m = SecretMasker::new(["abcdefgh"]);
        assert_eq!(m.safe_cut(b"abcdefgh", 3), 3);
    }

    #[test]
    fn is_send_sync_clone() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<SecretMasker>();
        let m = SecretMasker::new(["x1234"]);
        let m2 = m.clone();
        std::thread::spawn(move || assert_eq!(m2.mask("x1234"), MASK))
            .join()
            .unwrap();
        assert_eq!(m.mask("x1234"), MASK);
    }
}
