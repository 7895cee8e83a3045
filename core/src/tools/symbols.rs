//! repo_map and find_symbol: views of `crate::repomap` over the workspace.
//! Parsing is CPU-bound, so it runs on the blocking pool.

use std::fmt::Write as _;

use crate::repomap::index::default_cache_dir;
use crate::repomap::{load_or_build, IndexOptions, MapRequest, RepoMap, Role};

use super::{ToolLimits, ToolOutput, Workspace};

/// Builds the repo map of the workspace through the repo map's own index
/// (gitignore-aware walk, symlinks not followed; with `cache`, the on-disk
/// tag cache in the user cache directory).
pub fn build_map(workspace: &Workspace, cache: bool) -> RepoMap {
    let root = workspace.root();
    let options = IndexOptions { cache_dir: if cache { default_cache_dir(root) } else { None } };
    match load_or_build(root, &options, &|_| {}) {
        Ok(index) => index.map,
        Err(err) => {
            tracing::warn!("repo map unavailable: {err}");
            RepoMap::new()
        }
    }
}

/// Renders the map within `max_tokens`, personalised by focus files and mentions.
pub fn render_map(
    workspace: &Workspace,
    focus: &[String],
    mentions: &[String],
    max_tokens: usize,
    cache: bool,
) -> String {
    let map = build_map(workspace, cache);
    let focus_files = focus.iter().filter_map(|f| workspace.resolve(f).ok()).map(|p| workspace.display(&p)).collect();
    let request = MapRequest {
        focus_files,
        mentioned_idents: mentions.to_vec(),
        token_budget: max_tokens,
        include_focus_files: true,
    };
    map.render(&request).text
}

pub async fn repo_map(
    workspace: &Workspace,
    focus: &[String],
    mentions: &[String],
    max_tokens: usize,
    cache: bool,
) -> ToolOutput {
    let workspace = workspace.clone();
    let focus = focus.to_vec();
    let mentions = mentions.to_vec();
    let rendered =
        tokio::task::spawn_blocking(move || render_map(&workspace, &focus, &mentions, max_tokens, cache)).await;
    match rendered {
        Ok(text) if text.trim().is_empty() => ToolOutput::ok("the repo map is empty (no Rust or Python sources found)"),
        Ok(text) => ToolOutput::ok(text),
        Err(err) => ToolOutput::error(format!("repo_map failed: {err}")),
    }
}

pub async fn find_symbol(workspace: &Workspace, name: &str, limits: &ToolLimits) -> ToolOutput {
    let cache = limits.repo_map_cache;
    let owned = workspace.clone();
    let map = match tokio::task::spawn_blocking(move || build_map(&owned, cache)).await {
        Ok(map) => map,
        Err(err) => return ToolOutput::error(format!("find_symbol failed: {err}")),
    };
    let definitions = map.definitions(name);
    let references = map.references(name);
    if definitions.is_empty() && references.is_empty() {
        return ToolOutput::ok(format!(
            "no definitions or references of `{name}` found (only Rust and Python are indexed)"
        ));
    }
    let mut out = String::new();
    let _ = writeln!(out, "definitions of `{name}` ({}):", definitions.len());
    for tag in &definitions {
        let signature = tag.signature().unwrap_or(&tag.name);
        let _ = writeln!(out, "  {}:{}: {} {}", tag.path, tag.line + 1, tag.kind.as_str(), signature);
    }
    let _ = writeln!(out, "references to `{name}` ({}):", references.len());
    for (shown, tag) in references.iter().enumerate() {
        if shown >= limits.grep_max_matches {
            let _ = writeln!(out, "  [{} more references not shown]", references.len() - shown);
            break;
        }
        debug_assert_eq!(tag.role, Role::Reference);
        let _ = writeln!(out, "  {}:{}: {}", tag.path, tag.line + 1, tag.kind.as_str());
    }
    ToolOutput::ok(out)
}
