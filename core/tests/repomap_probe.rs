//! Manual timing probe (ignored): `cargo test -p sextant-core --test repomap_probe -- --ignored --nocapture`
//! with SEXTANT_PROBE_ROOT set to a corpus. Prints where cold indexing time goes.

use std::time::Instant;

#[test]
#[ignore]
fn probe_extract_speed() {
    let Ok(root) = std::env::var("SEXTANT_PROBE_ROOT") else { return };
    let walked = sextant_core::repomap::walk(std::path::Path::new(&root));
    let files: Vec<(String, Vec<u8>)> =
        walked.files.iter().filter_map(|(rel, abs)| std::fs::read(abs).ok().map(|b| (rel.clone(), b))).collect();
    let bytes: usize = files.iter().map(|(_, b)| b.len()).sum();
    let started = Instant::now();
    let mut tags = 0;
    for (path, contents) in &files {
        tags += sextant_core::repomap::extract::extract_file(path, contents).tags.map_or(0, |t| t.len());
    }
    println!("single thread: {} files, {} bytes, {} tags in {:?}", files.len(), bytes, tags, started.elapsed());
}

#[test]
#[ignore]
fn probe_parse_vs_query() {
    use tree_sitter::StreamingIterator;
    let Ok(root) = std::env::var("SEXTANT_PROBE_ROOT") else { return };
    let walked = sextant_core::repomap::walk(std::path::Path::new(&root));
    let files: Vec<Vec<u8>> = walked.files.iter().filter(|(rel, _)| rel.ends_with(".rs")).filter_map(|(_, abs)| std::fs::read(abs).ok()).collect();
    let language: tree_sitter::Language = tree_sitter_rust::LANGUAGE.into();
    let mut parser = tree_sitter::Parser::new();
    parser.set_language(&language).unwrap();
    let query = tree_sitter::Query::new(&language, sextant_core::repomap::Language::Rust.query_source()).unwrap();
    let started = Instant::now();
    let trees: Vec<tree_sitter::Tree> = files.iter().map(|f| parser.parse(f, None).unwrap()).collect();
    println!("parse: {:?}", started.elapsed());
    let started = Instant::now();
    let mut matches_total = 0;
    for (tree, source) in trees.iter().zip(&files) {
        let mut cursor = tree_sitter::QueryCursor::new();
        let mut matches = cursor.matches(&query, tree.root_node(), source.as_slice());
        while let Some(_m) = matches.next() {
            matches_total += 1;
        }
    }
    println!("query: {:?} ({matches_total} matches)", started.elapsed());
    for index in 0..query.pattern_count() {
        let mut single = tree_sitter::Query::new(&language, sextant_core::repomap::Language::Rust.query_source()).unwrap();
        for other in 0..query.pattern_count() {
            if other != index {
                single.disable_pattern(other);
            }
        }
        let started = Instant::now();
        let mut count = 0;
        for (tree, source) in trees.iter().zip(&files) {
            let mut cursor = tree_sitter::QueryCursor::new();
            let mut matches = cursor.matches(&single, tree.root_node(), source.as_slice());
            while let Some(_m) = matches.next() {
                count += 1;
            }
        }
        println!("  pattern {index}: {:?} ({count})", started.elapsed());
    }
    let started = Instant::now();
    drop(trees);
    println!("drop: {:?}", started.elapsed());
}
