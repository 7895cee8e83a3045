//! Building the inline-completion prompt. Pure: rope + repo map in, prompt out.
//!
//! The prompt is a bounded prefix/suffix window around the cursor (token
//! budgets measured with `sextant_core::tokens::count`) plus context files made
//! of the signatures of repo-map definitions, ranked for the current file and
//! for the identifiers near the cursor.
//!
//! Invariant: the cost is bounded by the budgets, not by the document size:
//! the window walks lines outward from the cursor and never copies the rope.

use std::collections::HashSet;

use ropey::Rope;
use serde::Serialize;
use sextant_core::repomap::{MapRequest, RepoMap, Role, Tag};
use sextant_core::tokens;

/// Token budgets for the three parts of a completion prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PromptBudget {
    pub prefix_tokens: usize,
    pub suffix_tokens: usize,
    pub context_tokens: usize,
}

impl Default for PromptBudget {
    fn default() -> Self {
        Self { prefix_tokens: 4096, suffix_tokens: 1024, context_tokens: 1024 }
    }
}

/// One context file handed to the model, and why it was chosen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContextSnippet {
    pub path: String,
    pub text: String,
    pub tokens: usize,
    /// Human-readable reasons (one per definition shown).
    pub why: Vec<String>,
}

/// A complete inline-completion prompt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompletionPrompt {
    pub path: Option<String>,
    pub prefix: String,
    pub suffix: String,
    pub prefix_tokens: usize,
    pub suffix_tokens: usize,
    /// Identifiers near the cursor, nearest first (they steer the ranking).
    pub nearby_identifiers: Vec<String>,
    pub context: Vec<ContextSnippet>,
}

impl CompletionPrompt {
    pub fn context_tokens(&self) -> usize {
        self.context.iter().map(|snippet| snippet.tokens).sum()
    }

    /// Context files in the provider's `(path, contents)` form, most relevant last.
    pub fn context_files(&self) -> Vec<(String, String)> {
        self.context.iter().rev().map(|snippet| (snippet.path.clone(), snippet.text.clone())).collect()
    }
}

/// A line never contributes more than this many chars to the window, so a
/// minified one-line file cannot make the window scan unbounded.
fn max_line_chars(budget_tokens: usize) -> usize {
    budget_tokens.saturating_mul(8).max(64)
}

/// Text before the cursor: the cursor line's head plus whole earlier lines
/// while they fit the budget. Returns (text, tokens).
pub fn prefix_window(rope: &Rope, cursor: usize, budget_tokens: usize) -> (String, usize) {
    let cursor = cursor.min(rope.len_chars());
    let cursor_line = rope.char_to_line(cursor);
    let cap = max_line_chars(budget_tokens);
    let line_start = rope.line_to_char(cursor_line);
    let head_start = line_start.max(cursor.saturating_sub(cap));
    let head = rope.slice(head_start..cursor).to_string();
    let mut used = tokens::count(&head);
    let mut pieces: Vec<String> = vec![head];
    let mut line = cursor_line;
    while line > 0 && used < budget_tokens {
        line -= 1;
        let slice = rope.line(line);
        let text = if slice.len_chars() > cap {
            // Keep the end of an overlong line (nearest the cursor).
            slice.slice(slice.len_chars() - cap..).to_string()
        } else {
            slice.to_string()
        };
        let cost = tokens::count(&text);
        if used + cost > budget_tokens {
            break;
        }
        used += cost;
        pieces.push(text);
    }
    pieces.reverse();
    (pieces.concat(), used)
}

/// Text after the cursor: the rest of the cursor line plus whole later lines
/// while they fit the budget. Returns (text, tokens).
pub fn suffix_window(rope: &Rope, cursor: usize, budget_tokens: usize) -> (String, usize) {
    let cursor = cursor.min(rope.len_chars());
    let cursor_line = rope.char_to_line(cursor);
    let cap = max_line_chars(budget_tokens);
    let next_line_start =
        if cursor_line + 1 < rope.len_lines() { rope.line_to_char(cursor_line + 1) } else { rope.len_chars() };
    let tail_end = next_line_start.min(cursor.saturating_add(cap));
    let tail = rope.slice(cursor..tail_end).to_string();
    let mut used = tokens::count(&tail);
    let mut text = tail;
    let mut line = cursor_line + 1;
    while line < rope.len_lines() && used < budget_tokens {
        let slice = rope.line(line);
        let piece = if slice.len_chars() > cap { slice.slice(..cap).to_string() } else { slice.to_string() };
        let cost = tokens::count(&piece);
        if used + cost > budget_tokens {
            break;
        }
        used += cost;
        text.push_str(&piece);
        line += 1;
    }
    (text, used)
}

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "Self", "static",
    "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while", "dyn", "def", "class", "import",
    "from", "None", "True", "False", "and", "or", "not", "is", "lambda", "with", "try", "except", "finally", "raise",
    "pass", "yield", "elif", "del", "global", "nonlocal", "assert", "String", "Vec", "Option", "Result", "Some", "Ok",
    "Err", "str", "usize", "u32", "u64", "i32", "i64", "bool", "int",
];

/// Identifiers in `text`, nearest to its end first, deduplicated, keywords and
/// one-letter names left out.
pub fn identifiers_nearest_end(text: &str, limit: usize) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    let words: Vec<&str> = text.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty()).collect();
    for word in words.into_iter().rev() {
        if found.len() >= limit {
            break;
        }
        let starts_like_ident = word.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_');
        if word.len() < 2 || !starts_like_ident || KEYWORDS.contains(&word) {
            continue;
        }
        if seen.insert(word) {
            found.push(word.to_string());
        }
    }
    found
}

/// Definitions ranked for one file (personalised PageRank over the file
/// graph), best first, current file and zero scores left out. Costs a few ms
/// on a large map, so callers cache it per (file, map generation).
pub type RankedDefinitions = Vec<(Tag, f64)>;

/// At most this many ranked definitions are kept per file.
const MAX_RANKED: usize = 256;
/// At most this many definitions per identifier near the cursor.
const MAX_DEFINITIONS_PER_IDENT: usize = 3;

pub fn rank_for_file(map: &RepoMap, current_path: Option<&str>) -> RankedDefinitions {
    let request = MapRequest {
        focus_files: current_path.map(|p| vec![p.to_string()]).unwrap_or_default(),
        mentioned_idents: Vec::new(),
        token_budget: 0,
        include_focus_files: false,
    };
    map.ranked_definitions(&request)
        .into_iter()
        // Zero score: unrelated to this file; only noise.
        .filter(|(tag, score)| tag.role == Role::Definition && Some(&*tag.path) != current_path && *score > 0.0)
        .take(MAX_RANKED)
        .map(|(tag, score)| (tag.clone(), score))
        .collect()
}

/// Picks context definitions: first those of the identifiers near the
/// cursor (nearest first), then the file's ranked definitions, until the
/// budget is spent; rendered as per-file signature listings.
pub fn select_context(
    map: &RepoMap,
    ranked: &[(Tag, f64)],
    current_path: Option<&str>,
    nearby_identifiers: &[String],
    budget_tokens: usize,
) -> Vec<ContextSnippet> {
    if budget_tokens == 0 {
        return Vec::new();
    }
    let mut candidates: Vec<(&Tag, String)> = Vec::new();
    for ident in nearby_identifiers {
        for tag in map
            .definitions(ident)
            .into_iter()
            .filter(|t| Some(&*t.path) != current_path)
            .take(MAX_DEFINITIONS_PER_IDENT)
        {
            candidates.push((tag, format!("`{}` ({}) is used near the cursor", tag.name, tag.kind.as_str())));
        }
    }
    for (tag, score) in ranked {
        candidates.push((tag, format!("`{}` ({}) ranked {score:.4} for this file", tag.name, tag.kind.as_str())));
    }
    let mut shown: HashSet<(&str, u32, &str)> = HashSet::new();
    let mut snippets: Vec<ContextSnippet> = Vec::new();
    let mut used = 0usize;
    for (tag, why) in candidates {
        if !shown.insert((&tag.path, tag.line, &tag.name)) {
            continue;
        }
        let signature = tag.signature().unwrap_or(&tag.name);
        let mut entry = String::new();
        if let Some(doc) = tag.doc().and_then(|d| d.lines().next()).filter(|d| !d.trim().is_empty()) {
            entry.push_str(&comment_line(&tag.path, doc));
            entry.push('\n');
        }
        if let Some(scope) = tag.scope() {
            entry.push_str(&comment_line(&tag.path, &format!("in {scope}")));
            entry.push('\n');
        }
        entry.push_str(signature.trim());
        entry.push('\n');
        let cost = tokens::count(&entry) + 1;
        if used + cost > budget_tokens {
            // Later (lower-ranked) entries may still be small enough.
            continue;
        }
        used += cost;
        match snippets.iter_mut().find(|s| s.path == *tag.path) {
            Some(snippet) => {
                snippet.text.push_str(&entry);
                snippet.tokens += cost;
                snippet.why.push(why);
            }
            None => {
                snippets.push(ContextSnippet { path: tag.path.to_string(), text: entry, tokens: cost, why: vec![why] })
            }
        }
    }
    snippets
}

fn comment_line(path: &str, text: &str) -> String {
    if path.ends_with(".py") {
        format!("# {text}")
    } else {
        format!("// {text}")
    }
}

/// Builds the whole prompt for a cursor position. `ranked` is the file's
/// cached ranking; without it (but with a map) it is computed here.
pub fn build_prompt(
    rope: &Rope,
    cursor: usize,
    path: Option<&str>,
    map: Option<&RepoMap>,
    ranked: Option<&[(Tag, f64)]>,
    budget: &PromptBudget,
) -> CompletionPrompt {
    let (prefix, prefix_tokens) = prefix_window(rope, cursor, budget.prefix_tokens);
    let (suffix, suffix_tokens) = suffix_window(rope, cursor, budget.suffix_tokens);
    // Identifiers from the last lines before and the first lines after the cursor.
    let near_start = prefix.len().saturating_sub(1200);
    let near_start = (near_start..prefix.len()).find(|i| prefix.is_char_boundary(*i)).unwrap_or(prefix.len());
    let near_end = (suffix.len().min(300)..=suffix.len()).find(|i| suffix.is_char_boundary(*i)).unwrap_or(0);
    let mut nearby_identifiers = identifiers_nearest_end(&prefix[near_start..], 24);
    for word in identifiers_nearest_end(&suffix[..near_end], 8) {
        if !nearby_identifiers.contains(&word) {
            nearby_identifiers.push(word);
        }
    }
    let context = match (map, ranked) {
        (Some(map), Some(ranked)) => select_context(map, ranked, path, &nearby_identifiers, budget.context_tokens),
        (Some(map), None) => {
            let ranked = rank_for_file(map, path);
            select_context(map, &ranked, path, &nearby_identifiers, budget.context_tokens)
        }
        (None, _) => Vec::new(),
    };
    CompletionPrompt {
        path: path.map(str::to_string),
        prefix,
        suffix,
        prefix_tokens,
        suffix_tokens,
        nearby_identifiers,
        context,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;
    use sextant_core::repomap::SourceFile;

    fn sample_map() -> RepoMap {
        let files = vec![
            SourceFile::new(
                "src/geometry.rs",
                b"/// A 2D point.\npub struct Point { pub x: f64, pub y: f64 }\n\nimpl Point {\n    /// Euclidean distance to another point.\n    pub fn distance(&self, other: &Point) -> f64 { ((self.x - other.x).powi(2) + (self.y - other.y).powi(2)).sqrt() }\n}\n".to_vec(),
            ),
            SourceFile::new("src/unused.rs", b"pub fn unrelated_helper() -> u8 { 0 }\n".to_vec()),
            SourceFile::new("src/main.rs", b"fn main() { let p = Point { x: 0.0, y: 0.0 }; }\n".to_vec()),
        ];
        RepoMap::build(files).0
    }

    #[test]
    fn windows_respect_budgets_and_keep_whole_lines() {
        let text: String = (0..1000).map(|i| format!("let value_{i} = compute({i});\n")).collect();
        let rope = Rope::from_str(&text);
        let cursor = rope.line_to_char(500) + 4;
        let (prefix, prefix_tokens) = prefix_window(&rope, cursor, 100);
        let (suffix, suffix_tokens) = suffix_window(&rope, cursor, 50);
        assert!(prefix_tokens <= 100 && tokens::count(&prefix) <= 100);
        assert!(suffix_tokens <= 50 && tokens::count(&suffix) <= 50);
        assert!(prefix.ends_with("let "));
        assert!(prefix.starts_with("let value_"));
        assert!(suffix.starts_with("value_500"));
        assert!(suffix.ends_with('\n'));
    }

    #[test]
    fn window_at_document_edges_and_overlong_lines() {
        let rope = Rope::from_str("");
        assert_eq!(prefix_window(&rope, 99, 10).0, "");
        assert_eq!(suffix_window(&rope, 99, 10).0, "");
        let long = "x".repeat(100_000);
        let rope = Rope::from_str(&long);
        let (prefix, _) = prefix_window(&rope, 50_000, 16);
        assert!(prefix.len() <= 8 * 16);
    }

    #[test]
    fn prompt_context_is_ranked_for_nearby_identifiers() {
        let map = sample_map();
        let rope = Rope::from_str("fn main() {\n    let a = Point { x: 1.0, y: 2.0 };\n    let d = a.distance(\n}\n");
        let cursor = rope.line_to_char(2) + "    let d = a.distance(".len();
        let prompt = build_prompt(&rope, cursor, Some("src/main.rs"), Some(&map), None, &PromptBudget::default());
        let rendered: Vec<String> = prompt
            .context
            .iter()
            .map(|s| format!("== {} ({} tokens)\n{}-- why: {}", s.path, s.tokens, s.text, s.why.join("; ")))
            .collect();
        expect![[r#"
            nearby: ["distance", "Point", "main"]
            prefix: "fn main() {\n    let a = Point { x: 1.0, y: 2.0 };\n    let d = a.distance("
            suffix: "\n}\n"
            == src/geometry.rs (62 tokens)
            // Euclidean distance to another point.
            // in Point
            pub fn distance(&self, other: &Point) -> f64
            // A 2D point.
            pub struct Point
            impl Point
            -- why: `distance` (method) is used near the cursor; `Point` (struct) is used near the cursor; `Point` (impl) is used near the cursor"#]].assert_eq(&format!(
            "nearby: {:?}\nprefix: {:?}\nsuffix: {:?}\n{}",
            prompt.nearby_identifiers,
            prompt.prefix,
            prompt.suffix,
            rendered.join("\n")
        ));
    }
}
