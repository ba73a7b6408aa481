//! Where a component carries its declaration: a custom section named
//! `stepbox:needs` holding the declaration's text.
//!
//! A Rust step's `stepbox_sdk::needs!` puts it in the core module
//! (`#[link_section]`); wasm-ld keeps the section and `wit-component`
//! keeps the core module whole inside the component, so the section is
//! found one level down. `stepbox build` writes a `step.yaml` as a section
//! at the component's top level. [`read`] looks at every level; a
//! component declares its needs once.

use wasm_encoder::ComponentSection;
use wasmparser::{Parser, Payload};

use super::{NeedsError, StepNeeds};

/// The name of the custom section.
pub const SECTION: &str = "stepbox:needs";

/// The declaration a component carries, if it carries one.
///
/// # Errors
/// [`NeedsError::Component`] when the bytes cannot be parsed,
/// [`NeedsError::Repeated`] for more than one section, and the errors of
/// [`StepNeeds::from_text`] for a section that is not a declaration.
pub fn read(component: &[u8]) -> Result<Option<StepNeeds>, NeedsError> {
    let mut found = Vec::new();
    for payload in Parser::new(0).parse_all(component) {
        if let Payload::CustomSection(s) =
            payload.map_err(|e| NeedsError::Component(e.to_string()))?
            && s.name() == SECTION
        {
            found.push(s.data());
        }
    }
    match found.as_slice() {
        [] => Ok(None),
        [data] => {
            let text = std::str::from_utf8(data)
                .map_err(|e| NeedsError::Parse(format!("it is not UTF-8 text: {e}")))?;
            StepNeeds::from_text(text).map(Some)
        }
        many => Err(NeedsError::Repeated(many.len())),
    }
}

/// `component` with `needs` as its `stepbox:needs` section, at its top
/// level. A top-level declaration an earlier build wrote is replaced, so
/// building again is harmless.
///
/// # Errors
/// As [`read`], and [`NeedsError::Repeated`] when a module inside the
/// component declares needs already (`stepbox_sdk::needs!` and a
/// `step.yaml` both).
pub fn embed(component: &[u8], needs: &StepNeeds) -> Result<Vec<u8>, NeedsError> {
    let mut out = without_top_level(component)?;
    if read(&out)?.is_some() {
        return Err(NeedsError::Repeated(2));
    }
    let json = needs.to_json();
    wasm_encoder::CustomSection {
        name: SECTION.into(),
        data: json.as_bytes().into(),
    }
    .append_to_component(&mut out);
    Ok(out)
}

/// `component` without its top-level `stepbox:needs` sections (those a
/// module inside it holds stay).
fn without_top_level(component: &[u8]) -> Result<Vec<u8>, NeedsError> {
    let bad = |what: &str| NeedsError::Component(format!("not a wasm binary: {what}"));
    if component.len() < 8 || &component[..4] != b"\0asm" {
        return Err(bad("no wasm header"));
    }
    let mut out = component[..8].to_vec();
    let mut at = 8;
    while at < component.len() {
        let id = component[at];
        let mut reader = wasmparser::BinaryReader::new(&component[at + 1..], 0);
        let size = reader.read_var_u32().map_err(|e| bad(&e.to_string()))? as usize;
        let start = at + 1 + reader.current_position();
        let end = start
            .checked_add(size)
            .filter(|&e| e <= component.len())
            .ok_or_else(|| bad("a section runs past the end"))?;
        let ours = id == 0
            && wasmparser::BinaryReader::new(&component[start..end], 0)
                .read_string()
                .is_ok_and(|name| name == SECTION);
        if !ours {
            out.extend_from_slice(&component[at..end]);
        }
        at = end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_encoder::{Component, CustomSection, Module, ModuleSection};

    const DECLARATION: &str = "{\"apiVersion\":\"stepbox.dev/v1alpha1\",\"kind\":\"StepNeeds\",\"rules\":[{\"apiGroups\":[\"\"],\"resources\":[\"configmaps\"],\"verbs\":[\"get\"]}]}";

    /// A component nesting a core module, with `module_section` in the
    /// module (as a Rust step's `needs!` leaves it).
    fn component(module_section: Option<&str>) -> Vec<u8> {
        let mut module = Module::new();
        if let Some(text) = module_section {
            module.section(&CustomSection {
                name: SECTION.into(),
                data: text.as_bytes().into(),
            });
        }
        let mut c = Component::new();
        c.section(&ModuleSection(&module));
        c.finish()
    }

    #[test]
    fn a_section_in_a_nested_module_is_found() {
        let needs = read(&component(Some(DECLARATION))).unwrap().unwrap();
        assert_eq!(needs.rules().len(), 1);
        assert!(read(&component(None)).unwrap().is_none());
    }

    #[test]
    fn embedding_replaces_the_top_level_section_and_refuses_a_second_declaration() {
        let bare = component(None);
        let needs = StepNeeds::from_text(DECLARATION).unwrap();
        let with = embed(&bare, &needs).unwrap();
        assert_eq!(read(&with).unwrap(), Some(needs.clone()));
        wasmparser::Validator::new().validate_all(&with).unwrap();
        let again = embed(&with, &needs).unwrap();
        assert_eq!(again, with, "building again replaces the declaration");
        let narrower = StepNeeds::from_text(&DECLARATION.replace("configmaps", "secrets")).unwrap();
        assert_eq!(
            read(&embed(&with, &narrower).unwrap()).unwrap(),
            Some(narrower)
        );
        let err = embed(&component(Some(DECLARATION)), &needs).unwrap_err();
        assert!(err.to_string().contains("not both"), "{err}");
    }

    #[test]
    fn a_bad_section_is_an_error_naming_it() {
        let err = read(&component(Some("kind: [x"))).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid stepbox:needs declaration"),
            "{err}"
        );
        let err = read(b"\0asm\x0d\0\x01\0garbage").unwrap_err();
        assert!(matches!(err, NeedsError::Component(_)), "{err}");
    }
}
