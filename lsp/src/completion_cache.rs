//! LRU cache of post-processed inline completions, with type-ahead reuse.
//!
//! Exact hits are keyed by a hash of the whole prompt. Type-ahead: when the
//! user typed characters that are the start of a cached completion (same
//! document, same text after the cursor), the remainder is returned without
//! calling the model.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::num::NonZeroUsize;

use lru::LruCache;

use crate::prompt::CompletionPrompt;

/// How much of the prefix end identifies "the same spot" for type-ahead.
const ANCHOR_CHARS: usize = 256;
/// How much of the suffix start must be unchanged for type-ahead.
const SUFFIX_CHARS: usize = 256;

#[derive(Debug, Clone)]
struct Entry {
    document: String,
    prefix_anchor: String,
    suffix_head: String,
    completion: String,
}

pub struct CompletionCache {
    entries: LruCache<u64, Entry>,
}

fn tail(text: &str, chars: usize) -> &str {
    let start = text.char_indices().rev().nth(chars.saturating_sub(1)).map(|(i, _)| i).unwrap_or(0);
    &text[start..]
}

fn head(text: &str, chars: usize) -> &str {
    let end = text.char_indices().nth(chars).map(|(i, _)| i).unwrap_or(text.len());
    &text[..end]
}

/// The cache key of a prompt (everything the model sees).
pub fn prompt_key(document: &str, prompt: &CompletionPrompt) -> u64 {
    let mut hasher = DefaultHasher::new();
    document.hash(&mut hasher);
    prompt.path.hash(&mut hasher);
    prompt.prefix.hash(&mut hasher);
    prompt.suffix.hash(&mut hasher);
    for snippet in &prompt.context {
        snippet.path.hash(&mut hasher);
        snippet.text.hash(&mut hasher);
    }
    hasher.finish()
}

impl CompletionCache {
    pub fn new(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self { entries: LruCache::new(capacity) }
    }

    pub fn insert(&mut self, document: &str, prompt: &CompletionPrompt, completion: String) {
        let entry = Entry {
            document: document.to_string(),
            prefix_anchor: tail(&prompt.prefix, ANCHOR_CHARS).to_string(),
            suffix_head: head(&prompt.suffix, SUFFIX_CHARS).to_string(),
            completion,
        };
        self.entries.put(prompt_key(document, prompt), entry);
    }

    /// An exact hit for this prompt.
    pub fn get(&mut self, document: &str, prompt: &CompletionPrompt) -> Option<String> {
        self.entries.get(&prompt_key(document, prompt)).map(|entry| entry.completion.clone())
    }

    /// The rest of a cached completion whose start the user has since typed.
    pub fn type_ahead(&mut self, document: &str, prompt: &CompletionPrompt) -> Option<String> {
        let suffix_head = head(&prompt.suffix, SUFFIX_CHARS);
        let mut found: Option<(u64, String)> = None;
        for (key, entry) in self.entries.iter() {
            if entry.document != document || entry.suffix_head != suffix_head || entry.prefix_anchor.is_empty() {
                continue;
            }
            // The typed text is whatever follows the old anchor in the new prefix.
            let Some(anchor_at) = prompt.prefix.rfind(&entry.prefix_anchor) else { continue };
            let typed = &prompt.prefix[anchor_at + entry.prefix_anchor.len()..];
            if !typed.is_empty() && typed.len() < entry.completion.len() && entry.completion.starts_with(typed) {
                found = Some((*key, entry.completion[typed.len()..].to_string()));
                break;
            }
        }
        let (key, rest) = found?;
        // Touch the entry so active type-ahead keeps it alive.
        self.entries.get(&key);
        Some(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(prefix: &str, suffix: &str) -> CompletionPrompt {
        CompletionPrompt {
            path: Some("src/main.rs".into()),
            prefix: prefix.into(),
            suffix: suffix.into(),
            prefix_tokens: 0,
            suffix_tokens: 0,
            nearby_identifiers: Vec::new(),
            context: Vec::new(),
        }
    }

    #[test]
    fn exact_hit_and_type_ahead() {
        let mut cache = CompletionCache::new(8);
        cache.insert("file:///a.rs", &prompt("fn main() {\n    let x = ", "\n}\n"), "compute(1, 2);".into());
        assert_eq!(
            cache.get("file:///a.rs", &prompt("fn main() {\n    let x = ", "\n}\n")).as_deref(),
            Some("compute(1, 2);")
        );
        assert_eq!(
            cache.type_ahead("file:///a.rs", &prompt("fn main() {\n    let x = comp", "\n}\n")).as_deref(),
            Some("ute(1, 2);")
        );
        // Typed something else, another document, or the suffix changed: no reuse.
        assert_eq!(cache.type_ahead("file:///a.rs", &prompt("fn main() {\n    let x = other", "\n}\n")), None);
        assert_eq!(cache.type_ahead("file:///b.rs", &prompt("fn main() {\n    let x = comp", "\n}\n")), None);
        assert_eq!(cache.type_ahead("file:///a.rs", &prompt("fn main() {\n    let x = comp", "\n}\nmore")), None);
        // Typed the whole completion: nothing left to offer.
        assert_eq!(cache.type_ahead("file:///a.rs", &prompt("fn main() {\n    let x = compute(1, 2);", "\n}\n")), None);
    }

    #[test]
    fn least_recently_used_entries_are_evicted() {
        let mut cache = CompletionCache::new(1);
        cache.insert("d", &prompt("a", ""), "1".into());
        cache.insert("d", &prompt("b", ""), "2".into());
        assert_eq!(cache.get("d", &prompt("a", "")), None);
        assert_eq!(cache.get("d", &prompt("b", "")).as_deref(), Some("2"));
    }
}
