//! Keeps every Rust fn of the crate, its tests and benchmarks at most `MAX_BODY_LINES` lines long
//! (the lines between the line of its opening brace and the line of its closing brace). A brace
//! counter over the source with comments, strings and char literals blanked out: no parser
//! needed for code that compiles. `cargo test --test fn_length -- --nocapture` prints the longest.

use std::fs;
use std::path::{Path, PathBuf};

const MAX_BODY_LINES: usize = 80;

/// Known longer fns, each at most this long, in files another change owns right now: (file, fn,
/// lines). Split the fn there and delete its entry (the test fails on an entry that fits).
const PENDING: &[(&str, &str, usize)] = &[];

/// The `.rs` files under `dir`, recursively, sorted.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The length in bytes of the raw string opening at `i` (`r"`, `r#"`, `br##"` ...), if one does.
fn raw_string_len(s: &[u8], i: usize) -> Option<usize> {
    let mut j = i + usize::from(s[i] == b'b');
    if s.get(j) != Some(&b'r') || (i > 0 && (s[i - 1].is_ascii_alphanumeric() || s[i - 1] == b'_'))
    {
        return None;
    }
    j += 1;
    let hashes = s[j..].iter().take_while(|&&c| c == b'#').count();
    j += hashes;
    if s.get(j) != Some(&b'"') {
        return None;
    }
    let close: Vec<u8> = std::iter::once(b'"').chain(vec![b'#'; hashes]).collect();
    let end = s[j + 1..].windows(close.len()).position(|w| w == close)?;
    Some(j + 1 + end + close.len() - i)
}

/// The length of the char literal opening at `i` (`'x'`, `'\n'`, `'\u{..}'`), or None for a
/// lifetime or label.
fn char_literal_len(s: &[u8], i: usize) -> Option<usize> {
    if s.get(i + 1) == Some(&b'\\') {
        // The escaped character itself may be a quote: look past it.
        let end = s[i + 3..].iter().position(|&c| c == b'\'')?;
        return Some(end + 4);
    }
    // One character of up to 4 UTF-8 bytes, then the closing quote.
    let width = match s.get(i + 1)? {
        c if *c < 0x80 => 1,
        c if *c >= 0xF0 => 4,
        c if *c >= 0xE0 => 3,
        _ => 2,
    };
    (s.get(i + 1 + width) == Some(&b'\'')).then_some(width + 2)
}

/// The source with comments, strings and char literals replaced by spaces (newlines kept).
fn code_only(source: &str) -> Vec<u8> {
    let s = source.as_bytes();
    let mut out = s.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to.min(s.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < s.len() {
        let skip = if s[i..].starts_with(b"//") {
            s[i..]
                .iter()
                .position(|&c| c == b'\n')
                .unwrap_or(s.len() - i)
        } else if s[i..].starts_with(b"/*") {
            let (mut depth, mut j) = (0usize, i);
            loop {
                if s[j..].starts_with(b"/*") {
                    (depth, j) = (depth + 1, j + 2);
                } else if s[j..].starts_with(b"*/") {
                    (depth, j) = (depth - 1, j + 2);
                    if depth == 0 {
                        break j - i;
                    }
                } else {
                    j += 1;
                }
            }
        } else if let Some(len) = raw_string_len(s, i) {
            len
        } else if s[i] == b'"' {
            let mut j = i + 1;
            while s[j] != b'"' {
                j += if s[j] == b'\\' { 2 } else { 1 };
            }
            j + 1 - i
        } else if s[i] == b'\'' {
            char_literal_len(s, i).unwrap_or(0)
        } else {
            0
        };
        if skip > 0 {
            blank(&mut out, i, i + skip);
            i += skip;
        } else {
            i += 1;
        }
    }
    out
}

/// Every fn with a body in `source`: (name, line of the `fn`, body lines).
fn fn_lengths(source: &str) -> Vec<(String, usize, usize)> {
    let code = code_only(source);
    let line_of = |at: usize| code[..at].iter().filter(|&&c| c == b'\n').count() + 1;
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(at) = code[i..].windows(3).position(|w| w == b"fn ") {
        let start = i + at;
        i = start + 3;
        if start > 0 && is_ident(code[start - 1]) {
            continue;
        }
        let name_len = code[i..].iter().take_while(|&&c| is_ident(c)).count();
        if name_len == 0 {
            continue; // a fn pointer type
        }
        let name = String::from_utf8_lossy(&code[i..i + name_len]).into_owned();
        // The body opens at the first `{` before any `;` (a declaration without a body).
        let Some(open) = code[i..].iter().position(|&c| c == b'{' || c == b';') else {
            continue;
        };
        let open = i + open;
        if code[open] == b';' {
            continue;
        }
        let mut depth = 0usize;
        let close = (open..code.len()).find(|&j| {
            match code[j] {
                b'{' => depth += 1,
                b'}' => depth -= 1,
                _ => {}
            }
            depth == 0
        });
        let close = close.expect("balanced braces");
        let body = line_of(close) - line_of(open);
        found.push((name, line_of(start), body.saturating_sub(1)));
    }
    found
}

#[test]
fn the_counter_measures_what_it_should() {
    let source = "fn short() {\n    let s = \"}\";\n    let c = '{';\n    // }\n}\n\
                  fn long<'a>(x: &'a str) -> &'a str\nwhere\n{\n    x\n    /* { */\n}\n\
                  trait T { fn declared(&self); }\n\
                  fn raw() -> &'static str { r#\"}\"# }\n\
                  fn quote() -> char {\n    '\\''\n}\n";
    let lengths: Vec<(String, usize)> = fn_lengths(source)
        .into_iter()
        .map(|(name, _, body)| (name, body))
        .collect();
    let expected =
        [("short", 3), ("long", 2), ("raw", 0), ("quote", 1)].map(|(n, b)| (n.to_string(), b));
    assert_eq!(lengths, expected);
}

#[test]
fn every_fn_is_at_most_80_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "examples"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 10, "found only {} Rust files", files.len());
    let mut all: Vec<(usize, String)> = Vec::new();
    let mut too_long: Vec<String> = Vec::new();
    let mut pending_seen = vec![false; PENDING.len()];
    for path in &files {
        let source = fs::read_to_string(path).expect("readable source");
        let shown = path
            .strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string();
        for (name, line, body) in fn_lengths(&source) {
            let place = format!("{shown}:{line} fn {name}");
            let pending = PENDING
                .iter()
                .position(|&(file, f, _)| file == shown && f == name);
            match pending {
                Some(p) if body > MAX_BODY_LINES => {
                    pending_seen[p] = true;
                    if body > PENDING[p].2 {
                        too_long.push(format!(
                            "{place}: {body} lines (pending at {})",
                            PENDING[p].2
                        ));
                    }
                }
                Some(_) => too_long.push(format!("{place}: fits now, delete its PENDING entry")),
                None if body > MAX_BODY_LINES => too_long.push(format!("{place}: {body} lines")),
                None => {}
            }
            all.push((body, place));
        }
    }
    for (&(file, name, _), seen) in PENDING.iter().zip(&pending_seen) {
        if !seen && !too_long.iter().any(|t| t.contains(name)) {
            too_long.push(format!("{file} fn {name}: gone, delete its PENDING entry"));
        }
    }
    all.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    for (body, place) in all.iter().take(5) {
        println!("{body:4} lines  {place}");
    }
    assert!(
        too_long.is_empty(),
        "fns over {MAX_BODY_LINES} lines (split them by job):\n{}",
        too_long.join("\n")
    );
}
