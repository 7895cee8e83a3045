//! Markdown for clients that render it, plain text for those that only
//! accept `plaintext` (Vim's ALE and YouCompleteMe showed raw fences and
//! `*method*`). Pure.

use tower_lsp::lsp_types::{MarkupContent, MarkupKind};

/// `markdown` as the client wants it: as is, or with the markup taken out.
pub fn content(markdown: String, client_renders_markdown: bool) -> MarkupContent {
    if client_renders_markdown {
        MarkupContent { kind: MarkupKind::Markdown, value: markdown }
    } else {
        MarkupContent { kind: MarkupKind::PlainText, value: plain_text(&markdown) }
    }
}

/// Removes the markup this server writes: code fences, emphasis and
/// backticks, links (kept as their text), horizontal rules.
pub fn plain_text(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut in_code = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            out.push_str(line);
        } else if line.trim() == "---" {
            out.push_str("--");
        } else {
            out.push_str(&inline_plain(line));
        }
        out.push('\n');
    }
    out
}

/// `[text](url)` -> `text`, and `*`, `**`, `` ` `` dropped.
fn inline_plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let link = after.find("](").and_then(|close| after[close + 2..].find(')').map(|end| (close, close + 2 + end)));
        match link {
            Some((close, end)) => {
                out.push_str(&rest[..open]);
                out.push_str(&after[..close]);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.replace("**", "").replace(['*', '`'], "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_removed_for_plain_text_clients() {
        let markdown =
            "```rust\npub fn area(&self) -> f64\n```\nThe *area*, in `m²`.\n\n*method* in `Shape` — defined at \
                        [src/a.rs:3](file:///w/src/a.rs#L3)\n\n---\n\n**AI:** It multiplies [x] by y.\n";
        let expected =
            "pub fn area(&self) -> f64\nThe area, in m².\n\nmethod in Shape — defined at src/a.rs:3\n\n--\n\n\
                        AI: It multiplies [x] by y.\n";
        assert_eq!(plain_text(markdown), expected);
        assert_eq!(content(markdown.into(), false).kind, MarkupKind::PlainText);
        assert_eq!(content(markdown.into(), true).value, markdown);
    }
}
