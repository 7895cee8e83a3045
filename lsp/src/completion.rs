//! `textDocument/completion` fallback for clients without inline completion:
//! the same pipeline, offered as one completion item that replaces the word
//! being typed (so client-side filtering keeps it visible).
//!
//! Vim's completion inserts one line: a newline in an item's text becomes a
//! NUL byte (ALE), and YouCompleteMe drops items whose edit spans lines. So
//! a multi-line completion typed at the end of a line is split: the item
//! inserts its first line, and `additionalTextEdits` insert the other lines
//! at the start of the next line. That position is on another line than the
//! item's own edit, so it is the same whether a client applies the extra
//! edits with the item's edit (as the protocol says) or after it, in the
//! changed buffer (as ALE, YouCompleteMe, eglot and lsp-mode do).
//!
//! ALE also cuts what it inserts at the first `(` (it takes every item for a
//! function name). For ALE — told apart by `workspace.applyEdit: false`, as
//! no capability says how a client inserts items — the extra edit instead
//! rewrites the cursor's whole line with the completion in place, which is
//! right whatever part of the item ALE inserted on that line.

use std::sync::Arc;

use tower_lsp::jsonrpc;
use tower_lsp::lsp_types::{
    CompletionItem, CompletionItemKind, CompletionParams, CompletionResponse, CompletionTextEdit, Documentation,
    Position, Range, TextEdit,
};

use crate::document::Document;
use crate::inline_completion::suggest;
use crate::session::Session;

pub async fn handle(session: Arc<Session>, params: CompletionParams) -> jsonrpc::Result<Option<CompletionResponse>> {
    let uri = params.text_document_position.text_document.uri;
    let position = params.text_document_position.position;
    let Some(suggestion) = suggest(&session, &uri, position).await? else { return Ok(None) };
    let Some(document) = session.document(&uri) else { return Ok(None) };
    let flags = session.client_flags();
    let style = if flags.apply_edit { ItemStyle::NextLines } else { ItemStyle::WholeLine };
    let item = completion_item(&document, suggestion.cursor_char, &suggestion.text, style, flags.completion_markdown);
    Ok(Some(CompletionResponse::Array(vec![item])))
}

/// How the lines after the first reach the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemStyle {
    /// Inserted at the start of the next line (any client).
    NextLines,
    /// The cursor's line rewritten whole (ALE: it inserts only up to `(`).
    WholeLine,
}

/// The item offering `completion` at `cursor` (a char index in `document`).
fn completion_item(
    document: &Document,
    cursor: usize,
    completion: &str,
    style: ItemStyle,
    markdown: bool,
) -> CompletionItem {
    let cursor = cursor.min(document.text.len_chars());
    // The identifier part before the cursor is what the client filters on.
    let mut word_start = cursor;
    while word_start > 0 {
        let c = document.text.char(word_start - 1);
        if !(c.is_alphanumeric() || c == '_') {
            break;
        }
        word_start -= 1;
    }
    let typed = document.slice_to_string(word_start..cursor);
    let whole = format!("{typed}{completion}");
    let line = document.text.char_to_line(cursor);
    let line_start = document.text.line_to_char(line);
    let next_line_start = line_start + document.text.line(line).len_chars();
    let line_end = line_start + line_content_len(document, line);
    let after_cursor = document.slice_to_string(cursor..line_end);
    // The position of the next line's start (past the end of the document
    // when the cursor's line is the last: clients clamp it to the end).
    let next_line = Position::new(document.position(line_start).line + 1, 0);
    let first_line = whole.split('\n').next().unwrap_or_default().to_string();
    let (inserted, additional) = match style {
        ItemStyle::WholeLine if whole.contains(['\n', '(']) => {
            let before_word = document.slice_to_string(line_start..word_start);
            let line_break = document.slice_to_string(line_end..next_line_start);
            let rewritten = format!("{before_word}{whole}{after_cursor}{line_break}");
            let range = Range::new(Position::new(next_line.line - 1, 0), next_line);
            (first_line, Some(vec![TextEdit { range, new_text: rewritten }]))
        }
        // Only at the end of a line that another one follows: text after the
        // cursor would have to move below the inserted lines.
        ItemStyle::NextLines if whole.contains('\n') && after_cursor.is_empty() && next_line_start > line_end => {
            let rest = &whole[first_line.len() + 1..];
            let range = Range::new(next_line, next_line);
            (first_line, Some(vec![TextEdit { range, new_text: format!("{rest}\n") }]))
        }
        _ => (whole.clone(), None),
    };
    CompletionItem {
        // The label is the whole completion: lsp-mode's plain
        // completion-at-point inserts the label and nothing else (issue 15
        // item 3), and a Vim client inserts the edit, not the label.
        label: whole.clone(),
        kind: Some(CompletionItemKind::TEXT),
        detail: Some("sextant".into()),
        // The whole completion, as the editor's preview of the item.
        documentation: Some(Documentation::MarkupContent(crate::markup::content(
            format!("```\n{whole}\n```"),
            markdown,
        ))),
        filter_text: Some(inserted.clone()),
        sort_text: Some("0".into()),
        text_edit: Some(CompletionTextEdit::Edit(TextEdit {
            range: document.range(word_start..cursor),
            new_text: inserted,
        })),
        additional_text_edits: additional,
        ..CompletionItem::default()
    }
}

/// Chars of line `line` without its line break.
fn line_content_len(document: &Document, line: usize) -> usize {
    let slice = document.text.line(line);
    let mut len = slice.len_chars();
    if len > 0 && slice.char(len - 1) == '\n' {
        len -= 1;
        if len > 0 && slice.char(len - 1) == '\r' {
            len -= 1;
        }
    } else if len > 0 && slice.char(len - 1) == '\r' {
        len -= 1;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` with `edits` applied together, each range read in `text` (the
    /// protocol's reading; positions are chars, all test text is ASCII).
    fn apply_together(text: &str, edits: &[TextEdit]) -> String {
        let document = Document::new(text, 1, "rust".into(), Default::default());
        let mut ranges: Vec<(std::ops::Range<usize>, &str)> = edits
            .iter()
            .map(|edit| {
                (char_index(&document, edit.range.start)..char_index(&document, edit.range.end), edit.new_text.as_str())
            })
            .collect();
        ranges.sort_by_key(|(range, _)| std::cmp::Reverse(range.start));
        let mut out = text.to_string();
        for (range, new_text) in ranges {
            out.replace_range(range, new_text);
        }
        out
    }

    /// Position -> char index, clamping past the end of a line or the
    /// document as the protocol says.
    fn char_index(document: &Document, position: Position) -> usize {
        let line = position.line as usize;
        if line >= document.text.len_lines() {
            return document.text.len_chars();
        }
        let start = document.text.line_to_char(line);
        start + (position.character as usize).min(line_content_len(document, line))
    }

    /// What ALE, YouCompleteMe, eglot and lsp-mode do: insert `word` in
    /// place of the typed prefix, then apply the extra edits in the changed text.
    fn apply_after(text: &str, item: &CompletionItem, word: &str) -> String {
        let Some(CompletionTextEdit::Edit(edit)) = &item.text_edit else { panic!("no text edit") };
        let inserted = apply_together(text, &[TextEdit { range: edit.range, new_text: word.to_string() }]);
        apply_together(&inserted, item.additional_text_edits.as_deref().unwrap_or_default())
    }

    const BEFORE: &str = "fn f(points: &[u8]) {\n    let count = \n    println!();\n}\n";
    const COMPLETION: &str = "points.len();\n    let _ = count;";
    const AFTER: &str =
        "fn f(points: &[u8]) {\n    let count = points.len();\n    let _ = count;\n    println!();\n}\n";

    fn item(text: &str, cursor: usize, completion: &str, style: ItemStyle) -> CompletionItem {
        let document = Document::new(text, 1, "rust".into(), Default::default());
        completion_item(&document, cursor, completion, style, false)
    }

    fn inserted(item: &CompletionItem) -> String {
        match &item.text_edit {
            Some(CompletionTextEdit::Edit(edit)) => edit.new_text.clone(),
            _ => panic!("no text edit"),
        }
    }

    #[test]
    fn a_multi_line_completion_inserts_one_line_and_adds_the_rest_below_read_either_way() {
        let cursor = BEFORE.find("= \n").expect("cursor") + 2;
        let item = item(BEFORE, cursor, COMPLETION, ItemStyle::NextLines);
        assert_eq!(inserted(&item), "points.len();");
        assert_eq!(item.label, COMPLETION);
        let Some(CompletionTextEdit::Edit(edit)) = &item.text_edit else { panic!("no text edit") };
        let mut all = vec![edit.clone()];
        all.extend(item.additional_text_edits.clone().unwrap_or_default());
        assert_eq!(apply_together(BEFORE, &all), AFTER, "edits applied together");
        assert_eq!(apply_after(BEFORE, &item, "points.len();"), AFTER, "extra edits applied after the item");
    }

    #[test]
    fn for_ale_the_whole_line_is_rewritten_whatever_part_of_the_item_it_inserted() {
        let cursor = BEFORE.find("= \n").expect("cursor") + 2;
        let item = item(BEFORE, cursor, COMPLETION, ItemStyle::WholeLine);
        // ALE inserts the item's text up to its first `(`.
        assert_eq!(apply_after(BEFORE, &item, "points.len"), AFTER);
        assert_eq!(apply_after(BEFORE, &item, &inserted(&item)), AFTER);
        // A one-line completion with a call in it too, after a typed prefix.
        let typed = BEFORE.replace("= \n", "= po\n");
        let cursor = typed.find("po\n").expect("cursor") + 2;
        let item = super::tests::item(&typed, cursor, "ints.len();", ItemStyle::WholeLine);
        assert_eq!(item.filter_text.as_deref(), Some("points.len();"));
        let expected = BEFORE.replace("= \n", "= points.len();\n");
        assert_eq!(apply_after(&typed, &item, "points.len"), expected);
    }

    #[test]
    fn one_line_or_mid_line_completions_are_one_edit() {
        let cursor = BEFORE.find("= \n").expect("cursor") + 2;
        let single = item(BEFORE, cursor, "points.len();", ItemStyle::NextLines);
        assert_eq!(inserted(&single), "points.len();");
        assert!(single.additional_text_edits.is_none());
        // Text after the cursor would have to follow the last inserted line.
        let mid = BEFORE.replace("= \n", "= ;\n");
        let cursor = mid.find("= ;").expect("cursor") + 2;
        let item = item(&mid, cursor, "points\n        .len()", ItemStyle::NextLines);
        assert_eq!(inserted(&item), "points\n        .len()");
        assert!(item.additional_text_edits.is_none());
    }

    #[test]
    fn on_the_last_line_the_completion_stays_whole() {
        let text = "let count = ";
        let item = item(text, text.len(), COMPLETION, ItemStyle::NextLines);
        assert_eq!(inserted(&item), COMPLETION);
        assert!(item.additional_text_edits.is_none());
    }
}
