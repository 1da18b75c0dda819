//! The layer rules of docs/architecture.md, checked against the sources:
//! every `crate::` and `super::` path in src/ (in `use` lines and inline
//! alike, outside comments and `#[cfg(test)]` modules) is resolved to the
//! module it names, and a module that reaches a layer above its own fails,
//! as does any import circle between modules that are not each other's
//! ancestors.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first, and the modules in each (a module path
/// belongs to its longest listed prefix). docs/architecture.md draws the
/// same table.
const LAYERS: &[(&str, &[&str])] = &[
    ("vocabulary", &["report", "stage", "exit_code", "units"]),
    ("seams", &["cuda", "telemetry", "environment", "events"]),
    ("checks", &["cpu", "verify", "peak", "checks"]),
    ("orchestrator", &["probe"]),
    ("judge", &["judge"]),
    ("renderers", &["export", "plot"]),
    (
        "front",
        &[
            "", "app", "cli", "modes", "output", "serve", "signals", "main",
        ],
    ),
];

fn layer(module: &str) -> usize {
    let mut best: Option<(usize, usize)> = None;
    for (rank, (_, modules)) in LAYERS.iter().enumerate() {
        for prefix in *modules {
            let matches = prefix.is_empty()
                || module == *prefix
                || module.starts_with(&format!("{prefix}::"));
            if matches && best.is_none_or(|(len, _)| prefix.len() > len) {
                best = Some((prefix.len(), rank));
            }
        }
    }
    best.map_or(LAYERS.len() - 1, |(_, rank)| rank)
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// "probe::session" for src/probe/session.rs, "probe" for src/probe/mod.rs,
/// "" for src/lib.rs and src/main.rs.
fn module_of(root: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The file's code without comments and without its test module.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .map(|line| match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The module paths named after each `crate::` and `super::` in `code`,
/// a `{...}` group opened into each of its items' first names.
fn references(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let (base, skip) = if boundary && rest.starts_with("crate::") {
            (Vec::new(), "crate::".len())
        } else if boundary && rest.starts_with("super::") {
            let mut base = module.to_vec();
            let mut skip = 0;
            while code[i + skip..].starts_with("super::") {
                base.pop();
                skip += "super::".len();
            }
            (base, skip)
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        i += skip;
        let mut path = base;
        loop {
            let tail = &code[i..];
            if tail.starts_with('{') {
                // A group: each item's first name.
                let close = matching_brace(tail);
                for item in split_top(&tail[1..close]) {
                    let name = ident_at(item.trim());
                    if !name.is_empty() && name != "self" {
                        let mut p = path.clone();
                        p.push(name.to_string());
                        out.push(p);
                    }
                }
                i += close;
                break;
            }
            let name = ident_at(tail);
            if name.is_empty() {
                out.push(path);
                break;
            }
            path.push(name.to_string());
            i += name.len();
            if code[i..].starts_with("::") {
                i += 2;
            } else {
                out.push(path);
                break;
            }
        }
    }
    out
}

fn matching_brace(s: &str) -> usize {
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    s.len()
}

fn split_top(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// Every module of the crate, by path, and the modules each one names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .map(|f| module_of(&root, f).join("::"))
        .collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let module = module_of(&root, file);
        let text = std::fs::read_to_string(file).unwrap();
        let mut names = BTreeSet::new();
        for path in references(&code(&text), &module) {
            // The longest prefix that is a module of its own (a file).
            let target = (0..=path.len())
                .rev()
                .map(|n| path[..n].join("::"))
                .find(|p| modules.contains(p))
                .unwrap_or_default();
            names.insert(target);
        }
        graph.insert(module.join("::"), names);
    }
    graph
}

fn related(a: &str, b: &str) -> bool {
    let within = |outer: &str, inner: &str| {
        outer.is_empty() || inner == outer || inner.starts_with(&format!("{outer}::"))
    };
    within(a, b) || within(b, a)
}

#[test]
fn no_module_reaches_a_layer_above_its_own() {
    let mut broken = Vec::new();
    for (module, names) in graph() {
        for target in names {
            if layer(&target) > layer(&module) && !related(&module, &target) {
                broken.push(format!(
                    "{module} ({}) uses {target} ({})",
                    LAYERS[layer(&module)].0,
                    LAYERS[layer(&target)].0
                ));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "layer rules broken (docs/architecture.md):\n{}",
        broken.join("\n")
    );
}

#[test]
fn no_import_circles() {
    let graph = graph();
    let mut circles = Vec::new();
    for (a, names) in &graph {
        for b in names {
            if a < b && !related(a, b) && reaches(&graph, b, a) {
                circles.push(format!("{a} <-> {b}"));
            }
        }
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

/// Whether `to` can be reached from `from` over edges between unrelated
/// modules.
fn reaches(graph: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_string()];
    while let Some(m) = stack.pop() {
        if m == to {
            return true;
        }
        if !seen.insert(m.clone()) {
            continue;
        }
        for next in graph.get(&m).into_iter().flatten() {
            if !related(&m, next) {
                stack.push(next.clone());
            }
        }
    }
    false
}

/// The checker itself finds what it must: a `use` group, an inline path,
/// and `super::` resolved against the file's module.
#[test]
fn references_are_read_from_use_groups_inline_paths_and_super() {
    let module = vec!["probe".to_string(), "device".to_string()];
    let found = references(
        "use crate::{report::{A, B}, stage::Stage};\n\
         let x = crate::judge::diagnose::RULES;\n\
         use super::burn::Plan;\n\
         fn f() -> nocrate::x {}",
        &module,
    );
    let found: BTreeSet<String> = found.iter().map(|p| p.join("::")).collect();
    for expected in [
        "report",
        "stage",
        "judge::diagnose::RULES",
        "probe::burn::Plan",
    ] {
        assert!(found.contains(expected), "{expected} not in {found:?}");
    }
    assert!(!found.iter().any(|p| p.contains("nocrate") || p == "x"));
    assert!(layer("judge::diagnose") > layer("probe::session"));
    assert!(layer("checks::burn") < layer("probe::session"));
}

/// Each function in `text` (outside its test module) as (name, lines),
/// from its `fn` line to the line of its closing brace.
fn function_lengths(text: &str) -> Vec<(String, usize)> {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    let lines: Vec<&str> = code.lines().collect();
    let mut out = Vec::new();
    for (at, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let Some(rest) = ["pub(crate) fn ", "pub(super) fn ", "pub fn ", "fn "]
            .iter()
            .find_map(|p| trimmed.strip_prefix(p))
        else {
            continue;
        };
        let name = ident_at(rest).to_string();
        // The body: from the first `{` after the signature to its match,
        // skipping string and character literals.
        let mut depth = 0usize;
        let mut opened = false;
        let mut end = None;
        'lines: for (offset, body) in lines[at..].iter().enumerate() {
            let mut chars = body.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '/' if chars.peek() == Some(&'/') => break,
                    '"' => {
                        while let Some(s) = chars.next() {
                            match s {
                                '\\' => {
                                    chars.next();
                                }
                                '"' => break,
                                _ => {}
                            }
                        }
                    }
                    '\'' => {
                        // A character literal ('{', '\n'), not a lifetime.
                        let mut probe = chars.clone();
                        let first = probe.next();
                        let literal = match first {
                            Some('\\') => true,
                            Some(_) => probe.next() == Some('\''),
                            None => false,
                        };
                        if literal {
                            for s in chars.by_ref() {
                                if s == '\'' {
                                    break;
                                }
                            }
                        }
                    }
                    ';' if !opened => break 'lines,
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => {
                        depth = depth.saturating_sub(1);
                        if opened && depth == 0 {
                            end = Some(offset);
                            break 'lines;
                        }
                    }
                    _ => {}
                }
            }
        }
        if let Some(end) = end {
            out.push((name, end + 1));
        }
    }
    out
}

/// The judge and the orchestrator read in one screen: no function over 60
/// lines (the rest of the crate answers to clippy's too_many_lines at 100).
#[test]
fn the_judge_and_the_orchestrator_read_in_one_screen() {
    const LIMIT: usize = 60;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let mut long = Vec::new();
    for file in files {
        let module = module_of(&root, &file).join("::");
        let layer = LAYERS[layer(&module)].0;
        if layer != "judge" && layer != "orchestrator" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (name, lines) in function_lengths(&text) {
            if lines > LIMIT {
                long.push(format!("{module}::{name}: {lines} lines"));
            }
        }
    }
    assert!(
        long.is_empty(),
        "over {LIMIT} lines in the judge or the orchestrator:\n{}",
        long.join("\n")
    );
}

#[test]
fn function_lengths_are_counted_from_fn_to_its_closing_brace() {
    let text = "fn a() {\n    let s = \"}\";\n    let c = '{';\n}\n\
                pub fn b<'x>(v: &'x str) -> &'x str {\n    v\n}\n\
                fn declared();\n";
    assert_eq!(
        function_lengths(text),
        vec![("a".to_string(), 4), ("b".to_string(), 3)]
    );
}
