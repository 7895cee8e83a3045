//! Sessions, messages, tool calls and token usage in SQLite, shared by the
//! CLI and the LSP (several processes at once: WAL mode + busy timeout).
//!
//! Invariant: the schema version lives in `PRAGMA user_version`; a database
//! from a newer Sextant is refused rather than modified. `messages_fts` is an
//! external-content FTS5 index kept in sync with `messages` by triggers.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, TransactionBehavior};
use serde::Serialize;

use crate::providers::{Message, Role, ToolCall, Usage};
use crate::tools::JournalEntry;

/// Current schema version (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 2;

/// Environment variable overriding the data directory.
pub const DATA_DIR_ENV: &str = "SEXTANT_DATA_DIR";

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("session database {path}: {source}")]
    Sqlite { path: String, source: rusqlite::Error },
    #[error("cannot create the data directory {0}: {1}")]
    DataDir(PathBuf, std::io::Error),
    #[error("no data directory on this system; set {DATA_DIR_ENV}")]
    NoDataDir,
    #[error("session database {path} has schema version {found}, newer than this sextant supports ({SCHEMA_VERSION}); upgrade sextant")]
    TooNew { path: String, found: i64 },
    #[error("no session matches id {0:?}")]
    NotFound(String),
    #[error("session id {0:?} is ambiguous; give more characters")]
    Ambiguous(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

type Result<T> = std::result::Result<T, SessionError>;

/// (seq, role, content, tool_calls JSON, tool_call_id, created_at) as stored.
type RawMessageRow = (i64, String, String, Option<String>, Option<String>, i64);
/// (path, display, before, after_hash, created_dirs JSON) as stored.
type RawEditRow = (String, String, Option<Vec<u8>>, Vec<u8>, String);

/// One stored session with its totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionSummary {
    pub id: String,
    pub title: String,
    pub workspace: String,
    pub provider: String,
    pub model: String,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
    pub message_count: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
}

/// A stored message (tool calls as JSON in the provider's shape).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredMessage {
    pub seq: i64,
    pub role: Role,
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    pub tool_call_id: Option<String>,
    pub created_at: i64,
}

/// A stored tool execution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredToolCall {
    pub call_id: String,
    pub name: String,
    pub arguments: serde_json::Value,
    pub output: String,
    pub is_error: bool,
    pub created_at: i64,
}

/// A full-text search hit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchHit {
    pub session_id: String,
    pub title: String,
    pub role: String,
    /// The matching text with hits in `[...]`.
    pub snippet: String,
    pub created_at: i64,
}

/// Token totals for one day (UTC) and model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageRow {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub provider: String,
    pub model: String,
    pub requests: i64,
    pub sessions: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
}

/// A session with everything in it, for export.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionExport {
    pub session: SessionSummary,
    pub messages: Vec<StoredMessage>,
    pub tool_calls: Vec<StoredToolCall>,
}

/// What `doctor` reports about the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreHealth {
    pub path: String,
    pub schema_version: i64,
    pub journal_mode: String,
    pub sessions: i64,
    pub integrity: String,
}

/// Handle to the session database. Cheap to open; safe to share between
/// threads (one connection behind a mutex) and between processes (WAL).
#[derive(Debug)]
pub struct SessionStore {
    conn: Mutex<Connection>,
    path: String,
}

impl SessionStore {
    /// `$SEXTANT_DATA_DIR/sessions.db`, else `<data dir>/sextant/sessions.db`.
    pub fn default_path() -> Result<PathBuf> {
        let dir = match std::env::var_os(DATA_DIR_ENV) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => dirs::data_dir().ok_or(SessionError::NoDataDir)?.join("sextant"),
        };
        Ok(dir.join("sessions.db"))
    }

    /// Opens (creating if needed) the database at the default path.
    pub fn open_default() -> Result<Self> {
        Self::open(&Self::default_path()?)
    }

    /// Opens (creating if needed) the database at `path`, migrating its schema.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|err| SessionError::DataDir(parent.to_path_buf(), err))?;
        }
        let display = path.display().to_string();
        let conn = Connection::open(path).map_err(|source| SessionError::Sqlite { path: display.clone(), source })?;
        Self::init(conn, display)
    }

    /// A private in-memory database (tests, or when persistence is off).
    pub fn open_in_memory() -> Result<Self> {
        let conn =
            Connection::open_in_memory().map_err(|source| SessionError::Sqlite { path: ":memory:".into(), source })?;
        Self::init(conn, ":memory:".into())
    }

    fn init(mut conn: Connection, path: String) -> Result<Self> {
        let sql_err = |source| SessionError::Sqlite { path: path.clone(), source };
        conn.busy_timeout(Duration::from_secs(10)).map_err(sql_err)?;
        // journal_mode returns a row; WAL lets a reader and a writer in two
        // processes work at the same time.
        // Switching a fresh file to WAL can fail with SQLITE_BUSY without
        // consulting the busy handler when another process opens it at the
        // same moment, so retry that one statement briefly.
        let mut attempts = 0;
        let _mode: String = loop {
            match conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)) {
                Err(rusqlite::Error::SqliteFailure(error, _))
                    if error.code == rusqlite::ErrorCode::DatabaseBusy && attempts < 200 =>
                {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
                result => break result.map_err(sql_err)?,
            }
        };
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;").map_err(sql_err)?;
        migrate(&mut conn, &path)?;
        Ok(SessionStore { conn: Mutex::new(conn), path })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        // A poisoned lock only means another thread panicked mid-call; the
        // connection itself is still consistent (SQLite transactions).
        let mut conn = self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut conn).map_err(|source| SessionError::Sqlite { path: self.path.clone(), source })
    }

    /// Starts a session and returns its id.
    pub fn create_session(&self, workspace: &str, title: &str, provider: &str, model: &str) -> Result<String> {
        let id = new_session_id();
        let now = now_secs();
        let title: String = title.chars().take(200).collect();
        self.with_conn(|conn| {
            conn.execute(
                "INSERT INTO sessions (id, created_at, updated_at, workspace, title, provider, model) VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6)",
                params![id, now, workspace, title, provider, model],
            )
        })?;
        Ok(id)
    }

    /// Appends a message to a session.
    pub fn append_message(&self, session_id: &str, message: &Message) -> Result<()> {
        let tool_calls =
            if message.tool_calls.is_empty() { None } else { serde_json::to_string(&message.tool_calls).ok() };
        let role = role_name(message.role);
        let now = now_secs();
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let seq: i64 = tx.query_row(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE session_id = ?1",
                [session_id],
                |row| row.get(0),
            )?;
            tx.execute(
                "INSERT INTO messages (session_id, seq, role, content, tool_calls, tool_call_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![session_id, seq, role, message.content, tool_calls, message.tool_call_id, now],
            )?;
            tx.execute("UPDATE sessions SET updated_at = ?2 WHERE id = ?1", params![session_id, now])?;
            tx.commit()
        })
    }

    /// Records one executed tool call and its result.
    pub fn record_tool_call(&self, session_id: &str, call: &ToolCall, output: &str, is_error: bool) -> Result<()> {
        let arguments = call.arguments.to_string();
        self.with_conn(|conn| {
            conn.execute(
                "INSERT INTO tool_calls (session_id, call_id, name, arguments, output, is_error, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![session_id, call.id, call.name, arguments, output, is_error, now_secs()],
            )
            .map(|_| ())
        })
    }

    /// Records the token usage of one model request.
    pub fn record_usage(&self, session_id: &str, provider: &str, model: &str, usage: Usage) -> Result<()> {
        let (input, output) = (clamp_i64(usage.input_tokens), clamp_i64(usage.output_tokens));
        self.with_conn(|conn| {
            conn.execute(
                "INSERT INTO usage (session_id, provider, model, input_tokens, output_tokens, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![session_id, provider, model, input, output, now_secs()],
            )
            .map(|_| ())
        })
    }

    /// Appends entries of the agent's edit journal.
    pub fn append_edits(&self, session_id: &str, entries: &[JournalEntry]) -> Result<()> {
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            insert_edits(&tx, session_id, entries)?;
            tx.commit()
        })
    }

    /// Replaces a session's stored journal (after an undo).
    pub fn replace_edits(&self, session_id: &str, entries: &[JournalEntry]) -> Result<()> {
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute("DELETE FROM edits WHERE session_id = ?1", [session_id])?;
            insert_edits(&tx, session_id, entries)?;
            tx.commit()
        })
    }

    /// A session's stored journal, oldest first.
    pub fn edits(&self, session_id: &str) -> Result<Vec<JournalEntry>> {
        let rows: Vec<RawEditRow> = self.with_conn(|conn| {
            let mut stmt = conn.prepare(
                "SELECT path, display, before, after_hash, created_dirs FROM edits WHERE session_id = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([session_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?;
            rows.collect()
        })?;
        rows.into_iter()
            .map(|(path, display, before, after_hash, created_dirs)| {
                let after_hash: [u8; 32] = after_hash
                    .try_into()
                    .map_err(|_| SessionError::Corrupt(format!("edit of {display}: bad content hash")))?;
                let created_dirs: Vec<String> =
                    serde_json::from_str(&created_dirs).map_err(|err| SessionError::Corrupt(err.to_string()))?;
                Ok(JournalEntry {
                    path: PathBuf::from(path),
                    display,
                    before,
                    after_hash,
                    created_dirs: created_dirs.into_iter().map(PathBuf::from).collect(),
                })
            })
            .collect()
    }

    /// Most recently updated sessions first.
    pub fn list_sessions(&self, limit: usize) -> Result<Vec<SessionSummary>> {
        let sql = format!("{SUMMARY_SELECT} ORDER BY s.updated_at DESC, s.rowid DESC LIMIT ?1");
        self.with_conn(|conn| {
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map([limit as i64], summary_from_row)?;
            rows.collect()
        })
    }

    /// Finds a session by its id or a unique prefix of it.
    pub fn find_session(&self, id_or_prefix: &str) -> Result<SessionSummary> {
        let wanted = id_or_prefix.trim();
        if wanted.is_empty() || !wanted.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(SessionError::NotFound(id_or_prefix.to_string()));
        }
        let sql = format!("{SUMMARY_SELECT} WHERE s.id = ?1 OR s.id LIKE ?1 || '%' LIMIT 3");
        let found: Vec<SessionSummary> = self.with_conn(|conn| {
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map([wanted], summary_from_row)?;
            rows.collect()
        })?;
        if let Some(exact) = found.iter().find(|s| s.id == wanted) {
            return Ok(exact.clone());
        }
        match found.len() {
            0 => Err(SessionError::NotFound(wanted.to_string())),
            1 => Ok(found.into_iter().next().ok_or_else(|| SessionError::NotFound(wanted.to_string()))?),
            _ => Err(SessionError::Ambiguous(wanted.to_string())),
        }
    }

    /// The messages of a session in order.
    pub fn messages(&self, session_id: &str) -> Result<Vec<StoredMessage>> {
        let rows: Vec<RawMessageRow> = self.with_conn(|conn| {
            let mut stmt = conn.prepare(
                "SELECT seq, role, content, tool_calls, tool_call_id, created_at FROM messages WHERE session_id = ?1 ORDER BY seq",
            )?;
            let rows = stmt.query_map([session_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?;
            rows.collect()
        })?;
        rows.into_iter()
            .map(|(seq, role, content, tool_calls, tool_call_id, created_at)| {
                let role = parse_role(&role).ok_or_else(|| SessionError::Corrupt(format!("unknown role {role:?}")))?;
                let tool_calls = match tool_calls {
                    Some(json) => serde_json::from_str(&json).map_err(|err| SessionError::Corrupt(err.to_string()))?,
                    None => Vec::new(),
                };
                Ok(StoredMessage { seq, role, content, tool_calls, tool_call_id, created_at })
            })
            .collect()
    }

    /// The tool calls of a session in order.
    pub fn tool_calls(&self, session_id: &str) -> Result<Vec<StoredToolCall>> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare(
                "SELECT call_id, name, arguments, output, is_error, created_at FROM tool_calls WHERE session_id = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([session_id], |r| {
                let arguments: String = r.get(2)?;
                Ok(StoredToolCall {
                    call_id: r.get(0)?,
                    name: r.get(1)?,
                    arguments: serde_json::from_str(&arguments).unwrap_or(serde_json::Value::String(arguments)),
                    output: r.get(3)?,
                    is_error: r.get(4)?,
                    created_at: r.get(5)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Full-text search over message contents. Every word of `query` must
    /// occur (FTS5 syntax is neutralised: words are quoted).
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
        let fts_query = quote_fts_query(query);
        if fts_query.is_empty() {
            return Ok(Vec::new());
        }
        self.with_conn(|conn| {
            let mut stmt = conn.prepare(
                "SELECT m.session_id, s.title, m.role, snippet(messages_fts, 0, '[', ']', '...', 12), m.created_at
                 FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid JOIN sessions s ON s.id = m.session_id
                 WHERE messages_fts MATCH ?1 ORDER BY rank, m.id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![fts_query, limit as i64], |r| {
                Ok(SearchHit {
                    session_id: r.get(0)?,
                    title: r.get(1)?,
                    role: r.get(2)?,
                    snippet: r.get(3)?,
                    created_at: r.get(4)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Token totals per UTC day and model, newest day first.
    pub fn usage_by_day(&self) -> Result<Vec<UsageRow>> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare(
                "SELECT date(created_at, 'unixepoch') AS day, provider, model, COUNT(*), COUNT(DISTINCT session_id),
                        SUM(input_tokens), SUM(output_tokens)
                 FROM usage GROUP BY day, provider, model ORDER BY day DESC, provider, model",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(UsageRow {
                    day: r.get(0)?,
                    provider: r.get(1)?,
                    model: r.get(2)?,
                    requests: r.get(3)?,
                    sessions: r.get(4)?,
                    input_tokens: r.get(5)?,
                    output_tokens: r.get(6)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Everything stored about one session.
    pub fn export(&self, id_or_prefix: &str) -> Result<SessionExport> {
        let session = self.find_session(id_or_prefix)?;
        let messages = self.messages(&session.id)?;
        let tool_calls = self.tool_calls(&session.id)?;
        Ok(SessionExport { session, messages, tool_calls })
    }

    /// Schema version, journal mode, session count and a quick integrity check.
    pub fn health(&self) -> Result<StoreHealth> {
        let path = self.path.clone();
        self.with_conn(|conn| {
            let schema_version = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            let journal_mode = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
            let sessions = conn.query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0))?;
            let integrity = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
            Ok(StoreHealth { path, schema_version, journal_mode, sessions, integrity })
        })
    }
}

impl SessionExport {
    /// A readable Markdown transcript.
    pub fn to_markdown(&self) -> String {
        let s = &self.session;
        let mut out = String::new();
        let _ = writeln!(out, "# {}\n", if s.title.is_empty() { "(untitled session)" } else { &s.title });
        let _ = writeln!(out, "- id: `{}`", s.id);
        let _ = writeln!(out, "- workspace: `{}`", s.workspace);
        let _ = writeln!(out, "- model: {} ({})", s.model, s.provider);
        let _ = writeln!(out, "- created: {} UTC", format_utc(s.created_at));
        let _ = writeln!(out, "- tokens: {} in, {} out\n", s.input_tokens, s.output_tokens);
        for message in &self.messages {
            match message.role {
                Role::System => continue,
                Role::User => {
                    let _ = writeln!(out, "## User\n\n{}\n", message.content);
                }
                Role::Assistant => {
                    let _ = writeln!(out, "## Assistant\n");
                    if !message.content.is_empty() {
                        let _ = writeln!(out, "{}\n", message.content);
                    }
                    for call in &message.tool_calls {
                        let _ = writeln!(out, "Tool call `{}`:\n\n```json\n{}\n```\n", call.name, call.arguments);
                    }
                }
                Role::Tool => {
                    let fence = if message.content.contains("```") { "~~~~" } else { "```" };
                    let _ = writeln!(out, "### Tool result\n\n{fence}\n{}\n{fence}\n", message.content.trim_end());
                }
            }
        }
        out
    }
}

/// `YYYY-MM-DD HH:MM:SS` for unix seconds (UTC), without a date library.
pub fn format_utc(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", secs / 3600, (secs % 3600) / 60, secs % 60)
}

const SUMMARY_SELECT: &str = "SELECT s.id, s.title, s.workspace, s.provider, s.model, s.created_at, s.updated_at,
    (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id),
    (SELECT COALESCE(SUM(input_tokens), 0) FROM usage u WHERE u.session_id = s.id),
    (SELECT COALESCE(SUM(output_tokens), 0) FROM usage u WHERE u.session_id = s.id)
    FROM sessions s";

fn summary_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionSummary> {
    Ok(SessionSummary {
        id: r.get(0)?,
        title: r.get(1)?,
        workspace: r.get(2)?,
        provider: r.get(3)?,
        model: r.get(4)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
        message_count: r.get(7)?,
        input_tokens: r.get(8)?,
        output_tokens: r.get(9)?,
    })
}

const SCHEMA_V1: &str = "
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    workspace TEXT NOT NULL,
    title TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL
);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    tool_calls TEXT,
    tool_call_id TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (session_id, seq)
);
CREATE TABLE tool_calls (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    call_id TEXT NOT NULL,
    name TEXT NOT NULL,
    arguments TEXT NOT NULL,
    output TEXT NOT NULL,
    is_error INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX tool_calls_session ON tool_calls(session_id);
CREATE TABLE usage (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX usage_session ON usage(session_id);
CREATE INDEX usage_created ON usage(created_at);
CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages', content_rowid='id');
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
END;
";

/// v2: the agent's edit journal (pre-images), so a session's edits can be
/// undone from another process (`sextant sessions undo`).
const SCHEMA_V2: &str = "
CREATE TABLE edits (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    display TEXT NOT NULL,
    before BLOB,
    after_hash BLOB NOT NULL,
    created_dirs TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX edits_session ON edits(session_id);
";

fn migrate(conn: &mut Connection, path: &str) -> Result<()> {
    let sql_err = |source| SessionError::Sqlite { path: path.to_string(), source };
    // IMMEDIATE: two processes opening a fresh database at once must not
    // both run the migration.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(sql_err)?;
    if version > SCHEMA_VERSION {
        return Err(SessionError::TooNew { path: path.to_string(), found: version });
    }
    if version < 1 {
        tx.execute_batch(SCHEMA_V1).map_err(sql_err)?;
    }
    if version < 2 {
        tx.execute_batch(SCHEMA_V2).map_err(sql_err)?;
    }
    // Future migrations: `if version < 3 { ... }`.
    tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(sql_err)?;
    tx.commit().map_err(sql_err)
}

fn insert_edits(tx: &rusqlite::Transaction<'_>, session_id: &str, entries: &[JournalEntry]) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare(
        "INSERT INTO edits (session_id, path, display, before, after_hash, created_dirs, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for entry in entries {
        let dirs: Vec<String> = entry.created_dirs.iter().map(|d| d.to_string_lossy().into_owned()).collect();
        let dirs = serde_json::to_string(&dirs).unwrap_or_else(|_| "[]".to_string());
        stmt.execute(params![
            session_id,
            entry.path.to_string_lossy(),
            entry.display,
            entry.before,
            entry.after_hash.as_slice(),
            dirs,
            now_secs()
        ])?;
    }
    Ok(())
}

fn quote_fts_query(query: &str) -> String {
    query.split_whitespace().map(|word| format!("\"{}\"", word.replace('"', "\"\""))).collect::<Vec<_>>().join(" ")
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

fn parse_role(text: &str) -> Option<Role> {
    Some(match text {
        "system" => Role::System,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        _ => return None,
    })
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn clamp_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// 12 hex characters: unique enough for a personal history, short to type.
fn new_session_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut hasher = blake3::Hasher::new();
    hasher.update(&nanos.to_le_bytes());
    hasher.update(&std::process::id().to_le_bytes());
    hasher.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    hasher.finalize().to_hex()[..12].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(format_utc(1_700_000_000), "2023-11-14 22:13:20");
    }

    #[test]
    fn fts_query_is_quoted() {
        assert_eq!(quote_fts_query("foo AND \"bar"), "\"foo\" \"AND\" \"\"\"bar\"");
        assert_eq!(quote_fts_query("   "), "");
    }
}
