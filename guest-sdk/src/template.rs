//! `#{Name}` placeholders in manifest text.

use std::collections::{BTreeMap, BTreeSet};

use crate::{Error, Result};

/// Replaces every `#{Name}` in `template` with the value of `Name` in
/// `inputs`, on the raw text (so a placeholder may stand anywhere, even where
/// YAML would read `#` as a comment: `replicas: #{replicas}`).
///
/// - The name is the text between `#{` and the next `}`, trimmed; it may not
///   hold `{`, `#` or a line break (such text is left as it is).
/// - `##{Name}` is an escape: it becomes a literal `#{Name}`.
/// - Unknown names are an [`Error::Invalid`] listing all of them, sorted and
///   once each; nothing is replaced then.
///
/// ```
/// use std::collections::BTreeMap;
///
/// let inputs = BTreeMap::from([("image".to_string(), "nginx:1.27".to_string())]);
/// let text = stepbox_sdk::substitute("image: #{image} # not ##{image}", &inputs).unwrap();
/// assert_eq!(text, "image: nginx:1.27 # not #{image}");
///
/// let err = stepbox_sdk::substitute("#{b} #{a} #{b}", &inputs).unwrap_err();
/// assert_eq!(err.to_string(), "invalid: unknown inputs: a, b (pass them with --input NAME=VALUE)");
/// ```
pub fn substitute(template: &str, inputs: &BTreeMap<String, String>) -> Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut unknown = BTreeSet::new();
    let mut rest = template;
    while let Some(at) = rest.find('#') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("##{") {
            out.push_str("#{");
            rest = after;
        } else if let Some((name, after)) = placeholder(rest) {
            match inputs.get(name) {
                Some(value) => out.push_str(value),
                None => {
                    unknown.insert(name);
                }
            }
            rest = after;
        } else {
            out.push('#');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    if unknown.is_empty() {
        Ok(out)
    } else {
        let names: Vec<&str> = unknown.into_iter().collect();
        Err(Error::invalid(format!(
            "unknown inputs: {} (pass them with --input NAME=VALUE)",
            names.join(", ")
        )))
    }
}

/// `#{name}...` at the start of `text`: the trimmed name and the text after
/// the closing brace.
fn placeholder(text: &str) -> Option<(&str, &str)> {
    let body = text.strip_prefix("#{")?;
    let end = body.find(['}', '{', '#', '\n', '\r'])?;
    if !body[end..].starts_with('}') {
        return None;
    }
    let name = body[..end].trim();
    (!name.is_empty()).then(|| (name, &body[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn replaces_known_names() {
        let i = inputs(&[
            ("image", "nginx:1.27"),
            ("replicas", "3"),
            ("Octopus.Env", "prod"),
        ]);
        assert_eq!(
            substitute(
                "image: #{image}\nreplicas: #{replicas}\nenv: #{ Octopus.Env }-#{image}",
                &i
            )
            .unwrap(),
            "image: nginx:1.27\nreplicas: 3\nenv: prod-nginx:1.27"
        );
    }

    #[test]
    fn lists_every_unknown_name_once_sorted() {
        let e = substitute(
            "#{gamma} #{alpha} #{known} #{alpha} #{beta}",
            &inputs(&[("known", "x")]),
        )
        .unwrap_err();
        assert!(e.is_invalid());
        assert_eq!(
            e.message(),
            "unknown inputs: alpha, beta, gamma (pass them with --input NAME=VALUE)"
        );
    }

    #[test]
    fn double_hash_escapes() {
        let i = inputs(&[("x", "1")]);
        assert_eq!(
            substitute("##{x} #{x} ##{unknown}", &i).unwrap(),
            "#{x} 1 #{unknown}"
        );
        assert_eq!(substitute("###{x}", &i).unwrap(), "##{x}");
    }

    #[test]
    fn text_that_is_not_a_placeholder_is_kept() {
        let i = inputs(&[]);
        for text in [
            "# a comment",
            "#{",
            "#{}",
            "#{ }",
            "#{a\n}",
            "a # {b}",
            "#{a{b}",
            "issue #1",
            "é#{",
        ] {
            assert_eq!(substitute(text, &i).unwrap(), text);
        }
    }

    #[test]
    fn values_are_not_substituted_again() {
        let i = inputs(&[("a", "#{b}")]);
        assert_eq!(substitute("#{a}", &i).unwrap(), "#{b}");
    }
}
