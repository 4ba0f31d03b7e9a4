//! The repository stands alone: someone who clones it gets every document it points to.
//!
//! Fails when a tracked file
//! - refers to a place outside the repository: the parent folder the project's private
//!   brief lives in, or an absolute path of the machines it was written on;
//! - names one of the brief's documents (the upper-case API, SECURITY, TOOLCHAIN and STYLE
//!   Markdown files) instead of the repository's own `docs/api.md` and `docs/security.md`;
//! - has a relative Markdown link that leaves the repository or leads to no file in it;
//! - cites a section of `docs/api.md` or a group of `docs/security.md` that does not
//!   exist ("docs/api.md section 7", "docs/security.md groups 1 and 12").
//!
//! The files are those `git ls-files` lists; without git (a source archive) every file
//! under the package root but build output and installed dependencies. The forbidden
//! texts are assembled from pieces, so that this file does not contain them itself.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

/// Names the fallback walk never reads (the same as `.gitignore`'s, and git's own):
/// build output, installed dependencies, tool state, local secrets.
const SKIPPED: &[&str] =
    &[".git", ".dev.vars", "target", "build", "build-test", "node_modules", ".wrangler", ".artifacts"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The repository's files, relative to the root, with `/` separators.
fn files(root: &Path) -> Vec<String> {
    tracked(root).unwrap_or_else(|| {
        let mut out = Vec::new();
        walk(root, root, &mut out);
        out.sort();
        out
    })
}

/// `git ls-files`, or `None` when git or the repository is not there.
fn tracked(root: &Path) -> Option<Vec<String>> {
    let output = Command::new("git").arg("-C").arg(root).args(["ls-files", "-z"]).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let listed: Vec<String> =
        String::from_utf8_lossy(&output.stdout).split('\0').filter(|p| !p.is_empty()).map(str::to_string).collect();
    (!listed.is_empty()).then_some(listed)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if SKIPPED.contains(&entry.file_name().to_string_lossy().as_ref()) {
            continue;
        }
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(root, &path, out),
            Ok(t) if t.is_file() => {
                if let Ok(relative) = path.strip_prefix(root) {
                    let parts: Vec<String> =
                        relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
                    out.push(parts.join("/"));
                }
            }
            _ => {}
        }
    }
}

/// The texts no file may contain, each with the reason it is refused.
fn forbidden() -> Vec<(String, String)> {
    let mut out = vec![
        (["..", "/", "shared"].concat(), "a folder outside the repository".to_string()),
        (["/", "work", "/"].concat(), "an absolute path of the machines the project was written on".to_string()),
    ];
    for (name, instead) in [
        ("API", "docs/api.md"),
        ("SECURITY", "docs/security.md"),
        ("TOOLCHAIN", "README.md or docs/design.md"),
        ("STYLE", "nothing (drop the reference)"),
    ] {
        out.push(([name, ".", "md"].concat(), format!("a document outside the repository; refer to {instead}")));
    }
    out
}

/// The line number (from 1) of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at].matches('\n').count() + 1
}

/// Relative link targets of the Markdown `text`: `](target)`, without a title or
/// fragment; links with a scheme and in-page anchors are left out.
fn markdown_links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find("](") {
        let start = from + found + 2;
        from = start;
        let Some(len) = text[start..].find(')') else { break };
        let raw = text[start..start + len].trim();
        let target = raw.split_whitespace().next().unwrap_or_default();
        let target = target.split('#').next().unwrap_or_default();
        if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        out.push((start, target.to_string()));
    }
    out
}

/// `relative` (a link in the file `file`) as a path from the root, or `None` when it
/// climbs out of the repository.
fn resolve(file: &str, relative: &str) -> Option<String> {
    let mut parts: Vec<String> = file.split('/').map(str::to_string).collect();
    parts.pop();
    for component in Path::new(relative).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

/// The numbers of the headings `marker` + `N. …` of a document (`## 7. Cookies` → 7).
fn numbered_headings(text: &str, marker: &str) -> BTreeSet<u32> {
    text.lines()
        .filter_map(|line| line.strip_prefix(marker))
        .filter_map(|rest| rest.split_once('.').and_then(|(n, _)| n.trim().parse().ok()))
        .collect()
}

/// The numbers cited after each `name` in `text` as `word N`, `words N, M and K` (a
/// comment may wrap between them: line breaks and comment leaders count as spaces), each
/// with the offset of the citation. `[api.md](api.md) section 4` counts too.
fn citations(text: &str, name: &str, word: &str) -> Vec<(usize, u32)> {
    let mut out = Vec::new();
    for (at, _) in text.match_indices(name) {
        let after = &text[at + name.len()..];
        let after = after.strip_prefix(')').unwrap_or(after);
        let window: String = after.chars().take(160).collect();
        let mut flat = String::new();
        for (i, line) in window.split('\n').enumerate() {
            let line = if i == 0 { line } else { line.trim_start().trim_start_matches(['/', '!', '#', '*']) };
            flat.push(' ');
            flat.push_str(line);
        }
        let mut tokens = flat.split(|c: char| c.is_whitespace() || c == ',').filter(|t| !t.is_empty());
        match tokens.next() {
            Some(w) if w == word || w == format!("{word}s") => {}
            _ => continue,
        }
        for token in tokens {
            if token == "and" {
                continue;
            }
            // `4` goes on (`4, 5 and 7`); `4)` or `4:` is the list's last number.
            let digits = token.trim_end_matches(|c: char| !c.is_ascii_digit());
            match digits.parse::<u32>() {
                Ok(n) if !digits.is_empty() => out.push((at, n)),
                _ => break,
            }
            if digits.len() != token.len() {
                break;
            }
        }
    }
    out
}

#[test]
fn the_repository_refers_to_nothing_outside_itself() {
    let root = root();
    let files = files(&root);
    assert!(!files.is_empty(), "no files found under {}", root.display());
    let listed: BTreeSet<&str> = files.iter().map(String::as_str).collect();
    let is_dir = |path: &str| {
        let prefix = format!("{}/", path.trim_end_matches('/'));
        files.iter().any(|f| f.starts_with(&prefix))
    };
    let read = |path: &str| std::fs::read(root.join(path)).ok().map(|b| String::from_utf8_lossy(&b).into_owned());

    let api = read("docs/api.md").unwrap_or_default();
    let security = read("docs/security.md").unwrap_or_default();
    let sections = numbered_headings(&api, "## ");
    let groups = numbered_headings(&security, "### ");
    let mut problems: Vec<String> = Vec::new();
    if sections.is_empty() {
        problems.push("docs/api.md is missing or has no numbered sections (`## 1. …`)".into());
    }
    if groups.is_empty() {
        problems.push("docs/security.md is missing or has no numbered groups (`### 1. …`)".into());
    }

    let forbidden = forbidden();
    for file in &files {
        // A file listed but deleted in the work tree has nothing to say.
        let Some(text) = read(file) else { continue };
        for (needle, reason) in &forbidden {
            for (at, _) in text.match_indices(needle.as_str()) {
                problems.push(format!("{file}:{}: `{needle}`: {reason}", line_of(&text, at)));
            }
        }
        if file.ends_with(".md") {
            for (at, target) in markdown_links(&text) {
                let line = line_of(&text, at);
                match resolve(file, &target) {
                    None => problems.push(format!("{file}:{line}: link `{target}` leaves the repository")),
                    Some(path) if !listed.contains(path.as_str()) && !is_dir(&path) => {
                        problems.push(format!("{file}:{line}: link `{target}` leads to no file of the repository"))
                    }
                    Some(_) => {}
                }
            }
        }
        for (name, word, known, document) in
            [("api.md", "section", &sections, "docs/api.md"), ("security.md", "group", &groups, "docs/security.md")]
        {
            for (at, n) in citations(&text, name, word) {
                if !known.contains(&n) {
                    problems.push(format!(
                        "{file}:{}: cites {document} {word} {n}, which does not exist",
                        line_of(&text, at)
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} reference(s) outside the repository or to nothing:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_checks_see_what_they_must() {
    // The six texts, and none of them within the names the repository uses instead.
    let pieces = forbidden();
    assert_eq!(pieces.len(), 6);
    for (needle, _) in &pieces {
        assert!(needle.len() > 5, "{needle}");
        for allowed in ["docs/api.md", "docs/security.md", "[api.md](api.md)", "../README.md", "tests/support/"] {
            assert!(!allowed.contains(needle.as_str()), "{needle} in {allowed}");
        }
    }
    assert_eq!(resolve("docs/a.md", "b.md").as_deref(), Some("docs/b.md"));
    assert_eq!(resolve("docs/a.md", "../README.md").as_deref(), Some("README.md"));
    assert_eq!(resolve("docs/a.md", "../../x.md"), None);
    let links: Vec<String> = markdown_links("[a](b.md#x) [c](https://e.example/) [d](#top) [e](../f \"t\")")
        .into_iter()
        .map(|(_, target)| target)
        .collect();
    assert_eq!(links, ["b.md", "../f"]);
    let cited = |t: &str| citations(t, "api.md", "section").into_iter().map(|(_, n)| n).collect::<Vec<_>>();
    assert_eq!(cited("(docs/api.md sections 2, 4 and 9)"), [2, 4, 9]);
    assert_eq!(cited("(docs/api.md section 3, v2)"), [3]);
    assert_eq!(cited("(docs/api.md section 4): 403 `forbidden`"), [4]);
    assert_eq!(cited("//! (docs/api.md\n//! section 9): the"), [9]);
    assert_eq!(cited("[api.md](api.md) section 5, \"Refresh answers\""), [5]);
    assert_eq!(cited("cite it as \"docs/api.md section N\""), Vec::<u32>::new());
    let groups = |t: &str| citations(t, "security.md", "group").into_iter().map(|(_, n)| n).collect::<Vec<_>>();
    assert_eq!(groups("(docs/security.md groups 1\n/// and 12). Refused"), [1, 12]);
    assert_eq!(numbered_headings("# t\n## 1. A\n## 10. B\n### 2. C\n## Other", "## "), BTreeSet::from([1, 10]));
}
