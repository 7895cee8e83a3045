//! Repo map tests over the fixture repos in tests/fixtures/repomap/.
//!
//! Snapshots live in core/tests/repomap_snapshots/; refresh them with
//! `UPDATE_EXPECT=1 cargo test -p sextant-core --test repomap`.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use expect_test::expect_file;
use sextant_core::repomap::{
    self, IndexOptions, MapRequest, Note, NoteReason, RepoMap, Role, SourceFile, Tag, TagKind,
};
use sextant_core::tokens;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/repomap").join(name)
}

/// The fixture's source files as the CLI would read them.
fn source_files(root: &Path) -> Vec<SourceFile> {
    let walked = repomap::walk(root);
    assert!(walked.notes.is_empty(), "walk notes: {:?}", walked.notes);
    walked
        .files
        .into_iter()
        .map(|(relative, absolute)| SourceFile::new(relative, fs::read(absolute).expect("fixture file is readable")))
        .collect()
}

fn build(name: &str) -> (RepoMap, Vec<Note>) {
    RepoMap::build(source_files(&fixture(name)))
}

/// One line per tag, stable and readable, for snapshots.
fn dump_tags(map: &RepoMap, notes: &[Note]) -> String {
    let mut out = String::new();
    for note in notes {
        writeln!(out, "NOTE {}: {}", note.path, note.reason).unwrap();
    }
    for path in map.files() {
        writeln!(out, "== {path}").unwrap();
        for tag in map.file_tags(path) {
            let role = match tag.role {
                Role::Definition => "def",
                Role::Reference => "ref",
            };
            write!(out, "{}:{} {role} {} {}", tag.line + 1, tag.byte_range.start, tag.kind.as_str(), tag.name).unwrap();
            if let Some(scope) = tag.scope() {
                write!(out, " scope={scope}").unwrap();
            }
            if let Some(signature) = tag.signature() {
                write!(out, " sig={signature:?}").unwrap();
            }
            if let Some(doc) = tag.doc() {
                write!(out, " doc={doc:?}").unwrap();
            }
            out.push('\n');
        }
    }
    out
}

#[test]
fn rust_tags_snapshot() {
    let (map, notes) = build("rust_crate");
    expect_file!["repomap_snapshots/rust_tags.txt"].assert_eq(&dump_tags(&map, &notes));
}

#[test]
fn python_tags_snapshot() {
    let (map, notes) = build("python_pkg");
    expect_file!["repomap_snapshots/python_tags.txt"].assert_eq(&dump_tags(&map, &notes));
}

#[test]
fn bad_files_are_noted_and_never_fatal() {
    let (rust, rust_notes) = build("rust_crate");
    let (python, python_notes) = build("python_pkg");
    let reasons: Vec<(&str, &NoteReason)> =
        rust_notes.iter().chain(&python_notes).map(|note| (note.path.as_str(), &note.reason)).collect();
    assert!(reasons.contains(&("src/blob.rs", &NoteReason::Binary)), "{reasons:?}");
    assert!(reasons.contains(&("legacy_latin1.py", &NoteReason::NotUtf8)), "{reasons:?}");
    assert!(reasons
        .iter()
        .any(|(path, reason)| *path == "src/broken.rs" && matches!(reason, NoteReason::SyntaxErrors { .. })));
    assert!(reasons
        .iter()
        .any(|(path, reason)| *path == "broken.py" && matches!(reason, NoteReason::SyntaxErrors { .. })));
    // Files with syntax errors are still indexed (tree-sitter recovers).
    assert_eq!(rust.definitions("still_found").len(), 1);
    assert_eq!(python.definitions("fine").len(), 1);
    // Binary and non-UTF-8 files are not.
    assert!(rust.file_tags("src/blob.rs").is_empty());
    assert!(python.file_tags("legacy_latin1.py").is_empty());
}

#[test]
fn garbage_input_never_panics() {
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("empty.rs", Vec::new()),
        ("empty.py", Vec::new()),
        ("braces.rs", b"}}}{{{ fn ( impl impl for for where".to_vec()),
        ("indent.py", b"\tdef\n  class:\n\t\t\treturn ((((".to_vec()),
        ("unicode.rs", "fn café() -> 日本 { \"✓\" }".as_bytes().to_vec()),
        ("notes.txt", b"not source".to_vec()),
        ("half.py", vec![b'd', b'e', b'f', 0xE2, 0x82]),
    ];
    let files = inputs.into_iter().map(|(path, bytes)| SourceFile::new(path, bytes)).collect();
    let (map, notes) = RepoMap::build(files);
    let rendered = map.render(&MapRequest { token_budget: 200, ..MapRequest::default() });
    assert!(rendered.tokens <= 200);
    assert!(notes.iter().any(|note| note.path == "notes.txt" && note.reason == NoteReason::UnsupportedLanguage));
    assert!(notes.iter().any(|note| note.path == "half.py" && note.reason == NoteReason::NotUtf8));
}

#[test]
fn scoped_calls_reference_both_segments() {
    let (map, _) = build("rust_crate");
    let in_file = |path: &str, name: &str, kind: TagKind| {
        map.references(name).iter().any(|tag| &*tag.path == path && tag.kind == kind)
    };
    // `Store::new()` in lib.rs references the type and the function.
    assert!(in_file("src/lib.rs", "Store", TagKind::TypeRef));
    assert!(in_file("src/lib.rs", "new", TagKind::Call));
    // `crate::store::units::dozen()` references the module path and the fn.
    assert!(in_file("src/report.rs", "units", TagKind::ModuleRef));
    assert!(in_file("src/report.rs", "dozen", TagKind::Call));
    // Method calls and imports.
    assert!(in_file("src/report.rs", "total_quantity", TagKind::Call));
    assert!(in_file("src/report.rs", "Countable", TagKind::Import));
}

/// Old Mac line ends (`\r` alone): every definition is found, each on its
/// own line as an LSP client counts lines, in Rust and Python alike.
#[test]
fn carriage_return_only_files_are_indexed_line_by_line() {
    let rust = "pub fn alpha() {}\r/// Second.\rpub fn beta() {}\r\r\npub fn gamma() {}\r";
    let python = "def alpha():\r    pass\rdef beta():\r    \"\"\"Second.\"\"\"\r";
    let (map, _) = RepoMap::build(vec![
        SourceFile::new("src/lib.rs", rust.as_bytes().to_vec()),
        SourceFile::new("tool.py", python.as_bytes().to_vec()),
    ]);
    let definitions = |path: &str| -> Vec<(String, u32, Option<String>)> {
        map.file_tags(path)
            .iter()
            .filter(|tag| tag.role == Role::Definition)
            .map(|tag| (tag.name.to_string(), tag.line, tag.doc().map(str::to_string)))
            .collect()
    };
    let second = Some("Second.".to_string());
    assert_eq!(
        definitions("src/lib.rs"),
        [("alpha".into(), 0, None), ("beta".into(), 2, second.clone()), ("gamma".into(), 4, None)]
    );
    assert_eq!(definitions("tool.py"), [("alpha".into(), 0, None), ("beta".into(), 2, second)]);
}

/// Attribute arguments are token trees, which the macro-argument patterns
/// read as calls (`doc(cfg(…))`); inside attributes (also as tokens of a
/// `macro_rules!` template) no name is a reference. Real calls in the same
/// template and in macro arguments still are.
#[test]
fn names_inside_attributes_are_not_references() {
    let source = "\
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg_attr(docsrs, doc(cfg(feature = \"rt\")))]
pub fn spawn() { log!(format(1)); }

macro_rules! cfg_rt {
    ($($item:item)*) => {
        $(
            #[cfg_attr(docsrs, doc(cfg(feature = \"rt\")))]
            $item
        )*
        register(stringify!(rt));
    };
}
";
    let (map, _) = RepoMap::build(vec![SourceFile::new("src/lib.rs", source.as_bytes().to_vec())]);
    let references: Vec<String> = map
        .file_tags("src/lib.rs")
        .iter()
        .filter(|tag| tag.role == Role::Reference)
        .map(|tag| format!("{} {}", tag.kind.as_str(), tag.name))
        .collect();
    expect_test::expect![[r#"
        [
            "macro_call log",
            "call format",
            "call register",
            "call stringify",
        ]
    "#]]
    .assert_debug_eq(&references);
}

/// Doc comments attach to the item right below them, through attributes,
/// and never leak to the next item; a plain comment in between cuts them.
#[test]
fn rust_docs_belong_to_the_item_directly_below() {
    let source = "\
/// Alpha docs.
#[derive(Debug)]
#[allow(dead_code)]
pub struct Alpha;

pub struct Bare;

/// Lost docs.
// a plain comment
pub fn cut() {}

/** Block docs. */
pub fn block() {}

impl Alpha {
    /// First method.
    pub fn first(&self) {}
    pub fn second(&self) {}
    /// Third method.
    #[inline]
    pub fn third(&self) {}
}

mod inner {
    //! Inner module docs.
    /// Nested fn.
    pub fn nested() {}
}
";
    let (map, notes) = RepoMap::build(vec![SourceFile::new("src/lib.rs", source.as_bytes().to_vec())]);
    assert!(notes.is_empty(), "{notes:?}");
    let docs: Vec<String> = map
        .file_tags("src/lib.rs")
        .iter()
        .filter(|tag| tag.role == Role::Definition)
        .map(|tag| format!("{} {:?}", tag.name, tag.doc()))
        .collect();
    expect_test::expect![[r#"
        [
            "Alpha Some(\"Alpha docs.\")",
            "Bare None",
            "cut None",
            "block Some(\"Block docs.\")",
            "Alpha None",
            "first Some(\"First method.\")",
            "second None",
            "third Some(\"Third method.\")",
            "inner Some(\"Inner module docs.\")",
            "nested Some(\"Nested fn.\")",
        ]
    "#]]
    .assert_debug_eq(&docs);
}

/// Items written inside macro invocations (tokio's `cfg_rt! { … }`,
/// `thread_local!`, `lazy_static!`) are definitions with a signature and
/// doc; `macro_rules!` templates, macros in function bodies, locals in the
/// functions of a macro, `'static` lifetimes and `*const` types are not
/// items.
#[test]
fn items_inside_macro_invocations_are_definitions() {
    let source = "\
cfg_rt! {
    /// Spawns a task.
    #[track_caller]
    pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
    {
        inner(future)
    }

    #[derive(Debug)]
    pub(crate) struct Handle { inner: u32, raw: *const Raw }

    pub const fn capacity() -> usize { const LOCAL: usize = 4; LOCAL }

    type Output = Result<(), Error>;
}

thread_local! {
    static CURRENT: Cell<u32> = Cell::new(0);
}

lazy_static! {
    /// The registry.
    static ref REGISTRY: Registry = Registry::new();
}

macro_rules! template {
    ($name:ident) => { fn helper() {} };
}

fn body() {
    inline_macro! { fn local() {} }
}
";
    let (map, notes) = RepoMap::build(vec![SourceFile::new("src/lib.rs", source.as_bytes().to_vec())]);
    assert!(notes.is_empty(), "{notes:?}");
    let definitions: Vec<String> = map
        .file_tags("src/lib.rs")
        .iter()
        .filter(|tag| tag.role == Role::Definition)
        .map(|tag| {
            let extent = &source[tag.byte_range.clone()];
            format!(
                "{} {} line {} sig={:?} doc={:?} extent={:?}..{:?}",
                tag.kind.as_str(),
                tag.name,
                tag.line,
                tag.signature().unwrap_or(""),
                tag.doc(),
                extent.chars().take(12).collect::<String>(),
                extent.chars().rev().take(3).collect::<String>(),
            )
        })
        .collect();
    expect_test::expect![[r#"
        [
            "function spawn line 3 sig=\"    pub fn spawn<F>(future: F) -> JoinHandle<F::Output>\\n    where\\n        F: Future + Send + 'static,\" doc=Some(\"Spawns a task.\") extent=\"pub fn spawn\"..\"}  \"",
            "struct Handle line 11 sig=\"    pub(crate) struct Handle\" doc=None extent=\"pub(crate) s\"..\"} w\"",
            "function capacity line 13 sig=\"    pub const fn capacity() -> usize\" doc=None extent=\"pub const fn\"..\"} L\"",
            "type_alias Output line 15 sig=\"    type Output = Result<(), Error>\" doc=None extent=\"type Output \"..\";>r\"",
            "static CURRENT line 19 sig=\"    static CURRENT: Cell<u32> = Cell::new(0)\" doc=None extent=\"static CURRE\"..\";)0\"",
            "static REGISTRY line 24 sig=\"    static ref REGISTRY: Registry = Registry::new()\" doc=Some(\"The registry.\") extent=\"static ref R\"..\";)(\"",
            "macro template line 27 sig=\"macro_rules! template\" doc=None extent=\"macro_rules!\"..\"}\\n;\"",
            "function body line 31 sig=\"fn body()\" doc=None extent=\"fn body() {\\n\"..\"}\\n}\"",
        ]
    "#]].assert_debug_eq(&definitions);
}

fn render_request(focus: &[&str], mentioned: &[&str], budget: usize) -> MapRequest {
    MapRequest {
        focus_files: focus.iter().map(|path| path.to_string()).collect(),
        mentioned_idents: mentioned.iter().map(|name| name.to_string()).collect(),
        token_budget: budget,
        include_focus_files: false,
    }
}

#[test]
fn rendered_map_snapshots() {
    let (rust, _) = build("rust_crate");
    let (python, _) = build("python_pkg");
    let mut out = String::new();
    for (label, map, request) in [
        ("rust, budget 1024", &rust, render_request(&[], &[], 1024)),
        ("rust, budget 60", &rust, render_request(&[], &[], 60)),
        ("rust, focus src/report.rs", &rust, render_request(&["src/report.rs"], &[], 120)),
        ("python, budget 1024", &python, render_request(&[], &[], 1024)),
        ("python, focus main.py, mention clamp", &python, render_request(&["main.py"], &["clamp"], 80)),
    ] {
        let rendered = map.render(&request);
        writeln!(out, "##### {label} -> {} tokens", rendered.tokens).unwrap();
        out.push_str(&rendered.text);
        out.push('\n');
    }
    expect_file!["repomap_snapshots/rendered.txt"].assert_eq(&out);
}

#[test]
fn rendered_json_snapshot() {
    let (python, _) = build("python_pkg");
    let rendered = python.render(&render_request(&["main.py"], &["clamp"], 120));
    let json = serde_json::to_string_pretty(&rendered).unwrap();
    expect_file!["repomap_snapshots/rendered_python.json"].assert_eq(&format!("{json}\n"));
}

#[test]
fn focus_files_are_left_out_unless_asked() {
    let (map, _) = build("rust_crate");
    let mut request = render_request(&["src/store.rs"], &[], 10_000);
    let rendered = map.render(&request);
    assert!(rendered.files.iter().all(|file| file.path != "src/store.rs"));
    request.include_focus_files = true;
    let rendered = map.render(&request);
    assert!(rendered.files.iter().any(|file| file.path == "src/store.rs"));
}

#[test]
fn mentioned_identifiers_rank_first() {
    let (map, _) = build("python_pkg");
    let ranked = map.ranked_definitions(&render_request(&[], &["clamp"], 0));
    assert_eq!(&*ranked[0].0.name, "clamp", "{:?}", ranked.iter().map(|(tag, _)| &tag.name).collect::<Vec<_>>());
}

#[test]
fn output_is_deterministic_regardless_of_file_order() {
    let root = fixture("python_pkg");
    let mut files = source_files(&root);
    files.extend(source_files(&fixture("rust_crate")));
    let request = render_request(&["main.py"], &["Store", "area"], 300);
    let (first, first_notes) = RepoMap::build(files.clone());
    let expected = first.render(&request);
    let expected_json = serde_json::to_string(&expected).unwrap();
    for rotation in [1, 3, 7] {
        let mut reordered = files.clone();
        reordered.reverse();
        let shift = rotation % reordered.len();
        reordered.rotate_left(shift);
        let (map, notes) = RepoMap::build(reordered);
        assert_eq!(notes, first_notes);
        let rendered = map.render(&request);
        assert_eq!(rendered.text, expected.text);
        assert_eq!(serde_json::to_string(&rendered).unwrap(), expected_json);
    }
}

#[test]
fn budget_is_never_exceeded_and_more_budget_shows_more() {
    let mut files = source_files(&fixture("python_pkg"));
    files.extend(source_files(&fixture("rust_crate")));
    let (map, _) = RepoMap::build(files);
    let total_definitions: usize =
        map.files().map(|path| map.file_tags(path).iter().filter(|tag| tag.role == Role::Definition).count()).sum();
    let mut previous_shown = 0;
    for budget in (0..=900).step_by(9) {
        let rendered = map.render(&render_request(&[], &[], budget));
        assert!(rendered.tokens <= budget, "budget {budget}: {} tokens", rendered.tokens);
        assert_eq!(tokens::count(&rendered.text), rendered.tokens);
        let shown: usize = rendered.files.iter().map(|file| file.tags.len()).sum();
        assert!(shown >= previous_shown, "budget {budget} shows {shown} < {previous_shown}");
        previous_shown = shown;
    }
    assert!(previous_shown > 0);
    let everything = map.render(&render_request(&[], &[], 100_000));
    let shown: usize = everything.files.iter().map(|file| file.tags.len()).sum();
    assert_eq!(shown, total_definitions);
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn all_tags(map: &RepoMap) -> Vec<(String, Vec<Tag>)> {
    map.files().map(|path| (path.to_string(), map.file_tags(path).to_vec())).collect()
}

fn no_progress(_: repomap::Progress) {}

#[test]
fn cache_warm_load_equals_cold_and_drops_deleted_files() {
    let workspace = tempfile::tempdir().unwrap();
    let root = workspace.path().join("repo");
    copy_dir(&fixture("rust_crate"), &root);
    let cache = IndexOptions { cache_dir: Some(workspace.path().join("cache")) };
    let uncached = repomap::load_or_build(&root, &IndexOptions::default(), &no_progress).unwrap();

    let cold = repomap::load_or_build(&root, &cache, &no_progress).unwrap();
    assert!(cold.stats.cache_written);
    assert_eq!(cold.stats.parsed, cold.stats.files);
    assert_eq!(all_tags(&cold.map), all_tags(&uncached.map));
    assert_eq!(cold.notes, uncached.notes);

    let warm = repomap::load_or_build(&root, &cache, &no_progress).unwrap();
    assert_eq!(warm.stats.parsed, 0);
    assert_eq!(warm.stats.cached, warm.stats.files);
    assert_eq!(all_tags(&warm.map), all_tags(&cold.map));
    assert_eq!(warm.notes, cold.notes);
    let request = render_request(&[], &[], 500);
    assert_eq!(warm.map.render(&request), cold.map.render(&request));

    fs::remove_file(root.join("src/report.rs")).unwrap();
    let after_delete = repomap::load_or_build(&root, &cache, &no_progress).unwrap();
    assert_eq!(after_delete.stats.dropped, 1);
    assert!(after_delete.map.files().all(|path| path != "src/report.rs"));
    assert!(after_delete.map.definitions("summary").is_empty());
    let again = repomap::load_or_build(&root, &cache, &no_progress).unwrap();
    assert_eq!(again.stats.dropped, 0);
    assert!(!again.stats.cache_written);
}

#[test]
fn cache_picks_up_edits() {
    let workspace = tempfile::tempdir().unwrap();
    let root = workspace.path().join("repo");
    copy_dir(&fixture("python_pkg"), &root);
    let cache = IndexOptions { cache_dir: Some(workspace.path().join("cache")) };
    repomap::load_or_build(&root, &cache, &no_progress).unwrap();
    // Same size, new content, possibly within the same mtime tick: the racy
    // window makes the cache re-hash it.
    let util = root.join("shapes/util.py");
    let text = fs::read_to_string(&util).unwrap().replace("def clamp(", "def clump(");
    fs::write(&util, text).unwrap();
    let edited = repomap::load_or_build(&root, &cache, &no_progress).unwrap();
    assert!(edited.map.definitions("clamp").is_empty());
    assert_eq!(edited.map.definitions("clump").len(), 1);
}

#[test]
fn incremental_update_equals_full_rebuild() {
    let mut files = source_files(&fixture("rust_crate"));
    let (mut map, _) = RepoMap::build(files.clone());
    let edited = SourceFile::new(
        "src/report.rs",
        b"use crate::store::Store;\n\n/// Renamed.\npub fn overview(store: &Store) -> usize { store.total_quantity() as usize }\n".to_vec(),
    );
    let notes = map.update_file(edited.clone());
    assert!(notes.is_empty());
    for file in &mut files {
        if file.path == edited.path {
            *file = edited.clone();
        }
    }
    let (rebuilt, _) = RepoMap::build(files.clone());
    assert_eq!(all_tags(&map), all_tags(&rebuilt));
    let request = render_request(&["src/lib.rs"], &["overview"], 400);
    assert_eq!(map.render(&request), rebuilt.render(&request));
    assert_eq!(map.references("total_quantity").len(), rebuilt.references("total_quantity").len());

    map.remove_file("src/report.rs");
    files.retain(|file| file.path != "src/report.rs");
    let (rebuilt, _) = RepoMap::build(files);
    assert_eq!(all_tags(&map), all_tags(&rebuilt));
    assert_eq!(map.render(&request), rebuilt.render(&request));
    assert!(map.definitions("overview").is_empty());
}

#[test]
fn walk_honours_gitignore_hidden_and_size_limit() {
    let workspace = tempfile::tempdir().unwrap();
    let root = workspace.path();
    fs::create_dir_all(root.join("ignored")).unwrap();
    fs::create_dir_all(root.join(".hidden")).unwrap();
    fs::write(root.join(".gitignore"), "ignored/\n").unwrap();
    fs::write(root.join("ignored/generated.py"), "def should_not_appear(): pass\n").unwrap();
    fs::write(root.join(".hidden/secret.py"), "def hidden_secret(): pass\n").unwrap();
    fs::write(root.join("kept.py"), "def kept(): pass\n").unwrap();
    fs::write(root.join("README.md"), "# not source\n").unwrap();
    let huge = "X = 1\n".repeat(repomap::MAX_FILE_BYTES / 6 + 10);
    fs::write(root.join("huge.py"), huge).unwrap();

    let walked = repomap::walk(root);
    let paths: Vec<&str> = walked.files.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(paths, ["huge.py", "kept.py"]);
    let index = repomap::load_or_build(root, &IndexOptions::default(), &no_progress).unwrap();
    assert_eq!(index.map.files().collect::<Vec<_>>(), ["kept.py"]);
    assert!(
        matches!(index.notes.as_slice(), [Note { path, reason: NoteReason::TooLarge { .. } }] if path == "huge.py")
    );
}

#[test]
fn missing_root_is_an_error_not_a_panic() {
    let workspace = tempfile::tempdir().unwrap();
    let missing = workspace.path().join("nope");
    assert!(repomap::load_or_build(&missing, &IndexOptions::default(), &no_progress).is_err());
}

#[test]
fn corrupt_cache_is_ignored_with_a_warning() {
    let workspace = tempfile::tempdir().unwrap();
    let root = workspace.path().join("repo");
    copy_dir(&fixture("python_pkg"), &root);
    let cache_dir = workspace.path().join("cache");
    let cache = IndexOptions { cache_dir: Some(cache_dir.clone()) };
    let cold = repomap::load_or_build(&root, &cache, &no_progress).unwrap();
    for entry in fs::read_dir(&cache_dir).unwrap() {
        fs::write(entry.unwrap().path(), b"\xff\xff garbage").unwrap();
    }
    let recovered = repomap::load_or_build(&root, &cache, &no_progress).unwrap();
    assert!(recovered.cache_warning.is_some());
    assert_eq!(all_tags(&recovered.map), all_tags(&cold.map));
    // The rewritten cache is good again.
    let warm = repomap::load_or_build(&root, &cache, &no_progress).unwrap();
    assert!(warm.cache_warning.is_none());
    assert_eq!(warm.stats.parsed, 0);
}

#[test]
fn repo_map_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RepoMap>();
    assert_send_sync::<repomap::RepoIndex>();
}

#[test]
fn truncated_or_foreign_cache_is_a_miss_not_a_panic() {
    let workspace = tempfile::tempdir().unwrap();
    let root = workspace.path().join("repo");
    copy_dir(&fixture("rust_crate"), &root);
    let cache_dir = workspace.path().join("cache");
    let cache = IndexOptions { cache_dir: Some(cache_dir.clone()) };
    let cold = repomap::load_or_build(&root, &cache, &no_progress).unwrap();
    let cache_files: Vec<PathBuf> = fs::read_dir(&cache_dir).unwrap().map(|entry| entry.unwrap().path()).collect();
    assert_eq!(cache_files.len(), 1, "{cache_files:?}");
    let good = fs::read(&cache_files[0]).unwrap();
    assert!(good.len() > 64, "cache of {} bytes", good.len());
    let truncated_in_tags = good[..good.len() - 7].to_vec();
    let truncated_in_header = good[..40].to_vec();
    let mut with_trailing_bytes = good.clone();
    with_trailing_bytes.extend_from_slice(b"tail");
    for (label, bytes) in [
        ("truncated in the tags", truncated_in_tags),
        ("truncated in the header", truncated_in_header),
        ("trailing bytes", with_trailing_bytes),
        ("empty", Vec::new()),
    ] {
        fs::write(&cache_files[0], &bytes).unwrap();
        let recovered = repomap::load_or_build(&root, &cache, &no_progress).unwrap();
        assert!(recovered.cache_warning.is_some(), "{label}: no warning");
        assert_eq!(recovered.stats.parsed, recovered.stats.files, "{label}");
        assert_eq!(all_tags(&recovered.map), all_tags(&cold.map), "{label}");
        assert_eq!(recovered.notes, cold.notes, "{label}");
        assert!(recovered.stats.cache_written, "{label}");
    }
    // The rewritten cache is whole again and equals the first one's content.
    let warm = repomap::load_or_build(&root, &cache, &no_progress).unwrap();
    assert!(warm.cache_warning.is_none());
    assert_eq!(warm.stats.parsed, 0);
    assert_eq!(all_tags(&warm.map), all_tags(&cold.map));
}
