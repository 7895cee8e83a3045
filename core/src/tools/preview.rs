//! What a permission prompt shows: the full unified diff of an edit or write,
//! and model-supplied text with every control character made visible.
//!
//! Both live in core so that every front end shows the user the same thing.
//! Nothing here truncates: a prompt that hides part of a change (or a
//! command) cannot be trusted, so long text is paged by the front end.

use std::fmt::Write;

/// A unified diff of `before` → `after` for `display` (3 lines of context).
/// A new file (`before == None`) shows every line as added.
pub fn unified_diff(display: &str, before: Option<&str>, after: &str) -> String {
    let old_name = if before.is_some() { format!("a/{display}") } else { "/dev/null".to_string() };
    let diff = similar::TextDiff::from_lines(before.unwrap_or(""), after);
    let mut out = String::new();
    let mut unified = diff.unified_diff();
    for hunk in unified.context_radius(3).iter_hunks() {
        if out.is_empty() {
            let _ = writeln!(out, "--- {old_name}\n+++ b/{display}");
        }
        let _ = writeln!(out, "{}", hunk.header());
        for change in hunk.iter_changes() {
            let sign = match change.tag() {
                similar::ChangeTag::Equal => ' ',
                similar::ChangeTag::Delete => '-',
                similar::ChangeTag::Insert => '+',
            };
            // One output line per diff line, whatever ended it (\n, \r\n or
            // a lone \r, which then stays visible once escaped).
            let text = change.value();
            let text = text.strip_suffix('\n').unwrap_or(text);
            let _ = writeln!(out, "{sign}{text}");
            if change.missing_newline() {
                out.push_str("\\ No newline at end of file\n");
            }
        }
    }
    if out.is_empty() {
        out = format!("(no change to {display})\n");
    }
    out
}

/// `text` with control characters escaped so that what the terminal shows
/// is what the text holds: C0 controls (except newline and tab), DEL, C1
/// controls, bidirectional overrides/isolates and invisible format
/// characters become `\r`, `\x1b`, `\u{202e}`, ... A carriage return or an
/// escape sequence can then neither erase nor recolour what came before.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// True when `escape_controls` would change `text`.
pub fn has_controls(text: &str) -> bool {
    text.chars().any(|c| c != '\n' && c != '\t' && ((c as u32) < 0x20 || c == '\u{7f}' || needs_escape(c)))
}

/// C1 controls and the Unicode characters that reorder or hide text.
fn needs_escape(c: char) -> bool {
    matches!(c,
        '\u{80}'..='\u{9f}'            // C1 controls (CSI is \u{9b})
        | '\u{61c}'                    // Arabic letter mark
        | '\u{200b}'..='\u{200f}'      // zero-width space/joiners, LRM, RLM
        | '\u{2028}' | '\u{2029}'      // line/paragraph separators
        | '\u{202a}'..='\u{202e}'      // bidi embeddings and overrides
        | '\u{2060}'..='\u{2064}'      // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}'      // bidi isolates
        | '\u{feff}'                   // zero-width no-break space (BOM)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_tricks_become_visible() {
        let command = "touch PWNED\r\x1b[2Kls -la";
        assert_eq!(escape_controls(command), "touch PWNED\\r\\x1b[2Kls -la");
        assert_eq!(escape_controls("a\u{202e}txt.exe\u{9b}2J\u{7f}"), "a\\u{202e}txt.exe\\u{9b}2J\\x7f");
        assert_eq!(escape_controls("line 1\n\tline 2 — ü"), "line 1\n\tline 2 — ü");
        assert!(has_controls(command) && !has_controls("plain\ttext\n"));
    }

    #[test]
    fn diffs_show_every_changed_line() {
        let before: String = (1..=60).map(|n| format!("line {n}\n")).collect();
        let after = before.replace("line 10\n", "ten\n").replace("line 50\n", "fifty\n");
        let diff = unified_diff("src/x.txt", Some(&before), &after);
        assert!(diff.starts_with("--- a/src/x.txt\n+++ b/src/x.txt\n"), "{diff}");
        for expected in ["-line 10\n", "+ten\n", "-line 50\n", "+fifty\n", " line 7\n", " line 53\n"] {
            assert!(diff.contains(expected), "{expected:?} missing from\n{diff}");
        }
        assert!(!diff.contains("line 30"), "far context is left out");
        let created = unified_diff("new.txt", None, "a\nb\n");
        assert_eq!(created, "--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1,2 @@\n+a\n+b\n");
        assert_eq!(unified_diff("same.txt", Some("x\n"), "x\n"), "(no change to same.txt)\n");
    }
}
