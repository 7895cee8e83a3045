//! Read-only tools: read_file, list_dir, glob, grep. Walks respect
//! .gitignore and never follow symlinks (a link could lead outside); file
//! contents are read only through `safe_fs` (regular files with one link,
//! opened without following links or blocking on FIFOs, size-capped).

use std::path::Path;

use super::safe_fs::{self, SafeFsError, MAX_READ_BYTES};
use super::{ToolLimits, ToolOutput, Workspace};

/// grep skips files above this (generated blobs, logs).
const MAX_GREP_BYTES: u64 = 4 * 1024 * 1024;

pub fn read_file(
    root: &Path,
    path: &Path,
    display: &str,
    start: Option<usize>,
    end: Option<usize>,
    limits: &ToolLimits,
) -> ToolOutput {
    let bytes = match safe_fs::read(root, path, MAX_READ_BYTES) {
        Ok(bytes) => bytes,
        Err(SafeFsError::NotRegular(_, "directory")) => {
            return ToolOutput::error(format!("read_file: {display} is a directory; use list_dir"))
        }
        Err(SafeFsError::TooLarge(_, size, cap)) => {
            return ToolOutput::error(format!(
                "read_file: {display} is {size} bytes, over the {cap}-byte limit; use grep to find the part you need"
            ))
        }
        Err(err) if err.is_refusal() => return ToolOutput::refusal(format!("read_file: refused: {err}")),
        Err(err) => return ToolOutput::error(format!("read_file: {err}")),
    };
    if bytes.iter().take(8192).any(|&b| b == 0) {
        return ToolOutput::error(format!("read_file: {display} is a binary file ({} bytes)", bytes.len()));
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let total = lines.len();
    if total == 0 {
        return ToolOutput::ok(format!("{display}: empty file"));
    }
    let first = start.unwrap_or(1).max(1);
    if first > total {
        return ToolOutput::error(format!(
            "read_file: start_line {first} is past the end of {display} ({total} lines)"
        ));
    }
    let requested_last = end.unwrap_or(total).min(total);
    if requested_last < first {
        return ToolOutput::error(format!("read_file: end_line {requested_last} is before start_line {first}"));
    }
    let last = requested_last.min(first + limits.read_max_lines - 1);
    let mut out = String::new();
    let mut shown_last = first - 1;
    for (index, line) in lines[first - 1..last].iter().enumerate() {
        let numbered = format!("{:>6}\t{line}\n", first + index);
        if out.len() + numbered.len() > limits.max_output_chars {
            break;
        }
        out.push_str(&numbered);
        shown_last = first + index;
    }
    let header = format!("{display} (lines {first}-{shown_last} of {total})\n");
    let mut result = header + &out;
    if shown_last < requested_last {
        result.push_str(&format!("[output capped; continue with start_line={} to read more]\n", shown_last + 1));
    }
    ToolOutput::ok(result)
}

pub fn list_dir(workspace: &Workspace, path: &Path, display: &str, limits: &ToolLimits) -> ToolOutput {
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(err) => return ToolOutput::error(format!("list_dir: cannot list {display}: {err}")),
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            match entry.file_type() {
                Ok(t) if t.is_dir() => format!("{name}/"),
                Ok(t) if t.is_symlink() => format!("{name}@"),
                _ => name,
            }
        })
        .collect();
    names.sort();
    let total = names.len();
    names.truncate(limits.list_max_entries);
    let mut out = format!("{} ({} entries)\n", workspace.display(path), total);
    for name in &names {
        out.push_str(name);
        out.push('\n');
    }
    if total > names.len() {
        out.push_str(&format!("[{} more entries not shown]\n", total - names.len()));
    }
    ToolOutput::ok(out)
}

fn walker(base: &Path) -> ignore::Walk {
    ignore::WalkBuilder::new(base).follow_links(false).hidden(true).git_ignore(true).require_git(false).build()
}

fn build_glob(pattern: &str) -> Result<globset::GlobMatcher, String> {
    globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|err| format!("invalid glob {pattern:?}: {err}"))
}

/// A pattern without `/` matches file names anywhere (like `*.rs`).
fn glob_matches(matcher: &globset::GlobMatcher, pattern_has_slash: bool, relative: &str) -> bool {
    if matcher.is_match(relative) {
        return true;
    }
    !pattern_has_slash && relative.rsplit('/').next().is_some_and(|name| matcher.is_match(name))
}

pub fn glob(workspace: &Workspace, base: &Path, pattern: &str, limits: &ToolLimits) -> ToolOutput {
    let matcher = match build_glob(pattern) {
        Ok(m) => m,
        Err(err) => return ToolOutput::error(format!("glob: {err}")),
    };
    let has_slash = pattern.contains('/');
    let mut found: Vec<String> = Vec::new();
    let mut more = 0usize;
    for entry in walker(base).filter_map(Result::ok) {
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let relative_to_base =
            entry.path().strip_prefix(base).unwrap_or(entry.path()).to_string_lossy().replace('\\', "/");
        if glob_matches(&matcher, has_slash, &relative_to_base) {
            if found.len() < limits.list_max_entries {
                found.push(workspace.display(entry.path()));
            } else {
                more += 1;
            }
        }
    }
    found.sort();
    if found.is_empty() {
        return ToolOutput::ok(format!("no files match {pattern}"));
    }
    let mut out = found.join("\n");
    out.push('\n');
    if more > 0 {
        out.push_str(&format!("[{more} more files not shown]\n"));
    }
    ToolOutput::ok(out)
}

pub fn grep(
    workspace: &Workspace,
    base: &Path,
    pattern: &str,
    glob: Option<&str>,
    case_insensitive: bool,
    limits: &ToolLimits,
) -> ToolOutput {
    let regex = match regex::RegexBuilder::new(pattern).case_insensitive(case_insensitive).size_limit(1 << 22).build() {
        Ok(re) => re,
        Err(err) => return ToolOutput::error(format!("grep: invalid regex: {err}")),
    };
    let matcher = match glob.map(build_glob).transpose() {
        Ok(m) => m,
        Err(err) => return ToolOutput::error(format!("grep: {err}")),
    };
    let glob_has_slash = glob.is_some_and(|g| g.contains('/'));
    let mut out = String::new();
    let mut matches = 0usize;
    let mut capped = false;
    let mut reader = safe_fs::Reader::new(workspace.root());
    'files: for entry in walker(base).filter_map(Result::ok) {
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let display = workspace.display(entry.path());
        if let Some(matcher) = &matcher {
            let relative = entry.path().strip_prefix(base).unwrap_or(entry.path()).to_string_lossy().replace('\\', "/");
            if !glob_matches(matcher, glob_has_slash, &relative) {
                continue;
            }
        }
        // Links, FIFOs, devices, hard links and big files are skipped (never opened blocking).
        let Ok(bytes) = reader.read(entry.path(), MAX_GREP_BYTES) else { continue };
        if bytes.iter().take(8192).any(|&b| b == 0) {
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        for (index, line) in text.lines().enumerate() {
            if regex.is_match(line) {
                if matches >= limits.grep_max_matches || out.len() > limits.max_output_chars {
                    capped = true;
                    break 'files;
                }
                let shown: String = line.chars().take(300).collect();
                out.push_str(&format!("{display}:{}: {shown}\n", index + 1));
                matches += 1;
            }
        }
    }
    if matches == 0 {
        return ToolOutput::ok(format!("no matches for {pattern}"));
    }
    if capped {
        out.push_str(&format!("[stopped after {matches} matches; narrow the pattern or path]\n"));
    }
    ToolOutput::ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (tempfile::TempDir, Workspace) {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("src/nested")).expect("mkdir");
        std::fs::write(root.join("src/lib.rs"), "pub fn alpha() {}\npub fn beta() {}\n").expect("write");
        std::fs::write(root.join("src/nested/deep.rs"), "fn alpha_helper() {}\n").expect("write");
        std::fs::write(root.join("notes.md"), "Alpha notes\n").expect("write");
        std::fs::write(root.join(".gitignore"), "ignored/\n").expect("write");
        std::fs::create_dir_all(root.join("ignored")).expect("mkdir");
        std::fs::write(root.join("ignored/x.rs"), "fn alpha() {}\n").expect("write");
        let ws = Workspace::new(root).expect("ws");
        (dir, ws)
    }

    #[test]
    fn read_file_ranges_and_caps() {
        let (_dir, ws) = fixture();
        let path = ws.resolve("src/lib.rs").expect("path");
        let limits = ToolLimits::default();
        let out = read_file(ws.root(), &path, "src/lib.rs", Some(2), Some(2), &limits);
        assert_eq!(out.text, "src/lib.rs (lines 2-2 of 2)\n     2\tpub fn beta() {}\n");
        let tight = ToolLimits { read_max_lines: 1, ..limits };
        let out = read_file(ws.root(), &path, "src/lib.rs", None, None, &tight);
        assert!(out.text.contains("continue with start_line=2"), "{}", out.text);
        assert!(read_file(ws.root(), &path, "src/lib.rs", Some(9), None, &limits).is_error);
    }

    #[test]
    fn grep_respects_gitignore_and_glob() {
        let (_dir, ws) = fixture();
        let limits = ToolLimits::default();
        let out = grep(&ws, ws.root(), "alpha", None, false, &limits);
        expect_test::expect![[r#"
            src/lib.rs:1: pub fn alpha() {}
            src/nested/deep.rs:1: fn alpha_helper() {}
        "#]]
        .assert_eq(&sorted_lines(&out.text));
        let out = grep(&ws, ws.root(), "alpha", Some("*.md"), true, &limits);
        assert_eq!(out.text, "notes.md:1: Alpha notes\n");
        assert!(grep(&ws, ws.root(), "(", None, false, &limits).is_error);
    }

    #[test]
    fn glob_finds_by_name_and_path() {
        let (_dir, ws) = fixture();
        let limits = ToolLimits::default();
        assert_eq!(glob(&ws, ws.root(), "*.rs", &limits).text, "src/lib.rs\nsrc/nested/deep.rs\n");
        assert_eq!(glob(&ws, ws.root(), "src/*.rs", &limits).text, "src/lib.rs\n");
        assert_eq!(glob(&ws, ws.root(), "**/deep.rs", &limits).text, "src/nested/deep.rs\n");
    }

    #[test]
    fn list_dir_marks_directories() {
        let (_dir, ws) = fixture();
        let path = ws.resolve("src").expect("path");
        assert_eq!(list_dir(&ws, &path, "src", &ToolLimits::default()).text, "src (2 entries)\nlib.rs\nnested/\n");
    }

    fn sorted_lines(text: &str) -> String {
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort();
        lines.iter().map(|l| format!("{l}\n")).collect()
    }
}
