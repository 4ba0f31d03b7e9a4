//! The layering of edge-bff's modules, checked: every module of `src/` may use its own
//! layer and the layers below it, never one above. The order is [`LAYERS`], here and
//! nowhere else (`src/lib.rs` and docs/design.md describe it in words).
//!
//! The check reads the source as text: every `crate::…` path outside comments, and every
//! `super::…` path (resolved against the file's own module), in the code that ships.
//! Test code is left out: the `tests.rs`, `store_suite.rs`, `testutil.rs` and `fuzz.rs`
//! files, and a file's trailing `#[cfg(test)] mod …` block, may use any layer.

use std::path::{Path, PathBuf};

/// The layers from the bottom up; each is a name and the module paths it holds. A module
/// belongs to the layer of its longest matching path.
const LAYERS: &[(&str, &[&str])] = &[
    ("HTTP building blocks", &["web", "web::client", "web::cookies", "web::percent", "web::query", "web::response"]),
    ("errors", &["error"]),
    ("cryptography and JOSE", &["crypto"]),
    ("coalescing", &["coalesce"]),
    ("configuration", &["config"]),
    ("HTTP policies", &["web::cors", "web::csrf", "web::security_headers"]),
    ("routing", &["router"]),
    ("sessions", &["session"]),
    ("OpenID Connect", &["oidc"]),
    ("session lifecycle", &["lifecycle"]),
    ("API proxy", &["proxy"]),
    ("OAuth agent", &["agent"]),
    ("Worker glue", &["runtime"]),
];

/// Files that are test code as a whole.
const TEST_FILES: &[&str] = &["tests.rs", "store_suite.rs", "testutil.rs", "fuzz.rs"];

/// The index in [`LAYERS`] of module path `module` (`a::b::c`), if any layer holds it.
fn layer_of(module: &str) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (index, (_, prefixes)) in LAYERS.iter().enumerate() {
        for prefix in *prefixes {
            let holds = module == *prefix || module.starts_with(&format!("{prefix}::"));
            if holds && best.is_none_or(|(_, len)| prefix.len() > len) {
                best = Some((index, prefix.len()));
            }
        }
    }
    best.map(|(index, _)| index)
}

/// The module path of `file` (relative to `src/`): `web/cors.rs` → `web::cors`,
/// `config/mod.rs` → `config`; `None` for the crate root.
fn module_of(file: &Path) -> Option<String> {
    let mut parts: Vec<String> = file.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop()?;
    let stem = last.strip_suffix(".rs")?;
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    (!parts.is_empty()).then(|| parts.join("::"))
}

/// The shipping code of a source file: without comments and without its trailing test
/// module.
fn shipping_code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed == "#[cfg(test)]" && lines.peek().is_some_and(|next| next.trim_start().starts_with("mod ")) {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The module paths `code` (of module `module`) refers to: `crate::a::b` and `super::b`,
/// each as far as its lowercase segments go.
fn referenced_modules(module: &str, code: &str) -> Vec<String> {
    let parent: Vec<&str> = {
        let mut p: Vec<&str> = module.split("::").collect();
        p.pop();
        p
    };
    let mut found = Vec::new();
    for (start, _) in code.match_indices("crate::").chain(code.match_indices("super::")) {
        // Only whole path starts (not `edge_bff_crate::` or `a::super::`).
        let before = code[..start].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &code[start..];
        let (base, rest): (Vec<&str>, &str) = match rest.strip_prefix("crate::") {
            Some(rest) => (Vec::new(), rest),
            None => (parent.clone(), &rest["super::".len()..]),
        };
        let mut path = base;
        for segment in rest.split("::") {
            let name: String = segment.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_lowercase()) {
                break;
            }
            path.push(segment.get(..name.len()).unwrap_or_default());
            if name.len() != segment.len() {
                break;
            }
        }
        if !path.is_empty() {
            found.push(path.join("::"));
        }
    }
    found
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The layering violations of one file (module `module`, shipping code `code`), one line
/// each; an error when no layer holds the module.
fn violations(module: &str, code: &str) -> Result<Vec<String>, String> {
    let own = layer_of(module).ok_or_else(|| format!("{module}: in no layer (add it to LAYERS)"))?;
    let mut found = Vec::new();
    for used in referenced_modules(module, code) {
        // A path that names a module no layer holds (a function of the crate root, say)
        // is not a layer crossing.
        if let Some(layer) = layer_of(&used) {
            if layer > own {
                found.push(format!("{module} ({}) uses {used} ({}), a layer above it", LAYERS[own].0, LAYERS[layer].0));
            }
        }
    }
    Ok(found)
}

#[test]
fn every_module_uses_only_its_own_layer_and_those_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in &files {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if TEST_FILES.contains(&name) {
            continue;
        }
        let relative = file.strip_prefix(&src).expect("under src/");
        let Some(module) = module_of(relative) else { continue };
        let text = std::fs::read_to_string(file).expect("source readable");
        match violations(&module, &shipping_code(&text)) {
            Ok(found) => problems.extend(found),
            Err(unplaced) => problems.push(unplaced),
        }
        checked += 1;
    }
    assert!(checked > 50, "only {checked} modules read: is src/ where it was?");
    assert!(problems.is_empty(), "layering broken:\n{}", problems.join("\n"));
}

#[test]
fn the_check_sees_a_use_of_a_layer_above() {
    let code = "use crate::lifecycle::RequestContext;\nfn f() { crate::web::response::json(); }\n";
    let found = violations("session::store", code).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("uses lifecycle"), "{found:?}");
    // `super::` resolves against the module: from `web::response`, `super::cors` is a
    // policy, above the building blocks.
    assert_eq!(violations("web::response", "use super::cors::preflight;").unwrap().len(), 1);
    assert!(violations("web::cors", "use super::response::HttpResponse;").unwrap().is_empty());
    // Comments and the trailing test module do not count.
    let text =
        "//! see crate::runtime\nuse crate::crypto::seal;\n#[cfg(test)]\nmod tests {\n    use crate::runtime::x;\n}\n";
    assert!(violations("session::kv", &shipping_code(text)).unwrap().is_empty());
    // A module no layer holds is reported.
    assert!(violations("newthing::x", "").is_err());
}
