//! Token-budgeted rendering of ranked definitions.
//!
//! Format (aider-like), files in rank order, tags in line order:
//!
//! ```text
//! src/store.rs:
//! ⋮
//! │/// Opens the store.
//! │pub fn open(path: &Path) -> Result<Store>
//! ⋮
//!
//! pkg/shapes.py:
//! ⋮
//! │class Circle(Shape):
//! │    """A round shape."""
//! ⋮
//! ```
//!
//! Rust docs show as a `///` line above the signature, Python docstrings as a
//! one-line `"""..."""` below it (first line only).
//!
//! Invariant: `tokens::count(text) <= budget`. The shown set is the longest
//! prefix of the ranking that fits (binary search); adding a tag only adds
//! lines, so the count is monotone in the prefix length.

use std::collections::{BTreeSet, HashMap};

use super::rank::{self, compare_ranked};
use super::{Language, MapRequest, RankedFile, RankedTag, RenderedMap, RepoMap, Tag};
use crate::tokens;

/// Longest doc line shown (characters).
const MAX_DOC_CHARS: usize = 100;

pub(crate) fn render(map: &RepoMap, request: &MapRequest) -> RenderedMap {
    let empty = RenderedMap { text: String::new(), tokens: 0, files: Vec::new() };
    if request.token_budget == 0 || map.files.is_empty() {
        return empty;
    }
    let ranking = rank::rank(map, request);
    let focus: BTreeSet<&str> = request.focus_files.iter().map(String::as_str).collect();
    let mut candidates: Vec<(&Tag, f64)> = ranking
        .definitions
        .into_iter()
        .filter(|(tag, _)| request.include_focus_files || !focus.contains(&*tag.path))
        .collect();
    // Every shown tag costs at least two tokens (`│` and a line break), so no
    // more than budget/2 + 1 candidates can ever fit.
    let limit = (request.token_budget / 2 + 1).min(candidates.len());
    if limit < candidates.len() {
        candidates.select_nth_unstable_by(limit, compare_ranked);
        candidates.truncate(limit);
    }
    // compare_ranked is a total order, so the unstable sort is deterministic.
    candidates.sort_unstable_by(compare_ranked);

    let fits = |count: usize| tokens::count(&render_text(&candidates[..count])) <= request.token_budget;
    // Largest prefix that fits: `low` always fits, `high` is the upper bound.
    let (mut low, mut high) = (0usize, candidates.len());
    while low < high {
        let middle = low + (high - low).div_ceil(2);
        if fits(middle) {
            low = middle;
        } else {
            high = middle - 1;
        }
    }
    let shown = &candidates[..low];
    let text = render_text(shown);
    let token_count = tokens::count(&text);
    if token_count > request.token_budget {
        // Unreachable while tokens::count keeps its monotonicity invariant;
        // an empty map is the safe answer if it ever does not.
        return empty;
    }

    let file_rank: HashMap<&str, f64> = ranking.file_ranks.iter().copied().collect();
    let files = group_by_file(shown)
        .into_iter()
        .map(|(path, tags)| RankedFile {
            path: path.to_string(),
            rank: file_rank.get(path).copied().unwrap_or(0.0),
            tags: tags.into_iter().map(|(tag, score)| RankedTag { tag: tag.clone(), score }).collect(),
        })
        .collect();
    RenderedMap { text, tokens: token_count, files }
}

/// Groups ranked tags by file: files in order of their best tag, tags within a
/// file by line.
fn group_by_file<'t>(ranked: &[(&'t Tag, f64)]) -> Vec<(&'t str, Vec<(&'t Tag, f64)>)> {
    let mut order: Vec<(&'t str, Vec<(&'t Tag, f64)>)> = Vec::new();
    let mut position: HashMap<&str, usize> = HashMap::new();
    for &(tag, score) in ranked {
        let slot = *position.entry(&*tag.path).or_insert_with(|| {
            order.push((&*tag.path, Vec::new()));
            order.len() - 1
        });
        order[slot].1.push((tag, score));
    }
    for (_, tags) in &mut order {
        tags.sort_by(|a, b| a.0.line.cmp(&b.0.line).then(a.0.byte_range.start.cmp(&b.0.byte_range.start)));
    }
    order
}

fn render_text(ranked: &[(&Tag, f64)]) -> String {
    let mut text = String::new();
    for (file_index, (path, tags)) in group_by_file(ranked).into_iter().enumerate() {
        if file_index > 0 {
            text.push('\n');
        }
        text.push_str(path);
        text.push_str(":\n⋮\n");
        let language = Language::from_path(path);
        for (tag, _) in tags {
            render_tag(&mut text, tag, language);
            text.push_str("⋮\n");
        }
    }
    text
}

fn render_tag(text: &mut String, tag: &Tag, language: Option<Language>) {
    let signature = tag.signature().unwrap_or(&tag.name);
    let indent: String = signature.chars().take_while(|c| *c == ' ' || *c == '\t').collect();
    let doc_line = tag
        .doc()
        .and_then(|doc| doc.lines().map(str::trim).find(|line| !line.is_empty()))
        .map(|line| shorten(line, MAX_DOC_CHARS));
    if let (Some(doc), Some(Language::Rust)) = (&doc_line, language) {
        push_line(text, &format!("{indent}/// {doc}"));
    }
    for line in signature.lines() {
        push_line(text, line);
    }
    if let (Some(doc), Some(Language::Python)) = (&doc_line, language) {
        push_line(text, &format!("{indent}    \"\"\"{doc}\"\"\""));
    }
}

fn push_line(text: &mut String, line: &str) {
    text.push('│');
    text.push_str(line.trim_end());
    text.push('\n');
}

fn shorten(line: &str, max_chars: usize) -> String {
    if line.chars().count() <= max_chars {
        return line.to_string();
    }
    let mut short: String = line.chars().take(max_chars).collect();
    short.push('…');
    short
}
