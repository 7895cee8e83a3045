//! Cleaning up raw model completions before they reach the editor. Pure.
//!
//! Order matters: cut at the end of the block first (everything after it is
//! noise), then drop repetition, then trim what the suffix already contains,
//! then drop brackets that would unbalance the document.

/// What the post-processor needs to know about the cursor's surroundings.
#[derive(Debug, Clone, Copy)]
pub struct CursorContext<'a> {
    /// Text before the cursor (the bounded prompt window is enough).
    pub prefix: &'a str,
    /// Text after the cursor (the bounded prompt window is enough).
    pub suffix: &'a str,
}

/// Returns the cleaned completion, or `None` when nothing useful remains.
pub fn postprocess(raw: &str, cursor: CursorContext<'_>) -> Option<String> {
    let text = raw.replace("\r\n", "\n");
    let text = stop_at_block_end(&text, cursor.prefix);
    let text = drop_repeated_lines(&text, cursor.prefix);
    let text = trim_suffix_overlap(&text, cursor.suffix);
    let text = balance_brackets(&text, cursor.prefix);
    let text = text.trim_end().to_string();
    if text.trim().is_empty() {
        None
    } else {
        Some(text)
    }
}

fn indentation(line: &str) -> usize {
    line.chars().take_while(|c| *c == ' ' || *c == '\t').map(|c| if c == '\t' { 4 } else { 1 }).sum()
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

fn starts_with_closer(line: &str) -> bool {
    matches!(line.trim_start().chars().next(), Some(')' | ']' | '}'))
}

/// Net number of brackets opened (and not closed) in `text`.
fn open_depth(text: &str) -> i64 {
    let mut depth = 0i64;
    for c in code_chars(text) {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
    }
    depth
}

/// Characters of `text` outside string literals and line comments (a cheap,
/// language-agnostic approximation that is good enough for bracket counting).
fn code_chars(text: &str) -> impl Iterator<Item = char> + '_ {
    let mut in_string: Option<char> = None;
    let mut escaped = false;
    let mut in_line_comment = false;
    let mut previous = '\0';
    text.chars().filter(move |&c| {
        let was_previous = previous;
        previous = c;
        if in_line_comment {
            if c == '\n' {
                in_line_comment = false;
            }
            return false;
        }
        if let Some(quote) = in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == quote || c == '\n' {
                in_string = None;
            }
            return false;
        }
        match c {
            '"' | '`' => {
                in_string = Some(c);
                false
            }
            '/' if was_previous == '/' => {
                in_line_comment = true;
                false
            }
            '#' => {
                in_line_comment = true;
                false
            }
            _ => true,
        }
    })
}

/// Cuts the completion where it starts repeating itself (the same non-blank
/// line twice in a row) and drops leading lines that merely repeat the line
/// before the cursor.
fn drop_repeated_lines(text: &str, prefix: &str) -> String {
    let last_prefix_line = prefix.trim_end_matches([' ', '\t']).rsplit('\n').find(|line| !line.trim().is_empty());
    let mut kept: Vec<&str> = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        let trimmed = line.trim();
        if !trimmed.is_empty() {
            if kept.iter().rev().find(|l| !l.trim().is_empty()).is_some_and(|previous| previous.trim() == trimmed) {
                break;
            }
            // Only whole lines count: the first line continues the cursor line.
            if index > 0
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
fn trim_suffix_overlap(text: &str, suffix: &str) -> String {
    let suffix_line = suffix.split('\n').next().unwrap_or("");
    let mut text = text.to_string();
    // Whole-line overlap: trailing completion lines that match the start of the suffix.
    // Indentation counts: a `}` closing the completion's own block is not the
    // suffix's outer `}`.
    let suffix_lines: Vec<&str> =
        suffix.split('\n').map(str::trim_end).filter(|l| !l.trim().is_empty()).take(8).collect();
    if let Some(first_suffix_line) = suffix_lines.first() {
        let lines: Vec<&str> = text.split('\n').collect();
        if let Some(position) = lines.iter().skip(1).position(|l| l.trim_end() == *first_suffix_line) {
            let cut = position + 1;
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
    ];

    #[test]
    fn postprocess_cases() {
        let rendered: Vec<String> = CASES
            .iter()
            .map(|(name, prefix, suffix, raw)| {
                let out = postprocess(raw, CursorContext { prefix, suffix });
                format!("{name}: {out:?}")
            })
            .collect();
        expect![[r#"
            plain: Some("a + b")
            trims suffix overlap on the line: Some("bar, baz")
            stops at end of block: Some("let y = 2;")
            keeps own closing bracket: Some("if x {\n        y();\n    }\n    z();")
            drops repeated lines: Some("log(1);\n    log(2);")
            drops echo of previous line: Some("\n    let b = 2;")
            drops lines the suffix already has: Some("start();")
            unbalanced closer is cut: Some("3] + (4)")
            brackets inside strings are ignored: Some("\"(\" + s")
            python dedent ends block: Some("return 1")
            whitespace only is dropped: None
            crlf normalised: Some("1\nb = 2")"#]]
        .assert_eq(&rendered.join("\n"));
    }
}
