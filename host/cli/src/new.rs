//! `stepbox new NAME --lang rust|js|python`: a ready step in `./NAME`, from
//! the templates in `guest-sdk/templates/<lang>/` (embedded in the binary).
//!
//! Each template is a step that reads the input `message`, applies a
//! ConfigMap (from its sample `package/`, or built in), waits for it and
//! sets outputs, with a README. In every file `{{name}}` becomes the step's
//! name, `{{crate_name}}` its Rust crate name (`-` → `_`) and `{{sdk_path}}`
//! the absolute path of the guest SDK (see [`crate::build::Sdk`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};

use crate::build::Sdk;

/// The language of a new step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// Rust (a crate on stepbox-sdk).
    Rust,
    /// JavaScript (rename step.js to step.ts for TypeScript).
    Js,
    /// Python.
    Python,
}

/// `stepbox new`'s arguments.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The step's name, and the directory made for it in the current
    /// directory: lowercase letters, digits and `-`, starting with a letter.
    pub name: String,
    /// The language.
    #[arg(long, short, value_enum)]
    pub lang: Lang,
}

/// One file of a template: its path in the step and its text.
type TemplateFile = (&'static str, &'static str);

macro_rules! template {
    ($lang:literal: $($path:literal),+ $(,)?) => {
        &[$(($path, include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"), "/../../guest-sdk/templates/", $lang, "/", $path
        )))),+]
    };
}

const RUST: &[TemplateFile] = template!("rust":
    "Cargo.toml", "README.md", "src/lib.rs", "package/configmap.yaml", ".gitignore", "step.yaml");
const JS: &[TemplateFile] = template!("js":
    "package.json", "step.js", "tsconfig.json", "README.md", "package/configmap.yaml", ".gitignore", "step.yaml");
const PYTHON: &[TemplateFile] = template!("python":
    "step.py", "pyproject.toml", "README.md", "package/configmap.yaml", ".gitignore", "step.yaml");

impl Lang {
    fn files(self) -> &'static [TemplateFile] {
        match self {
            Self::Rust => RUST,
            Self::Js => JS,
            Self::Python => PYTHON,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Rust => "a Rust step (src/lib.rs on stepbox-sdk)",
            Self::Js => {
                "a JavaScript step (step.js on @stepbox/sdk; rename it step.ts for TypeScript)"
            }
            Self::Python => "a Python step (step.py on stepbox_sdk)",
        }
    }

    fn first_build(self) -> &'static str {
        match self {
            Self::Rust => "needs `rustup target add wasm32-wasip2`",
            Self::Js => {
                "installs componentize-js into stepbox's cache (Node.js 18+ and npm needed), and \
                 the first run compiles the component for 10-20 s"
            }
            Self::Python => {
                "installs componentize-py into stepbox's cache (Python 3.11+ with pip needed), \
                 and the first run compiles the component for 10-20 s"
            }
        }
    }
}

/// Names Rust refuses as a crate name.
const RESERVED: &[&str] = &[
    "alloc",
    "core",
    "proc-macro",
    "std",
    "test",
    "as",
    "async",
    "await",
    "box",
    "break",
    "const",
    "continue",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
];

/// Checks a step name: it becomes a directory, an npm, Python and Rust
/// package name and the component's file name.
fn validate_name(name: &str) -> Result<()> {
    let well_formed = name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !well_formed {
        bail!(
            "{name:?} is not a valid step name: use lowercase letters, digits and single `-`, \
             starting with a letter, at most 63 characters (e.g. rotate-secrets)"
        );
    }
    if RESERVED.contains(&name) {
        bail!(
            "{name:?} cannot be a step name: Rust reserves it; choose another (e.g. {name}-step)"
        );
    }
    Ok(())
}

/// Replaces the placeholders of a template file.
fn fill(text: &str, name: &str, sdk_path: &str) -> String {
    text.replace("{{name}}", name)
        .replace("{{crate_name}}", &name.replace('-', "_"))
        .replace("{{sdk_path}}", sdk_path)
}

/// The SDK's path as the templates write it (inside TOML and JSON strings):
/// refused when it would need escaping.
fn sdk_path_text(sdk: &Path) -> Result<String> {
    let text = sdk
        .to_str()
        .with_context(|| format!("the guest SDK's path {} is not UTF-8", sdk.display()))?;
    if text
        .chars()
        .any(|c| c == '"' || c == '\\' || c.is_control())
    {
        bail!(
            "the guest SDK's path {text:?} holds a quote, a backslash or a control character, \
             which the new step's Cargo.toml/package.json cannot hold: move the checkout or set {}",
            Sdk::ENV
        );
    }
    Ok(text.to_string())
}

/// Writes the template of `lang` into `parent/name`, which must not exist.
/// Returns the new directory.
pub fn create(parent: &Path, name: &str, lang: Lang, sdk: &Path) -> Result<PathBuf> {
    validate_name(name)?;
    let sdk_path = sdk_path_text(sdk)?;
    let dir = parent.join(name);
    if std::fs::symlink_metadata(&dir).is_ok() {
        bail!(
            "{} exists already: choose another name or remove it",
            dir.display()
        );
    }
    // create_dir (not _all) fails if something made it meanwhile.
    std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (path, text) in lang.files() {
        let file = dir.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&file, fill(text, name, &sdk_path))
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    Ok(dir)
}

/// `stepbox new`: writes the step and says what to run next.
pub fn new_command(args: &NewArgs) -> Result<u8> {
    validate_name(&args.name)?;
    let sdk = Sdk::locate()?;
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let dir = create(&cwd, &args.name, args.lang, &sdk.dir)?;
    let name = &args.name;
    let files: Vec<&str> = args.lang.files().iter().map(|(p, _)| *p).collect();
    println!("created {}: {}", dir.display(), args.lang.describe());
    println!("  files: {}", files.join(", "));
    println!("next:");
    println!(
        "  stepbox run {name}                      # build, then run on the embedded namespace ({name}/package is /packages)"
    );
    println!("  stepbox run {name} --input message=hi   # with an input");
    println!(
        "  stepbox build {name}                    # only the .wasm (its path is the last line)"
    );
    println!("The first build {}.", args.lang.first_build());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::tests::TestDir;

    #[test]
    fn names_are_checked() {
        for ok in ["hello", "rotate-secrets", "a1", "x"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "Hello", "1step", "-a", "a-", "a--b", "a_b", "a/b", "..", "a b", "test",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_name(&"a".repeat(64)).is_err());
    }

    /// Every file of `guest-sdk/templates/<lang>/` is embedded, and nothing else.
    #[test]
    fn every_template_file_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest-sdk/templates");
        for (lang, dir) in [
            (Lang::Rust, "rust"),
            (Lang::Js, "js"),
            (Lang::Python, "python"),
        ] {
            let mut on_disk = Vec::new();
            let mut stack = vec![root.join(dir)];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).unwrap() {
                    let p = e.unwrap().path();
                    if p.is_dir() {
                        stack.push(p);
                    } else {
                        let rel = p.strip_prefix(root.join(dir)).unwrap();
                        on_disk.push(rel.to_string_lossy().replace('\\', "/"));
                    }
                }
            }
            on_disk.sort();
            let mut embedded: Vec<String> =
                lang.files().iter().map(|(p, _)| p.to_string()).collect();
            embedded.sort();
            assert_eq!(on_disk, embedded, "templates/{dir}");
        }
    }

    #[test]
    fn a_step_is_written_with_its_placeholders_filled() {
        let d = TestDir::new();
        let dir = create(
            d.path(),
            "my-step",
            Lang::Rust,
            Path::new("/opt/stepbox/guest-sdk"),
        )
        .unwrap();
        let cargo = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(cargo.contains("name = \"my-step\""), "{cargo}");
        assert!(
            cargo.contains("path = \"/opt/stepbox/guest-sdk\""),
            "{cargo}"
        );
        let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
        assert!(readme.contains("my_step.wasm"), "{readme}");
        assert!(dir.join("package/configmap.yaml").is_file());
        for lang in [Lang::Rust, Lang::Js, Lang::Python] {
            let d = TestDir::new();
            let dir = create(d.path(), "s", lang, Path::new("/sdk")).unwrap();
            for (path, _) in lang.files() {
                let text = std::fs::read_to_string(dir.join(path)).unwrap();
                assert!(!text.contains("{{"), "{lang:?} {path} keeps a placeholder");
            }
        }
    }

    #[test]
    fn an_existing_directory_is_left_alone() {
        let d = TestDir::new();
        std::fs::create_dir(d.path().join("taken")).unwrap();
        std::fs::write(d.path().join("taken/keep"), "mine").unwrap();
        let err = create(d.path(), "taken", Lang::Js, Path::new("/sdk")).unwrap_err();
        assert!(err.to_string().contains("exists already"), "{err}");
        assert_eq!(
            std::fs::read_to_string(d.path().join("taken/keep")).unwrap(),
            "mine"
        );
        let err = create(d.path(), "x", Lang::Js, Path::new("/a\"b")).unwrap_err();
        assert!(err.to_string().contains("quote"), "{err}");
        assert!(!d.path().join("x").exists());
    }
}
