//! The crate's shape, checked from its source text: imports run one way through the pipeline,
//! no import circles between files, no function over 150 lines and no file over 1,000 lines.
//!
//! `cargo test --test architecture` runs it alone (`make check-architecture`). It reads
//! `src/` as text: comments, strings and `#[cfg(test)]` modules are stripped (unit tests may
//! use any module to build their fixtures), then every `crate::`, `super::`, `self::` path and
//! every path that starts with a child module's name is resolved to the file that defines the
//! module it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The pipeline from the bottom up. A module may use modules of lower layers only; modules of
/// one layer do not use each other, except in the last (the command-line edge).
const LAYERS: &[&[&str]] = &[
    &["util", "stats"],
    &["manifest"],
    &["plan"],
    &["store"],
    &["backend", "workload", "telemetry"],
    &["metrics", "load"],
    &["record"],
    &["table"],
    &["server"],
    &["run"],
    &["import"],
    &["analysis"],
    &["report"],
    &["scale"],
    // The emulator is a test instrument beside the pipeline: see `STANDALONE`.
    &["emulator"],
    &["error", "cli", "commands", "fuzzing"],
];

/// Rooms that stand apart: they may use only the modules listed.
const STANDALONE: &[(&str, &[&str])] = &[("emulator", &["util"])];

const MAX_FN_LINES: usize = 150;
const MAX_FILE_LINES: usize = 1000;

/// One source file: its module path and its text with comments, strings and test modules
/// blanked out (line structure kept).
struct Source {
    path: PathBuf,
    module: Vec<String>,
    /// True for a file that can have child modules (`lib.rs`, `mod.rs`).
    is_dir_module: bool,
    code: String,
    lines: usize,
    /// A file declared as `#[cfg(test)] mod name;`: its imports are not checked.
    unit_test: bool,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn sources() -> Vec<Source> {
    let mut all = read_sources();
    // Files declared as `#[cfg(test)] mod name;` are unit tests: their imports are not the
    // crate's (their size still counts).
    let mut test_modules = BTreeSet::new();
    for src in &all {
        let raw = strip(&std::fs::read_to_string(&src.path).expect("readable source"));
        let mut rest = raw.as_str();
        while let Some(at) = rest.find("#[cfg(test)]") {
            rest = &rest[at + "#[cfg(test)]".len()..];
            let next = rest.trim_start();
            let decl = next
                .strip_prefix("mod ")
                .or_else(|| next.strip_prefix("pub(crate) mod "));
            if let Some(name) = decl.and_then(|d| d.split_once(';')).map(|(n, _)| n.trim())
                && name.chars().all(|c| c.is_alphanumeric() || c == '_')
            {
                let mut m = src.module.clone();
                m.push(name.to_string());
                test_modules.insert(m);
            }
        }
    }
    for src in &mut all {
        src.unit_test = test_modules.contains(&src.module);
    }
    all
}

fn read_sources() -> Vec<Source> {
    let root = src_dir();
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "main.rs"))
        .map(|path| {
            let rel = path.strip_prefix(&root).expect("under src");
            let mut module: Vec<String> = rel
                .iter()
                .map(|s| s.to_string_lossy().trim_end_matches(".rs").to_string())
                .collect();
            let last = module.last().cloned().unwrap_or_default();
            let is_dir_module = last == "mod" || last == "lib";
            if is_dir_module {
                module.pop();
            }
            let text = std::fs::read_to_string(&path).expect("readable source");
            let lines = text.lines().count();
            let code = strip_test_modules(&strip(&text));
            Source {
                path,
                module,
                is_dir_module,
                code,
                lines,
                unit_test: false,
            }
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Blanks comments, string and char literals (keeping newlines), so that only code is read.
fn strip(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |ch: char| if ch == '\n' { '\n' } else { ' ' };
    let is_ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    while i < c.len() {
        let prev_ident = i > 0 && is_ident(c[i - 1]);
        if c[i] == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(c[i]));
                    i += 1;
                }
            }
        } else if !prev_ident && (c[i] == 'r' || (c[i] == 'b' && c.get(i + 1) == Some(&'r'))) && {
            let mut j = i + if c[i] == 'b' { 2 } else { 1 };
            while c.get(j) == Some(&'#') {
                j += 1;
            }
            c.get(j) == Some(&'"')
        } {
            // Raw string: r"..." or r#"..."# (any number of #).
            let mut j = i + if c[i] == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while c[j] == '#' {
                hashes += 1;
                j += 1;
            }
            j += 1;
            'scan: while j < c.len() {
                if c[j] == '"' && (0..hashes).all(|h| c.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break 'scan;
                }
                j += 1;
            }
            out.extend(c[i..j.min(c.len())].iter().map(|&ch| blank(ch)));
            i = j;
        } else if c[i] == '"' {
            let mut j = i + 1;
            while j < c.len() && c[j] != '"' {
                if c[j] == '\\' {
                    j += 1;
                }
                j += 1;
            }
            j = (j + 1).min(c.len());
            out.extend(c[i..j].iter().map(|&ch| blank(ch)));
            i = j;
        } else if c[i] == '\'' {
            // A char literal ('a', '\n', '\u{1F600}') or a lifetime ('a).
            if c.get(i + 1) == Some(&'\\') {
                let mut j = i + 2;
                while j < c.len() && c[j] != '\'' {
                    j += 1;
                }
                j = (j + 1).min(c.len());
                out.extend(c[i..j].iter().map(|&ch| blank(ch)));
                i = j;
            } else if c.get(i + 2) == Some(&'\'') {
                out.push_str("   ");
                i += 3;
            } else {
                out.push('\'');
                i += 1;
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// Blanks `#[cfg(test)] mod name { ... }` blocks (unit tests may use any module).
fn strip_test_modules(code: &str) -> String {
    let mut out: Vec<char> = code.chars().collect();
    let text: String = out.iter().collect();
    let mut search = 0;
    while let Some(at) = text[search..].find("#[cfg(test)]") {
        let start = search + at;
        let rest = &text[start..];
        let after_attr = start + "#[cfg(test)]".len();
        let next = text[after_attr..].trim_start();
        let is_mod = next.starts_with("mod ") || next.starts_with("pub(crate) mod ");
        if let Some(open) = rest.find(['{', ';']).filter(|_| is_mod) {
            let open = start + open;
            if text.as_bytes()[open] == b'{' {
                let close = matching_brace(&text, open);
                blank_range(&mut out, &text, start, close + 1);
                search = close + 1;
                continue;
            }
        }
        search = after_attr;
    }
    out.into_iter().collect()
}

fn blank_range(out: &mut [char], text: &str, from_byte: usize, to_byte: usize) {
    // `text` is ASCII after stripping strings? Not necessarily (identifiers); map bytes to chars.
    let from = text[..from_byte].chars().count();
    let to = text[..to_byte].chars().count();
    for ch in &mut out[from..to] {
        if *ch != '\n' {
            *ch = ' ';
        }
    }
}

/// The byte index of the `}` that closes the `{` at `open`.
fn matching_brace(text: &str, open: usize) -> usize {
    let mut depth = 0usize;
    for (i, b) in text.bytes().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    text.len() - 1
}

/// Every module path the code names, as segments (before resolution).
fn referenced_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    // `use` trees, with their braces expanded; then blanked so the scan below skips them.
    let mut code = code.to_string();
    let mut from = 0;
    while let Some(at) = find_keyword(&code[from..], "use") {
        let start = from + at;
        let end = code[start..].find(';').map_or(code.len(), |e| start + e);
        let tree = normalise_use(&code[start + 3..end]);
        expand_use(&tree, &mut Vec::new(), &mut paths);
        let blanked: String = code[start..end]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        code.replace_range(start..end, &blanked);
        from = end;
    }
    // Every other path: runs of `ident::ident::...`.
    let bytes = code.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while i < bytes.len() {
        if is_ident(bytes[i]) && (i == 0 || (!is_ident(bytes[i - 1]) && bytes[i - 1] != b':')) {
            let mut segs = Vec::new();
            let mut j = i;
            loop {
                let s = j;
                while j < bytes.len() && is_ident(bytes[j]) {
                    j += 1;
                }
                segs.push(code[s..j].to_string());
                if code[j..].starts_with("::") && j + 2 < bytes.len() && is_ident(bytes[j + 2]) {
                    j += 2;
                } else {
                    break;
                }
            }
            if segs.len() > 1 {
                paths.push(segs);
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    paths
}

/// `a :: { b as c ,\n d }` → `a::{b as c,d}`.
fn normalise_use(tree: &str) -> String {
    let collapsed = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = collapsed;
    for tok in ["::", "{", "}", ","] {
        out = out
            .replace(&format!(" {tok}"), tok)
            .replace(&format!("{tok} "), tok);
    }
    out
}

fn find_keyword(text: &str, kw: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(at) = text[from..].find(kw) {
        let i = from + at;
        let before_ok = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let after_ok = bytes
            .get(i + kw.len())
            .is_some_and(|b| b.is_ascii_whitespace());
        if before_ok && after_ok {
            return Some(i);
        }
        from = i + kw.len();
    }
    None
}

/// Expands `a::b::{c, d::{e, f}}` into `[a,b,c]`, `[a,b,d,e]`, `[a,b,d,f]`.
fn expand_use(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim().trim_start_matches("::");
    if let Some(open) = tree.find('{') {
        let head = &tree[..open];
        let close = tree.rfind('}').unwrap_or(tree.len());
        let depth_before = prefix.len();
        prefix.extend(
            head.split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
        for part in split_top_level(&tree[open + 1..close]) {
            expand_use(&part, prefix, out);
        }
        prefix.truncate(depth_before);
    } else {
        let path = tree.split(" as ").next().unwrap_or(tree);
        let mut full = prefix.clone();
        full.extend(
            path.split("::")
                .filter(|s| !s.is_empty() && *s != "*" && *s != "self")
                .map(str::to_string),
        );
        if !full.is_empty() {
            out.push(full);
        }
    }
}

fn split_top_level(list: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for ch in list.chars() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    if !cur.trim().is_empty() {
        parts.push(cur);
    }
    parts
}

/// The module a path names, as the longest known module prefix, or None for outside paths.
fn resolve(from: &Source, path: &[String], modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    let here = &from.module;
    let mut base: Vec<String>;
    let mut segs = path;
    match segs.first().map(String::as_str) {
        Some("crate") => {
            base = Vec::new();
            segs = &segs[1..];
        }
        Some("self") => {
            base = here.clone();
            segs = &segs[1..];
        }
        Some("super") => {
            // In `a/b.rs` (module a::b) `super` is `a`; in `a/b/mod.rs` (a::b) also `a`.
            base = here.clone();
            while segs.first().map(String::as_str) == Some("super") {
                base.pop();
                segs = &segs[1..];
            }
        }
        Some(first) => {
            // A child module named without a prefix (2018 paths), or a top-level module
            // named from lib.rs.
            let mut child = here.clone();
            child.push(first.to_string());
            if modules.contains(&child) {
                base = here.clone();
            } else {
                return None;
            }
        }
        None => return None,
    }
    let mut best = base.clone();
    for seg in segs {
        base.push(seg.clone());
        if modules.contains(&base) {
            best = base.clone();
        } else {
            break;
        }
    }
    Some(best)
}

/// Edges file → file (indices into `sources`), with one example path each.
fn edges(sources: &[Source]) -> BTreeMap<(usize, usize), String> {
    let modules: BTreeSet<Vec<String>> = sources.iter().map(|s| s.module.clone()).collect();
    let by_module: BTreeMap<&Vec<String>, usize> = sources
        .iter()
        .enumerate()
        .map(|(i, s)| (&s.module, i))
        .collect();
    let mut out = BTreeMap::new();
    for (i, src) in sources.iter().enumerate() {
        if src.unit_test {
            continue;
        }
        for path in referenced_paths(&facade_free(src)) {
            let Some(target) = resolve(src, &path, &modules) else {
                continue;
            };
            let Some(&j) = by_module.get(&target) else {
                continue;
            };
            // A room owns its files: `mod.rs` using its children is not a dependency that can
            // close a circle (their use of `super::` items is the room's shared vocabulary).
            let owns = src.is_dir_module && sources[j].module.starts_with(&src.module);
            if i != j && !owns {
                out.entry((i, j)).or_insert_with(|| path.join("::"));
            }
        }
    }
    out
}

/// A directory module's code without its `mod x;` declarations and `pub use` re-exports: a
/// facade naming its children is not a dependency on them.
fn facade_free(src: &Source) -> String {
    if !src.is_dir_module {
        return src.code.clone();
    }
    const DECLS: [&str; 5] = [
        "pub use ",
        "pub(crate) use ",
        "mod ",
        "pub mod ",
        "pub(crate) mod ",
    ];
    let mut code = src.code.clone();
    let mut line_start = 0;
    while line_start < code.len() {
        let line_end = code[line_start..]
            .find('\n')
            .map_or(code.len(), |e| line_start + e);
        let indent =
            code[line_start..line_end].len() - code[line_start..line_end].trim_start().len();
        let at = line_start + indent;
        let semi = code[at..].find(';');
        if let Some(semi) = semi.filter(|_| DECLS.iter().any(|d| code[at..].starts_with(d))) {
            let brace = code[at..].find('{');
            let is_use = code[at..at + 20.min(code.len() - at)].contains("use ");
            // `mod x { ... }` is code, not a declaration.
            if is_use || brace.is_none_or(|b| b > semi) {
                let end = at + semi + 1;
                let blanked: String = code[at..end]
                    .chars()
                    .map(|c| if c == '\n' { '\n' } else { ' ' })
                    .collect();
                code.replace_range(at..end, &blanked);
            }
        }
        line_start = line_end + 1;
    }
    code
}

fn layer_of(top: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&top))
}

fn rel(path: &Path) -> String {
    path.strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")))
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn imports_run_down_the_pipeline() {
    let sources = sources();
    let mut wrong = Vec::new();
    for ((i, j), example) in edges(&sources) {
        let (from, to) = (&sources[i], &sources[j]);
        let (Some(a), Some(b)) = (from.module.first(), to.module.first()) else {
            continue; // lib.rs
        };
        if a == b {
            continue;
        }
        if let Some((_, allowed)) = STANDALONE.iter().find(|(m, _)| m == a) {
            if !allowed.contains(&b.as_str()) {
                wrong.push(format!(
                    "{} uses `{example}`: {a} stands apart and may use only {allowed:?}",
                    rel(&from.path)
                ));
            }
            continue;
        }
        match (layer_of(a), layer_of(b)) {
            (Some(la), Some(lb)) if lb < la || (lb == la && la == LAYERS.len() - 1) => {}
            (Some(_), Some(_)) => wrong.push(format!(
                "{} uses `{example}`: `{a}` may not use `{b}` (same or later stage)",
                rel(&from.path)
            )),
            _ => wrong.push(format!(
                "{} uses `{example}`: add `{a}` or `{b}` to LAYERS in tests/architecture.rs",
                rel(&from.path)
            )),
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the pipeline:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_import_circles_between_files() {
    let sources = sources();
    let edges = edges(&sources);
    let n = sources.len();
    let mut adj = vec![Vec::new(); n];
    for &(i, j) in edges.keys() {
        adj[i].push(j);
    }
    let circles: Vec<String> = strongly_connected(&adj)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| {
            let names: Vec<String> = c.iter().map(|&i| rel(&sources[i].path)).collect();
            let why: Vec<String> = edges
                .iter()
                .filter(|((a, b), _)| c.contains(a) && c.contains(b))
                .map(|((a, b), ex)| {
                    format!(
                        "  {} -> {} (`{ex}`)",
                        rel(&sources[*a].path),
                        rel(&sources[*b].path)
                    )
                })
                .collect();
            format!("{}\n{}", names.join(" <-> "), why.join("\n"))
        })
        .collect();
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

/// Tarjan's algorithm, iterative enough for a few hundred files.
fn strongly_connected(adj: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct State<'a> {
        adj: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(s: &mut State, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for &w in &s.adj[v] {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on_stack[w] => s.low[v] = s.low[v].min(iw),
                _ => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack[w] = false;
                comp.push(w);
                if w == v {
                    break;
                }
            }
            s.out.push(comp);
        }
    }
    let n = adj.len();
    let mut s = State {
        adj,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if s.index[v].is_none() {
            visit(&mut s, v);
        }
    }
    s.out
}

/// `(file, first line, name, lines)` of every function body in the code.
fn functions(src: &Source) -> Vec<(usize, String, usize)> {
    let code = &src.code;
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = find_keyword(&code[from..], "fn") {
        let i = from + at;
        from = i + 2;
        let name: String = code[i + 2..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            continue;
        }
        // The body opens at the first `{` outside parentheses/brackets/angles, unless a `;`
        // comes first (a declaration without body).
        let mut depth = 0i32;
        let mut open = None;
        for (k, &b) in bytes.iter().enumerate().skip(i) {
            match b {
                b'(' | b'[' => depth += 1,
                b')' | b']' => depth -= 1,
                b';' if depth == 0 => break,
                b'{' if depth == 0 => {
                    open = Some(k);
                    break;
                }
                _ => {}
            }
        }
        let Some(open) = open else { continue };
        let close = matching_brace(code, open);
        let first = code[..i].matches('\n').count() + 1;
        let last = code[..close].matches('\n').count() + 1;
        out.push((first, name, last - first + 1));
    }
    out
}

#[test]
fn no_function_over_150_lines() {
    let mut long = Vec::new();
    for src in sources() {
        for (line, name, len) in functions(&src) {
            if len > MAX_FN_LINES {
                long.push(format!("{}:{line} fn {name}: {len} lines", rel(&src.path)));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines (split them):\n{}",
        long.join("\n")
    );
}

#[test]
fn no_file_over_1000_lines() {
    let long: Vec<String> = sources()
        .iter()
        .filter(|s| s.lines > MAX_FILE_LINES)
        .map(|s| format!("{}: {} lines", rel(&s.path), s.lines))
        .collect();
    assert!(
        long.is_empty(),
        "files over {MAX_FILE_LINES} lines (split them by job):\n{}",
        long.join("\n")
    );
}

/// Prints the longest functions (`cargo test --test architecture -- --nocapture longest`).
#[test]
fn longest_functions_report() {
    let mut all: Vec<(usize, String)> = sources()
        .iter()
        .flat_map(|s| {
            functions(s)
                .into_iter()
                .map(|(line, name, len)| (len, format!("{}:{line} fn {name}", rel(&s.path))))
                .collect::<Vec<_>>()
        })
        .collect();
    all.sort_by_key(|a| std::cmp::Reverse(a.0));
    assert!(
        !all.is_empty(),
        "no function found in src/: the scanner is broken"
    );
    for (len, at) in all.iter().take(5) {
        println!("{len:5} lines  {at}");
    }
}

/// The scanner itself: a known circle and a known upward import are found.
#[test]
fn the_scanner_finds_what_it_looks_for() {
    let code = strip(
        "use crate::{run::{self, campaign::X}, table};\n// crate::fake\nlet s = \"crate::nope\"; super::super::plan::f();",
    );
    let paths = referenced_paths(&code);
    let joined: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert!(joined.contains(&"crate::run".to_string()), "{joined:?}");
    assert!(
        joined.contains(&"crate::run::campaign::X".to_string()),
        "{joined:?}"
    );
    assert!(joined.contains(&"crate::table".to_string()), "{joined:?}");
    assert!(
        joined.contains(&"super::super::plan::f".to_string()),
        "{joined:?}"
    );
    assert!(
        !joined
            .iter()
            .any(|p| p.contains("fake") || p.contains("nope"))
    );
    let adj = vec![vec![1], vec![2], vec![0], vec![]];
    let comps = strongly_connected(&adj);
    assert!(comps.iter().any(|c| c.len() == 3));
    let f = Source {
        path: PathBuf::from("x.rs"),
        module: vec!["x".into()],
        is_dir_module: false,
        code: strip("fn a() {\n let x = '{';\n if y { }\n}\nfn b();\n"),
        lines: 5,
        unit_test: false,
    };
    let fns = functions(&f);
    assert_eq!(fns, vec![(1, "a".to_string(), 4)]);
}
