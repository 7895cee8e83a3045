//! The final clean-up of a completion before it reaches the editor.
//!
//! Order matters: drop leading blank lines when the cursor is at the start
//! of a line (the "blank line, then code" answers), cut at the end of the
//! block (everything after it is noise), drop repetition, trim what the
//! suffix already contains, drop brackets that would unbalance the document,
//! then settle the trailing newline as an editor inserts the text: when the
//! completion ends with a newline and the rest of the cursor's line holds
//! code, the newline stays (without it the completion would be glued to that
//! code), followed by the indentation that was before the cursor so that
//! code keeps it; when the rest of the line is blank, the line's own newline
//! is enough and none is added.

use super::{code_chars, indentation, open_depth, starts_with_closer};

/// Returns the cleaned completion, or `None` when nothing useful remains.
/// `prefix` and `suffix` are the text before and after the cursor (bounded
/// windows are enough).
pub fn clean(raw: &str, prefix: &str, suffix: &str) -> Option<String> {
    let text = raw.replace("\r\n", "\n");
    let cursor_line = prefix.rsplit('\n').next().unwrap_or("");
    let rest_of_line = suffix.split('\n').next().unwrap_or("");
    let text = if cursor_line.trim().is_empty() { drop_leading_blank_lines(&text, cursor_line) } else { text };
    let text = stop_at_block_end(&text, prefix);
    // At the start of a line the completion's first line is a whole line too.
    let first_whole = usize::from(!cursor_line.trim().is_empty());
    let text = drop_repeated_lines(&text, prefix, first_whole);
    let text = trim_suffix_overlap(&text, suffix, first_whole);
    let text = balance_brackets(&text, prefix);
    if text.trim().is_empty() {
        return None;
    }
    let text = text.trim_end_matches([' ', '\t', '\r']);
    let keep_newline = text.ends_with('\n') && !rest_of_line.trim().is_empty();
    let mut text = text.trim_end().to_string();
    if keep_newline {
        text.push('\n');
        // The code after the cursor moves to the next line: it keeps the
        // indentation it had before the cursor.
        if cursor_line.trim().is_empty() {
            text.push_str(cursor_line);
        }
    }
    Some(text)
}

/// Drops whole blank lines before the first line with code, which then
/// lands on the cursor's line: the indentation before the cursor
/// (`cursor_line`, whitespace only) comes off its own.
fn drop_leading_blank_lines(text: &str, cursor_line: &str) -> String {
    let mut rest = text;
    while let Some(newline) = rest.find('\n') {
        if !rest[..newline].trim().is_empty() {
            break;
        }
        rest = &rest[newline + 1..];
    }
    if rest.len() == text.len() {
        return text.to_string();
    }
    super::stopper::rebase(rest, cursor_line)
}

/// Stops before the first non-blank line (after the first) that is indented
/// less than the line the cursor is on: the model has left the block and is
/// writing the next item.
fn stop_at_block_end(text: &str, prefix: &str) -> String {
    // On a blank line this is the cursor column: the block's indentation.
    let cursor_line = prefix.rsplit('\n').next().unwrap_or("");
    let base_indent = indentation(cursor_line);
    let mut kept: Vec<&str> = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        if index > 0 && !line.trim().is_empty() && indentation(line) < base_indent {
            // A closing bracket at the block's own level still belongs to the
            // completion when the completion opened it.
            let closes_own_opening = starts_with_closer(line) && open_depth(&kept.join("\n")) > 0;
            if !closes_own_opening {
                break;
            }
        }
        kept.push(line);
    }
    kept.join("\n")
}

/// Cuts the completion where it starts repeating itself (the same non-blank
/// line twice in a row) and drops leading lines that merely repeat the line
/// before the cursor.
fn drop_repeated_lines(text: &str, prefix: &str, first_whole: usize) -> String {
    let last_prefix_line = prefix.trim_end_matches([' ', '\t']).rsplit('\n').find(|line| !line.trim().is_empty());
    let mut kept: Vec<&str> = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        let trimmed = line.trim();
        if !trimmed.is_empty() {
            if kept.iter().rev().find(|l| !l.trim().is_empty()).is_some_and(|previous| previous.trim() == trimmed) {
                break;
            }
            // Only whole lines count: the first line continues the cursor line.
            if index >= first_whole
                && kept.iter().all(|l| l.trim().is_empty())
                && last_prefix_line.is_some_and(|p| p.trim() == trimmed)
            {
                continue;
            }
        }
        kept.push(line);
    }
    kept.join("\n")
}

/// Removes the tail of the completion that the suffix already provides,
/// either as a character overlap on the cursor line (`foo()` + suffix `)`)
/// or as whole lines equal to the suffix's next non-blank lines.
fn trim_suffix_overlap(text: &str, suffix: &str, first_whole: usize) -> String {
    let suffix_line = suffix.split('\n').next().unwrap_or("");
    let mut text = text.to_string();
    // Whole-line overlap: trailing completion lines that match the start of the suffix.
    // Indentation counts: a `}` closing the completion's own block is not the
    // suffix's outer `}`.
    let suffix_lines: Vec<&str> =
        suffix.split('\n').map(str::trim_end).filter(|l| !l.trim().is_empty()).take(8).collect();
    if let Some(first_suffix_line) = suffix_lines.first() {
        let lines: Vec<&str> = text.split('\n').collect();
        if let Some(position) = lines.iter().skip(first_whole).position(|l| l.trim_end() == *first_suffix_line) {
            let cut = position + first_whole;
            let tail: Vec<&str> = lines[cut..].iter().map(|l| l.trim_end()).filter(|l| !l.trim().is_empty()).collect();
            let tail_matches = tail.len() <= suffix_lines.len() && tail.iter().zip(&suffix_lines).all(|(a, b)| a == b);
            if tail_matches {
                text = lines[..cut].join("\n");
            }
        }
    }
    // Character overlap at the end of the completion with the rest of the cursor line.
    let trimmed_suffix_line = suffix_line.trim_end();
    if !trimmed_suffix_line.is_empty() && !text.contains('\n') {
        let mut best = 0;
        for (boundary, _) in trimmed_suffix_line.char_indices().skip(1).chain([(trimmed_suffix_line.len(), ' ')]) {
            let head = &trimmed_suffix_line[..boundary];
            if text.ends_with(head) {
                best = boundary;
            }
        }
        text.truncate(text.len() - best);
    }
    text
}

/// Drops everything from the first closing bracket that does not match the
/// innermost open bracket (counting the prefix's open brackets too): such a
/// completion would unbalance the document.
fn balance_brackets(text: &str, prefix: &str) -> String {
    let mut stack: Vec<char> = Vec::new();
    for c in code_chars(prefix) {
        match c {
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' if stack.last() == Some(&opener_of(c)) => {
                stack.pop();
            }
            _ => {}
        }
    }
    let mut in_string: Option<char> = None;
    let mut escaped = false;
    for (byte, c) in text.char_indices() {
        if let Some(quote) = in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == quote || c == '\n' {
                in_string = None;
            }
            continue;
        }
        match c {
            '"' | '`' => in_string = Some(c),
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                if stack.last() == Some(&opener_of(c)) {
                    stack.pop();
                } else {
                    return text[..byte].to_string();
                }
            }
            _ => {}
        }
    }
    text.to_string()
}

fn opener_of(closer: char) -> char {
    match closer {
        ')' => '(',
        ']' => '[',
        _ => '{',
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    /// (name, prefix, suffix, raw completion). `|` in the rendered table
    /// separates the cases; `None` means the completion was dropped.
    const CASES: &[(&str, &str, &str, &str)] = &[
        ("plain", "fn add(a: i32, b: i32) -> i32 {\n    ", "\n}\n", "a + b"),
        ("trims suffix overlap on the line", "let v = foo(", ");\n", "bar, baz);"),
        ("stops at end of block", "fn f() {\n    let x = 1;\n    ", "\n}\n", "let y = 2;\n}\n\nfn g() {}\n"),
        ("keeps own closing bracket", "fn f() {\n    ", "\n}\n", "if x {\n        y();\n    }\n    z();"),
        ("drops repeated lines", "fn f() {\n    ", "\n}\n", "log(1);\n    log(2);\n    log(2);\n    log(2);"),
        ("drops echo of previous line", "    let a = 1;\n", "", "\n    let a = 1;\n    let b = 2;"),
        ("drops lines the suffix already has", "fn f() {\n    ", "\n    done();\n}\n", "start();\n    done();\n}"),
        ("unbalanced closer is cut", "x = [1, 2", "\n", "3] + (4))"),
        ("brackets inside strings are ignored", "print(", ")\n", "\"(\" + s)"),
        ("python dedent ends block", "def f():\n    ", "\n", "return 1\ndef g():\n    pass"),
        ("whitespace only is dropped", "x = ", "\n", "  \n\n "),
        ("crlf normalised", "a = ", "\n", "1\r\nb = 2"),
        ("newline kept before code on the line", "def f(x):\n", "    return x\n", "    x += 1\n"),
        ("no newline added on a blank line", "def f(x):\n    ", "\n    return x\n", "x += 1\n"),
        ("newline kept after a block", "fn f() {\n", "    g();\n}\n", "    if a {\n        b();\n    }\n"),
        ("no newline without one from the model", "def f(x):\n", "    return x\n", "    x += 1"),
        ("trailing indentation after the newline", "def f(x):\n", "    return x\n", "    x += 1\n    "),
        ("blank line then code dropped", "def f(x):\n    ", "\n", "\n\n    return x"),
        ("blank line then code at column 0", "def f(x):\n    ", "\n", "\nreturn x\n    y"),
        ("blank lines kept mid-line", "x = [", "\n", "\n    1,\n]"),
        ("humaneval hole", "def add(a, b):\n    \"\"\"Add.\"\"\"\n", "    return a + b\n", "    a = int(a)\n"),
        ("humaneval js", "function f(a) {\n", "  return a;\n}\n", "  a = a * 2;\n"),
        ("humaneval rust", "fn f(a: i32) -> i32 {\n", "    a\n}\n", "    let a = a + 1;\n"),
        ("only the suffix line", "def f(x):\n", "    return x\n", "    return x\n"),
        ("indented cursor before code", "fn f() {\n    ", "let b = 2;\n}\n", "let a = 1;\n    "),
        ("crlf newline kept", "def f(x):\n", "    return x\n", "    x += 1\r\n"),
    ];

    #[test]
    fn cleanup_cases() {
        let rendered: Vec<String> = CASES
            .iter()
            .map(|(name, prefix, suffix, raw)| {
                let out = clean(raw, prefix, suffix);
                format!("{name}: {out:?}")
            })
            .collect();
        expect![[r#"
            plain: Some("a + b")
            trims suffix overlap on the line: Some("bar, baz")
            stops at end of block: Some("let y = 2;")
            keeps own closing bracket: Some("if x {\n        y();\n    }\n    z();")
            drops repeated lines: Some("log(1);\n    log(2);")
            drops echo of previous line: Some("    let b = 2;")
            drops lines the suffix already has: Some("start();")
            unbalanced closer is cut: Some("3] + (4)")
            brackets inside strings are ignored: Some("\"(\" + s")
            python dedent ends block: Some("return 1")
            whitespace only is dropped: None
            crlf normalised: Some("1\nb = 2")
            newline kept before code on the line: Some("    x += 1\n")
            no newline added on a blank line: Some("x += 1")
            newline kept after a block: Some("    if a {\n        b();\n    }\n")
            no newline without one from the model: Some("    x += 1")
            trailing indentation after the newline: Some("    x += 1\n")
            blank line then code dropped: Some("return x")
            blank line then code at column 0: Some("return x\n    y")
            blank lines kept mid-line: Some("\n    1,\n]")
            humaneval hole: Some("    a = int(a)\n")
            humaneval js: Some("  a = a * 2;\n")
            humaneval rust: Some("    let a = a + 1;\n")
            only the suffix line: None
            indented cursor before code: Some("let a = 1;\n    ")
            crlf newline kept: Some("    x += 1\n")"#]]
        .assert_eq(&rendered.join("\n"));
    }
}
