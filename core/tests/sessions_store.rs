//! The SQLite session store: schema versioning, sharing one file between
//! handles (as the CLI and LSP processes do), search and export.

use std::sync::Arc;

use sextant_core::providers::{Message, Role, ToolCall, Usage};
use sextant_core::sessions::{SessionError, SessionStore, SCHEMA_VERSION};

#[test]
fn reopening_keeps_data_and_reports_health() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/dir/sessions.db");
    let id = {
        let store = SessionStore::open(&path).expect("open");
        let id = store.create_session("/ws", "first task", "openai", "m1").expect("create");
        store.append_message(&id, &Message::user("hello there")).expect("append");
        id
    };
    let store = SessionStore::open(&path).expect("reopen");
    let health = store.health().expect("health");
    assert_eq!(health.schema_version, SCHEMA_VERSION);
    assert_eq!(health.journal_mode, "wal");
    assert_eq!(health.sessions, 1);
    assert_eq!(health.integrity, "ok");
    assert_eq!(store.messages(&id).expect("messages")[0].content, "hello there");
}

#[test]
fn a_database_from_a_newer_version_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sessions.db");
    {
        let conn = rusqlite::Connection::open(&path).expect("open raw");
        conn.pragma_update(None, "user_version", 99).expect("set version");
    }
    match SessionStore::open(&path) {
        Err(SessionError::TooNew { found: 99, .. }) => {}
        other => panic!("expected TooNew, got {other:?}"),
    }
    let conn = rusqlite::Connection::open(&path).expect("open raw");
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("version");
    assert_eq!(version, 99);
}

#[test]
fn two_handles_write_the_same_file_concurrently() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = Arc::new(dir.path().join("sessions.db"));
    let writers: Vec<_> = (0..2)
        .map(|writer| {
            let path = path.clone();
            std::thread::spawn(move || {
                let store = SessionStore::open(&path).expect("open");
                let id = store.create_session("/ws", &format!("writer {writer}"), "p", "m").expect("create");
                for n in 0..40 {
                    store
                        .append_message(&id, &Message::user(format!("message {n} from writer{writer}")))
                        .expect("append");
                    store.record_usage(&id, "p", "m", Usage { input_tokens: 1, output_tokens: 2 }).expect("usage");
                }
                id
            })
        })
        .collect();
    let ids: Vec<String> = writers.into_iter().map(|w| w.join().expect("writer thread")).collect();
    let store = SessionStore::open(&path).expect("open");
    for id in &ids {
        let messages = store.messages(id).expect("messages");
        assert_eq!(messages.len(), 40);
        let seqs: Vec<i64> = messages.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=40).collect::<Vec<i64>>());
    }
    assert_eq!(store.search("writer1", 100).expect("search").len(), 40);
    let usage = store.usage_by_day().expect("usage");
    assert_eq!((usage[0].requests, usage[0].sessions, usage[0].output_tokens), (80, 2, 160));
}

#[test]
fn tool_calls_round_trip_and_export() {
    let store = SessionStore::open_in_memory().expect("open");
    let id = store.create_session("/ws", "fix the bug", "openai", "m").expect("create");
    let call =
        ToolCall { id: "c1".into(), name: "read_file".into(), arguments: serde_json::json!({"path": "src/lib.rs"}) };
    store.append_message(&id, &Message::user("fix the bug")).expect("append");
    let mut assistant = Message::assistant("");
    assistant.tool_calls.push(call.clone());
    store.append_message(&id, &assistant).expect("append");
    store.append_message(&id, &Message::tool_result("c1", "fn main() {}")).expect("append");
    store.record_tool_call(&id, &call, "fn main() {}", false).expect("tool call");
    store.append_message(&id, &Message::assistant("Fixed it.")).expect("append");

    let export = store.export(&id).expect("export");
    let roles: Vec<Role> = export.messages.iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::User, Role::Assistant, Role::Tool, Role::Assistant]);
    assert_eq!(export.messages[1].tool_calls, vec![call]);
    assert_eq!(export.messages[2].tool_call_id.as_deref(), Some("c1"));
    assert_eq!(export.tool_calls[0].arguments["path"], "src/lib.rs");
    let markdown = export.to_markdown();
    assert!(markdown.starts_with("# fix the bug\n"), "{markdown}");
    assert!(markdown.contains("Tool call `read_file`:\n\n```json\n{\"path\":\"src/lib.rs\"}\n```"), "{markdown}");
    assert!(markdown.contains("### Tool result\n\n```\nfn main() {}\n```"), "{markdown}");
    assert!(markdown.ends_with("## Assistant\n\nFixed it.\n\n"), "{markdown}");

    assert!(matches!(store.find_session("zzzz"), Err(SessionError::NotFound(_))));
    assert!(matches!(store.find_session("%"), Err(SessionError::NotFound(_))), "LIKE wildcards are not ids");
    assert!(matches!(store.find_session(""), Err(SessionError::NotFound(_))));
}

#[test]
fn a_version_1_database_is_migrated_keeping_its_sessions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sessions.db");
    let id = {
        let store = SessionStore::open(&path).expect("open");
        store.create_session("/ws", "old session", "p", "m").expect("create")
    };
    {
        // Turn it back into what version 1 wrote: no edits table.
        let conn = rusqlite::Connection::open(&path).expect("open raw");
        conn.execute_batch("DROP TABLE edits; PRAGMA user_version = 1;").expect("downgrade");
    }
    let store = SessionStore::open(&path).expect("migrate");
    assert_eq!(store.health().expect("health").schema_version, SCHEMA_VERSION);
    assert_eq!(store.find_session(&id).expect("kept").title, "old session");
    assert!(store.edits(&id).expect("edits table exists").is_empty());
}
