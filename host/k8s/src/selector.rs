//! Label selectors in the Kubernetes string syntax, and field selectors
//! ([`FieldSelector`]).
//!
//! The grammar is the one `kubectl get -l` and the API's `labelSelector`
//! query parameter accept: comma-separated requirements, each one of
//!
//! | syntax            | meaning                                     |
//! |-------------------|---------------------------------------------|
//! | `k=v`, `k==v`     | label `k` is `v`                            |
//! | `k!=v`            | label `k` is absent or not `v`              |
//! | `k in (a,b)`      | label `k` is one of the values              |
//! | `k notin (a,b)`   | label `k` is absent or none of the values   |
//! | `k`               | label `k` is present                        |
//! | `!k`              | label `k` is absent                         |
//! | `k>1`, `k<1`      | label `k` is an integer greater/less than   |
//!
//! An empty selector matches everything.
//!
//! ```
//! use std::collections::BTreeMap;
//! use stepbox_k8s::LabelSelector;
//!
//! let sel = LabelSelector::parse("app=web, tier in (front,back), !legacy")?;
//! let labels = BTreeMap::from([("app".to_string(), "web".to_string()),
//!                              ("tier".to_string(), "front".to_string())]);
//! assert!(sel.matches(&labels));
//! assert_eq!(sel.to_string(), "app=web,tier in (back,front),!legacy");
//! # Ok::<(), stepbox_k8s::selector::SelectorError>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

use crate::names;

/// A label selector that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The text does not follow the selector grammar.
    #[error("invalid label selector {selector:?}: {reason} in {part:?}")]
    Syntax {
        /// The whole selector.
        selector: String,
        /// The requirement that failed to parse.
        part: String,
        /// What was expected.
        reason: String,
    },
    /// A key is not a valid label key.
    #[error("invalid label selector {selector:?}: key {key:?}: {reason}")]
    InvalidKey {
        /// The whole selector.
        selector: String,
        /// The offending key.
        key: String,
        /// Why it is not valid.
        reason: String,
    },
    /// A value is not a valid label value.
    #[error("invalid label selector {selector:?}: value {value:?} for key {key:?}: {reason}")]
    InvalidValue {
        /// The whole selector.
        selector: String,
        /// The key the value belongs to.
        key: String,
        /// The offending value.
        value: String,
        /// Why it is not valid.
        reason: String,
    },
}

impl From<SelectorError> for super::Error {
    fn from(e: SelectorError) -> Self {
        Self::Invalid(e.to_string())
    }
}

/// Result of selector parsing.
pub type Result<T, E = SelectorError> = std::result::Result<T, E>;

/// The operator of one requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `k=v` / `k==v` / `k in (...)`: the label is one of the values.
    In,
    /// `k!=v` / `k notin (...)`: the label is absent or none of the values.
    NotIn,
    /// `k`: the label is present.
    Exists,
    /// `!k`: the label is absent.
    DoesNotExist,
    /// `k>n`: the label is an integer greater than n.
    GreaterThan,
    /// `k<n`: the label is an integer less than n.
    LessThan,
}

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// What the label must satisfy.
    pub operator: Operator,
    /// The values (one for `=`/`!=`/`>`/`<`, several for `in`/`notin`, none
    /// for existence checks), sorted and de-duplicated.
    pub values: BTreeSet<String>,
    /// True when written with `=`/`==`/`!=` (for display).
    single: bool,
}

impl Requirement {
    /// Builds a requirement; `values` must suit the operator (one or more for
    /// `In`/`NotIn`, exactly one integer for `GreaterThan`/`LessThan`, none
    /// otherwise). Returns `None` when they do not.
    pub fn new(
        key: &str,
        operator: Operator,
        values: impl IntoIterator<Item = String>,
    ) -> Option<Self> {
        let values: BTreeSet<String> = values.into_iter().collect();
        let ok = match operator {
            Operator::In | Operator::NotIn => !values.is_empty(),
            Operator::Exists | Operator::DoesNotExist => values.is_empty(),
            Operator::GreaterThan | Operator::LessThan => {
                values.len() == 1 && values.iter().all(|v| v.parse::<i64>().is_ok())
            }
        };
        ok.then(|| Self {
            key: key.to_string(),
            operator,
            single: false,
            values,
        })
    }

    /// True when `labels` satisfy this requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(have), Some(want)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values
                        .iter()
                        .next()
                        .and_then(|v| v.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self.values.iter().next().map_or("", String::as_str);
        let joined = || {
            self.values
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(",")
        };
        match self.operator {
            Operator::In if self.single && self.values.len() == 1 => {
                write!(f, "{}={first}", self.key)
            }
            Operator::NotIn if self.single && self.values.len() == 1 => {
                write!(f, "{}!={first}", self.key)
            }
            Operator::In => write!(f, "{} in ({})", self.key, joined()),
            Operator::NotIn => write!(f, "{} notin ({})", self.key, joined()),
            Operator::Exists => write!(f, "{}", self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
            Operator::GreaterThan => write!(f, "{}>{first}", self.key),
            Operator::LessThan => write!(f, "{}<{first}", self.key),
        }
    }
}

/// A parsed label selector: all requirements must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct LabelSelector {
    /// The requirements, in the order written.
    pub requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        Self::default()
    }

    /// True when the selector has no requirement (matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Parses the Kubernetes string syntax (see the [module docs](self)).
    ///
    /// # Errors
    /// [`SelectorError`] naming the requirement, key or value that is wrong.
    pub fn parse(text: &str) -> Result<Self> {
        Parser::new(text).parse()
    }

    /// Builds a selector from a `metav1.LabelSelector` object
    /// (`{matchLabels: {...}, matchExpressions: [{key, operator, values}]}`),
    /// as found in `spec.selector` of workloads. `null` or `{}` selects
    /// everything.
    ///
    /// # Errors
    /// [`SelectorError::Syntax`] for a malformed object.
    pub fn from_object(selector: &Value) -> Result<Self> {
        let text = selector.to_string();
        let syntax = |reason: &str| SelectorError::Syntax {
            selector: text.clone(),
            part: text.clone(),
            reason: reason.to_string(),
        };
        let mut requirements = Vec::new();
        if selector.is_null() {
            return Ok(Self { requirements });
        }
        let obj = selector
            .as_object()
            .ok_or_else(|| syntax("expected an object"))?;
        if let Some(ml) = obj.get("matchLabels").filter(|v| !v.is_null()) {
            let ml = ml
                .as_object()
                .ok_or_else(|| syntax("matchLabels must be an object"))?;
            for (k, v) in ml {
                let v = v
                    .as_str()
                    .ok_or_else(|| syntax("matchLabels values must be strings"))?;
                requirements.push(Requirement {
                    key: k.clone(),
                    operator: Operator::In,
                    values: BTreeSet::from([v.to_string()]),
                    single: true,
                });
            }
        }
        if let Some(me) = obj.get("matchExpressions").filter(|v| !v.is_null()) {
            let me = me
                .as_array()
                .ok_or_else(|| syntax("matchExpressions must be an array"))?;
            for expr in me {
                let key = expr
                    .get("key")
                    .and_then(Value::as_str)
                    .ok_or_else(|| syntax("matchExpressions entries need a string key"))?;
                let op = match expr.get("operator").and_then(Value::as_str) {
                    Some("In") => Operator::In,
                    Some("NotIn") => Operator::NotIn,
                    Some("Exists") => Operator::Exists,
                    Some("DoesNotExist") => Operator::DoesNotExist,
                    Some("Gt") => Operator::GreaterThan,
                    Some("Lt") => Operator::LessThan,
                    _ => return Err(syntax("operator must be In, NotIn, Exists or DoesNotExist")),
                };
                let values = match expr.get("values") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(vs)) => vs
                        .iter()
                        .map(|v| v.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| syntax("values must be strings"))?,
                    Some(_) => return Err(syntax("values must be an array")),
                };
                let req = Requirement::new(key, op, values).ok_or_else(|| {
                    syntax(&format!("values do not suit operator for key {key:?}"))
                })?;
                requirements.push(req);
            }
        }
        let sel = Self { requirements };
        for r in &sel.requirements {
            validate(&text, r)?;
        }
        Ok(sel)
    }

    /// True when `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// True when the object's `metadata.labels` satisfy every requirement.
    pub fn matches_value(&self, object: &Value) -> bool {
        self.is_empty() || self.matches(&super::object::labels(object))
    }
}

impl fmt::Display for LabelSelector {
    /// The canonical string form (parseable again).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for LabelSelector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

fn validate(selector: &str, r: &Requirement) -> Result<()> {
    names::qualified_name(&r.key).map_err(|reason| SelectorError::InvalidKey {
        selector: selector.to_string(),
        key: r.key.clone(),
        reason,
    })?;
    for v in &r.values {
        names::label_value(v).map_err(|reason| SelectorError::InvalidValue {
            selector: selector.to_string(),
            key: r.key.clone(),
            value: v.clone(),
            reason,
        })?;
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    In,
    NotIn,
    Comma,
    Open,
    Close,
    Eq,
    DoubleEq,
    NotEq,
    Bang,
    Gt,
    Lt,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Ident(s) => format!("{s:?}"),
            Token::In => "\"in\"".into(),
            Token::NotIn => "\"notin\"".into(),
            Token::Comma => "\",\"".into(),
            Token::Open => "\"(\"".into(),
            Token::Close => "\")\"".into(),
            Token::Eq => "\"=\"".into(),
            Token::DoubleEq => "\"==\"".into(),
            Token::NotEq => "\"!=\"".into(),
            Token::Bang => "\"!\"".into(),
            Token::Gt => "\">\"".into(),
            Token::Lt => "\"<\"".into(),
        }
    }
}

fn is_special(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | '=' | '!' | '(' | ')' | '<' | '>')
}

/// Splits the text into tokens with their byte offsets.
fn lex(text: &str) -> Vec<(usize, Token)> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(pos, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let token = match c {
            ',' => Token::Comma,
            '(' => Token::Open,
            ')' => Token::Close,
            '<' => Token::Lt,
            '>' => Token::Gt,
            '=' | '!' => {
                chars.next();
                let double = chars.peek().is_some_and(|&(_, n)| n == '=');
                if double {
                    chars.next();
                }
                tokens.push((
                    pos,
                    match (c, double) {
                        ('=', false) => Token::Eq,
                        ('=', true) => Token::DoubleEq,
                        (_, false) => Token::Bang,
                        (_, true) => Token::NotEq,
                    },
                ));
                continue;
            }
            _ => {
                let mut end = pos;
                while let Some(&(i, ch)) = chars.peek() {
                    if is_special(ch) {
                        break;
                    }
                    end = i + ch.len_utf8();
                    chars.next();
                }
                let word = &text[pos..end];
                tokens.push((
                    pos,
                    match word {
                        "in" => Token::In,
                        "notin" => Token::NotIn,
                        _ => Token::Ident(word.to_string()),
                    },
                ));
                continue;
            }
        };
        chars.next();
        tokens.push((pos, token));
    }
    tokens
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<(usize, Token)>,
    pos: usize,
    req_start: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            tokens: lex(text),
            pos: 0,
            req_start: 0,
        }
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).map(|(_, t)| t.clone());
        self.pos += 1;
        t
    }

    /// The text of the requirement being parsed: from its start to the next
    /// comma outside parentheses.
    fn current_part(&self) -> String {
        let rest = self.text.get(self.req_start..).unwrap_or_default();
        let mut depth = 0i32;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth <= 0 => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        rest[..end].trim().to_string()
    }

    fn error(&self, reason: impl Into<String>) -> SelectorError {
        SelectorError::Syntax {
            selector: self.text.to_string(),
            part: self.current_part(),
            reason: reason.into(),
        }
    }

    fn found(&self) -> String {
        self.peek()
            .map_or_else(|| "the end".to_string(), Token::describe)
    }

    fn parse(mut self) -> Result<LabelSelector> {
        let mut requirements = Vec::new();
        if self.tokens.is_empty() {
            return Ok(LabelSelector { requirements });
        }
        loop {
            self.req_start = self
                .tokens
                .get(self.pos)
                .map_or(self.text.len(), |(p, _)| *p);
            let req = self.requirement()?;
            validate(self.text, &req)?;
            requirements.push(req);
            match self.next() {
                None => break,
                Some(Token::Comma) => {
                    if self.peek().is_none() {
                        self.req_start = self.text.len();
                        return Err(self.error("expected a requirement after \",\", found the end"));
                    }
                }
                Some(t) => {
                    self.pos -= 1;
                    return Err(
                        self.error(format!("expected \",\" or the end, found {}", t.describe()))
                    );
                }
            }
        }
        Ok(LabelSelector { requirements })
    }

    fn requirement(&mut self) -> Result<Requirement> {
        if self.peek() == Some(&Token::Bang) {
            self.next();
            let key = self.key()?;
            return Ok(Requirement {
                key,
                operator: Operator::DoesNotExist,
                values: BTreeSet::new(),
                single: false,
            });
        }
        let key = self.key()?;
        let (operator, values, single) = match self.peek() {
            None | Some(Token::Comma) => (Operator::Exists, BTreeSet::new(), false),
            Some(Token::Eq | Token::DoubleEq) => {
                self.next();
                (Operator::In, BTreeSet::from([self.single_value()?]), true)
            }
            Some(Token::NotEq) => {
                self.next();
                (
                    Operator::NotIn,
                    BTreeSet::from([self.single_value()?]),
                    true,
                )
            }
            Some(Token::In | Token::NotIn) => {
                let op = if self.next() == Some(Token::In) {
                    Operator::In
                } else {
                    Operator::NotIn
                };
                (op, self.value_set(op)?, false)
            }
            Some(Token::Gt | Token::Lt) => {
                let op = if self.next() == Some(Token::Gt) {
                    Operator::GreaterThan
                } else {
                    Operator::LessThan
                };
                let v = self.single_value()?;
                if v.parse::<i64>().is_err() {
                    return Err(self.error(format!(
                        "{v:?} is not an integer; \">\" and \"<\" compare integers"
                    )));
                }
                (op, BTreeSet::from([v]), false)
            }
            Some(_) => {
                return Err(self.error(format!(
                    "expected \"=\", \"==\", \"!=\", \"in\", \"notin\", \">\", \"<\", \",\" or the end after key {key:?}, found {}",
                    self.found()
                )));
            }
        };
        Ok(Requirement {
            key,
            operator,
            values,
            single,
        })
    }

    fn key(&mut self) -> Result<String> {
        match self.peek() {
            Some(Token::Ident(s)) => {
                let s = s.clone();
                self.next();
                Ok(s)
            }
            _ => Err(self.error(format!("expected a label key, found {}", self.found()))),
        }
    }

    /// The value after `=`, `==`, `!=`, `>`, `<`: an identifier, or empty
    /// when the requirement ends there (`k=`).
    fn single_value(&mut self) -> Result<String> {
        match self.peek() {
            Some(Token::Ident(s)) => {
                let s = s.clone();
                self.next();
                Ok(s)
            }
            None | Some(Token::Comma) => Ok(String::new()),
            _ => Err(self.error(format!("expected a value, found {}", self.found()))),
        }
    }

    fn value_set(&mut self, op: Operator) -> Result<BTreeSet<String>> {
        let word = if op == Operator::In { "in" } else { "notin" };
        if self.peek() != Some(&Token::Open) {
            return Err(self.error(format!(
                "expected \"(\" after \"{word}\", found {}",
                self.found()
            )));
        }
        self.next();
        let mut values = BTreeSet::new();
        loop {
            // A value, possibly empty ("(a,)" holds "a" and "").
            match self.peek() {
                Some(Token::Ident(s)) => {
                    values.insert(s.clone());
                    self.next();
                }
                Some(Token::Comma | Token::Close) => {
                    values.insert(String::new());
                }
                _ => {
                    return Err(
                        self.error(format!("expected a value or \")\", found {}", self.found()))
                    );
                }
            }
            match self.next() {
                Some(Token::Comma) => continue,
                Some(Token::Close) => break,
                other => {
                    let found = other
                        .as_ref()
                        .map_or_else(|| "the end".to_string(), Token::describe);
                    return Err(self.error(format!(
                        "expected \",\" or \")\" in the value list, found {found}"
                    )));
                }
            }
        }
        // "k in ()" parses as the single empty value; Kubernetes rejects an
        // empty set, and so do we.
        if values.len() == 1 && values.contains("") && self.text_between_parens_is_empty() {
            return Err(self.error(format!("the value set of \"{word}\" may not be empty")));
        }
        Ok(values)
    }

    fn text_between_parens_is_empty(&self) -> bool {
        // The last two tokens consumed were "(" and ")".
        self.pos >= 2
            && matches!(self.tokens.get(self.pos - 2), Some((_, Token::Open)))
            && matches!(self.tokens.get(self.pos - 1), Some((_, Token::Close)))
    }
}

// ---------------------------------------------------------------------------
// Field selectors

/// A field selector, as the API's `fieldSelector` query parameter takes it:
/// comma-separated `field=value`, `field==value` or `field!=value`
/// requirements on dotted paths to scalar fields (`metadata.name`,
/// `metadata.namespace`, `status.phase`, `spec.nodeName`). A missing field
/// reads as the empty string, as in Kubernetes. `kubectl rollout status` and
/// `kubectl delete --wait` select one object with `metadata.name=NAME`.
///
/// ```
/// use stepbox_k8s::selector::FieldSelector;
///
/// let sel = FieldSelector::parse("metadata.name=web,status.phase!=Failed")?;
/// let pod = serde_json::json!({"metadata": {"name": "web"}, "status": {"phase": "Running"}});
/// assert!(sel.matches_value(&pod));
/// # Ok::<(), stepbox_k8s::selector::SelectorError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// The requirements, all of which must hold.
    pub requirements: Vec<FieldRequirement>,
}

/// One requirement of a [`FieldSelector`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    /// The dotted field path (`metadata.name`).
    pub field: String,
    /// True for `=`/`==`, false for `!=`.
    pub equals: bool,
    /// The value compared with.
    pub value: String,
}

impl FieldSelector {
    /// Parses a field selector; the empty string selects everything.
    ///
    /// # Errors
    /// [`SelectorError::Syntax`] for a requirement without an operator or
    /// with an empty or malformed field path.
    pub fn parse(text: &str) -> Result<Self> {
        let mut requirements = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let syntax = |reason: &str| SelectorError::Syntax {
                selector: text.to_string(),
                part: part.to_string(),
                reason: reason.to_string(),
            };
            let (field, equals, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(syntax("expected field=value, field==value or field!=value"));
            };
            let field = field.trim();
            let valid_path = !field.is_empty()
                && field.split('.').all(|s| {
                    !s.is_empty()
                        && s.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                });
            if !valid_path {
                return Err(syntax("the field must be a dotted path like metadata.name"));
            }
            requirements.push(FieldRequirement {
                field: field.to_string(),
                equals,
                value: value.trim().to_string(),
            });
        }
        Ok(Self { requirements })
    }

    /// True when no requirement is set.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// True when the object satisfies every requirement.
    pub fn matches_value(&self, object: &Value) -> bool {
        self.requirements.iter().all(|r| {
            let path: Vec<&str> = r.field.split('.').collect();
            let have = match super::object::get_field(object, &path) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Bool(b)) => b.to_string(),
                Some(Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            (have == r.value) == r.equals
        })
    }
}

impl fmt::Display for FieldSelector {
    /// The canonical string form (parseable again).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = if r.equals { "=" } else { "!=" };
            write!(f, "{}{op}{}", r.field, r.value)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod field_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_matches() {
        let sel =
            FieldSelector::parse("metadata.name==web, metadata.namespace!=kube-system").unwrap();
        assert_eq!(
            sel.to_string(),
            "metadata.name=web,metadata.namespace!=kube-system"
        );
        let obj = json!({"metadata": {"name": "web", "namespace": "dev"}, "spec": {"replicas": 2}});
        assert!(sel.matches_value(&obj));
        assert!(
            !FieldSelector::parse("metadata.name=db")
                .unwrap()
                .matches_value(&obj)
        );
        assert!(
            FieldSelector::parse("spec.replicas=2")
                .unwrap()
                .matches_value(&obj)
        );
        assert!(
            FieldSelector::parse("spec.nodeName=")
                .unwrap()
                .matches_value(&obj)
        );
        assert!(FieldSelector::parse("").unwrap().is_empty());
        for bad in ["metadata.name", "=x", "a..b=c", "a b=c"] {
            assert!(FieldSelector::parse(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_every_form() {
        let sel =
            LabelSelector::parse("a=1,b==2,c!=3,d in (x, y),e notin (z),f,!g,h>5,i<7").unwrap();
        let ops: Vec<_> = sel.requirements.iter().map(|r| r.operator).collect();
        assert_eq!(
            ops,
            [
                Operator::In,
                Operator::In,
                Operator::NotIn,
                Operator::In,
                Operator::NotIn,
                Operator::Exists,
                Operator::DoesNotExist,
                Operator::GreaterThan,
                Operator::LessThan
            ]
        );
        assert_eq!(
            sel.to_string(),
            "a=1,b=2,c!=3,d in (x,y),e notin (z),f,!g,h>5,i<7"
        );
        assert_eq!(LabelSelector::parse(&sel.to_string()).unwrap(), sel);
    }

    #[test]
    fn matching() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("n", "10")]);
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches(&l);
        assert!(m(""));
        assert!(m("app=web"));
        assert!(m("app==web"));
        assert!(!m("app=db"));
        assert!(m("app!=db"));
        assert!(m("missing!=x"));
        assert!(m("tier in (front,back)"));
        assert!(!m("tier in (back)"));
        assert!(m("tier notin (back)"));
        assert!(m("missing notin (back)"));
        assert!(m("app"));
        assert!(!m("missing"));
        assert!(m("!missing"));
        assert!(!m("!app"));
        assert!(m("n>9"));
        assert!(!m("n>10"));
        assert!(m("n<11"));
        assert!(!m("app>1"));
        assert!(m("app=web,tier=front"));
        assert!(!m("app=web,tier=back"));
        assert!(m("  app = web ,  tier in ( front )  "));
    }

    #[test]
    fn empty_values() {
        let sel = LabelSelector::parse("a=").unwrap();
        assert!(sel.matches(&labels(&[("a", "")])));
        assert!(!sel.matches(&labels(&[("a", "x")])));
        let sel = LabelSelector::parse("a in (x,)").unwrap();
        assert!(sel.matches(&labels(&[("a", "")])));
    }

    #[test]
    fn matches_objects() {
        let sel = LabelSelector::parse("app=web").unwrap();
        assert!(sel.matches_value(&json!({"metadata": {"labels": {"app": "web"}}})));
        assert!(!sel.matches_value(&json!({"metadata": {}})));
        assert!(LabelSelector::everything().matches_value(&json!(null)));
    }

    #[test]
    fn errors_name_the_bad_part() {
        let cases = [
            (
                "app=web,tier in (a",
                "\"tier in (a\"",
                "expected \",\" or \")\"",
            ),
            ("app=web,,x", "\"\"", "expected a label key, found \",\""),
            ("app=web,", "\"\"", "after \",\""),
            ("a in b", "\"a in b\"", "expected \"(\" after \"in\""),
            ("a notin ()", "\"a notin ()\"", "may not be empty"),
            ("a b", "\"a b\"", "expected \"=\""),
            (
                "a=b c",
                "\"a=b c\"",
                "expected \",\" or the end, found \"c\"",
            ),
            ("=x", "\"=x\"", "expected a label key"),
            ("a=(x)", "\"a=(x)\"", "expected a value"),
            ("n>x", "\"n>x\"", "not an integer"),
            (
                "x,a in (b,(c))",
                "\"a in (b,(c))\"",
                "expected a value or \")\"",
            ),
            ("!", "\"!\"", "expected a label key, found the end"),
        ];
        for (text, part, reason) in cases {
            let err = LabelSelector::parse(text).unwrap_err().to_string();
            assert!(err.contains(&format!("in {part}")), "{text}: {err}");
            assert!(err.contains(reason), "{text}: {err}");
            assert!(err.contains(&format!("{text:?}")), "{text}: {err}");
        }
    }

    #[test]
    fn invalid_keys_and_values() {
        let err = LabelSelector::parse("app=web,Bad Key=1").unwrap_err();
        assert!(matches!(err, SelectorError::Syntax { .. }), "{err}");
        let err = LabelSelector::parse("-bad=1").unwrap_err();
        assert!(
            matches!(&err, SelectorError::InvalidKey { key, .. } if key == "-bad"),
            "{err}"
        );
        let err = LabelSelector::parse("app=we/b").unwrap_err();
        assert!(
            matches!(&err, SelectorError::InvalidValue { value, .. } if value == "we/b"),
            "{err}"
        );
        let err = LabelSelector::parse(&format!("a={}", "x".repeat(64))).unwrap_err();
        assert!(err.to_string().contains("63"), "{err}");
        let ce: crate::Error = err.into();
        assert!(matches!(ce, crate::Error::Invalid(_)));
    }

    #[test]
    fn unicode_never_panics() {
        for text in [
            "ä=ö",
            "a in (ö",
            "ü,",
            "!ä",
            "a=b,ü in (",
            "(",
            ")",
            "a in (,)",
            "é>1",
        ] {
            let _ = LabelSelector::parse(text);
        }
    }

    #[test]
    fn from_label_selector_object() {
        let sel = LabelSelector::from_object(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]},
                                 {"key": "old", "operator": "DoesNotExist"}]
        }))
        .unwrap();
        assert_eq!(sel.to_string(), "app=web,tier in (a,b),!old");
        assert!(LabelSelector::from_object(&json!({})).unwrap().is_empty());
        assert!(LabelSelector::from_object(&json!(null)).unwrap().is_empty());
        assert!(
            LabelSelector::from_object(
                &json!({"matchExpressions": [{"key": "a", "operator": "In"}]})
            )
            .is_err()
        );
        assert!(LabelSelector::from_object(&json!({"matchLabels": {"a": 1}})).is_err());
        assert!(LabelSelector::from_object(&json!("x")).is_err());
    }
}
