//! The layer order written in ARCHITECTURE.md holds in the code: every module imports only from
//! modules on lower layers (which also rules out import cycles between modules), and the list
//! names every module of the crate.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// `ARCHITECTURE.md`'s ```` ```layers ```` block: one layer per line, lowest first; modules on
/// one line are independent of each other. Returns module → layer index.
fn layers() -> HashMap<String, usize> {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let block = text
        .split("```layers\n")
        .nth(1)
        .expect("ARCHITECTURE.md has a ```layers block")
        .split("```")
        .next()
        .unwrap();
    let mut out = HashMap::new();
    for (i, line) in block.lines().enumerate() {
        let names = line.split('#').next().unwrap();
        for m in names.split_whitespace() {
            assert!(
                out.insert(m.to_string(), i).is_none(),
                "{m} is listed twice"
            );
        }
    }
    out
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file under `src/` belongs to (`bin` for the binaries).
fn module_of(rel: &Path) -> String {
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Top-level modules named by `crate::NAME` (or `churn::NAME` in a binary) on a code line.
fn imports(line: &str, prefix: &str) -> Vec<String> {
    let code = line.trim_start();
    if code.starts_with("//") {
        return Vec::new();
    }
    code.match_indices(prefix)
        .filter(|(i, _)| {
            // a whole path segment: not `mycrate::`
            *i == 0
                || !code[..*i]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
        .map(|(i, _)| {
            code[i + prefix.len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        })
        .filter(|m: &String| !m.is_empty())
        .collect()
}

#[test]
fn modules_import_only_from_lower_layers() {
    let layers = layers();
    let src = root().join("src");
    // every module of the crate has a layer, and every listed module exists
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let declared: Vec<String> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_string())
        .collect();
    for m in &declared {
        assert!(
            layers.contains_key(m),
            "module {m} is not in ARCHITECTURE.md's layers"
        );
    }
    for m in layers.keys() {
        assert!(
            declared.contains(m) || m == "bin",
            "ARCHITECTURE.md's layers list {m}, which src/lib.rs does not declare"
        );
    }
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut problems = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        if rel == Path::new("lib.rs") {
            continue;
        }
        let own = module_of(rel);
        let own_layer = layers[&own];
        let prefix = if own == "bin" { "churn::" } else { "crate::" };
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            for m in imports(line, prefix) {
                let Some(&layer) = layers.get(&m) else {
                    continue; // a macro or a re-export at the crate root
                };
                if m != own && layer >= own_layer {
                    problems.push(format!(
                        "src/{}:{}: {own} (layer {own_layer}) imports {m} (layer {layer})",
                        rel.display(),
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "imports that run upward or sideways:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_sees_an_upward_import() {
    assert_eq!(
        imports("use crate::evaluate::drift;", "crate::"),
        ["evaluate"]
    );
    assert_eq!(
        imports(
            "    let x = crate::store::now_ms() + crate::util::f();",
            "crate::"
        ),
        ["store", "util"]
    );
    assert!(imports("/// see [`crate::evaluate`]", "crate::").is_empty());
    assert!(imports("use mycrate::store;", "crate::").is_empty());
}

/// ARCHITECTURE.md's promise: no `src` file above 700 lines unless its module doc says why
/// (a line starting `//! Longer than 700 lines:`). A file that grows past the limit fails here
/// naming itself, so the split happens when the code is fresh.
#[test]
fn no_file_is_longer_than_the_limit_without_a_reason() {
    const LIMIT: usize = 700;
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut long = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let lines = text.lines().count();
        let reason = text
            .lines()
            .take_while(|l| l.starts_with("//!") || l.trim().is_empty())
            .any(|l| l.starts_with("//! Longer than 700 lines:"));
        if lines > LIMIT && !reason {
            long.push(format!("{} ({lines} lines)", f.display()));
        }
    }
    assert!(
        long.is_empty(),
        "files above {LIMIT} lines without a `//! Longer than 700 lines:` reason: {long:?}"
    );
}
