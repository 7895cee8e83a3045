//! The user's record of trusted project files: which workspaces may choose
//! their own provider through `.sextant.toml`.
//!
//! A record is keyed by the canonical workspace path and the blake3 hash of
//! the file's bytes, so editing the file (a `git pull` that changes the
//! provider) lapses the trust until the user approves it again. The record
//! lives in the user's data directory (`$SEXTANT_DATA_DIR`, else
//! `<data dir>/sextant`), never in a workspace. Filesystem edge; the policy
//! itself is in [`super::project`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of the record inside the data directory.
pub const TRUST_FILE: &str = "trusted-projects.json";

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("no data directory: set $SEXTANT_DATA_DIR")]
    NoDataDir,
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{} is damaged ({message}); delete it to start over", path.display())]
    Damaged { path: PathBuf, message: String },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

/// One approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustRecord {
    /// Canonical workspace root.
    pub workspace: PathBuf,
    /// blake3 of the `.sextant.toml` bytes that were approved, hex.
    pub file_hash: String,
    /// Seconds since the Unix epoch.
    pub trusted_at: u64,
}

/// What the record says about one workspace's project file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustState {
    Trusted,
    /// Approved once, but the file has changed since.
    Changed,
    Untrusted,
}

/// The user's data directory: `$SEXTANT_DATA_DIR`, else `<data dir>/sextant`.
pub fn user_data_dir() -> Option<PathBuf> {
    match std::env::var_os(crate::sessions::DATA_DIR_ENV) {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => dirs::data_dir().map(|dir| dir.join("sextant")),
    }
}

pub fn file_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// The record file; reads and writes it whole (it holds a few lines).
#[derive(Debug, Clone)]
pub struct TrustStore {
    path: PathBuf,
}

impl TrustStore {
    pub fn at(path: PathBuf) -> Self {
        TrustStore { path }
    }

    pub fn open_default() -> Result<Self, TrustError> {
        Ok(Self::at(user_data_dir().ok_or(TrustError::NoDataDir)?.join(TRUST_FILE)))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn records(&self) -> Result<Vec<TrustRecord>, TrustError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(TrustError::Read { path: self.path.clone(), source }),
        };
        serde_json::from_str(&text)
            .map_err(|err| TrustError::Damaged { path: self.path.clone(), message: err.to_string() })
    }

    /// The state of `workspace`'s project file with content `bytes`.
    pub fn state(&self, workspace: &Path, bytes: &[u8]) -> Result<TrustState, TrustError> {
        let workspace = canonical(workspace);
        let hash = file_hash(bytes);
        let records = self.records()?;
        let mut seen = false;
        for record in records.iter().filter(|r| r.workspace == workspace) {
            if record.file_hash == hash {
                return Ok(TrustState::Trusted);
            }
            seen = true;
        }
        Ok(if seen { TrustState::Changed } else { TrustState::Untrusted })
    }

    /// Records approval of `bytes` for `workspace` (replacing an older one).
    pub fn trust(&self, workspace: &Path, bytes: &[u8]) -> Result<TrustRecord, TrustError> {
        let workspace = canonical(workspace);
        let mut records = self.records()?;
        records.retain(|r| r.workspace != workspace);
        let trusted_at =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let record = TrustRecord { workspace, file_hash: file_hash(bytes), trusted_at };
        records.push(record.clone());
        self.save(&records)?;
        Ok(record)
    }

    /// Forgets `workspace`; returns whether it was trusted.
    pub fn revoke(&self, workspace: &Path) -> Result<bool, TrustError> {
        let workspace = canonical(workspace);
        let mut records = self.records()?;
        let before = records.len();
        records.retain(|r| r.workspace != workspace);
        if records.len() == before {
            return Ok(false);
        }
        self.save(&records)?;
        Ok(true)
    }

    /// Atomic replace: a crash never leaves half a record.
    fn save(&self, records: &[TrustRecord]) -> Result<(), TrustError> {
        let write_err = |source| TrustError::Write { path: self.path.clone(), source };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(write_err)?;
        let text = serde_json::to_string_pretty(records).map_err(|err| write_err(std::io::Error::other(err)))?;
        let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(write_err)?;
        std::io::Write::write_all(&mut temp, text.as_bytes()).map_err(write_err)?;
        temp.as_file().sync_all().map_err(write_err)?;
        temp.persist(&self.path).map_err(|err| write_err(err.error))?;
        Ok(())
    }
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_is_keyed_by_workspace_and_content() {
        let data = tempfile::tempdir().expect("tempdir");
        let workspace = tempfile::tempdir().expect("tempdir");
        let other = tempfile::tempdir().expect("tempdir");
        let store = TrustStore::at(data.path().join(TRUST_FILE));
        let file = b"provider = \"openai\"\n";
        assert_eq!(store.state(workspace.path(), file).expect("state"), TrustState::Untrusted);
        store.trust(workspace.path(), file).expect("trust");
        assert_eq!(store.state(workspace.path(), file).expect("state"), TrustState::Trusted);
        assert_eq!(store.state(other.path(), file).expect("state"), TrustState::Untrusted);
        assert_eq!(store.state(workspace.path(), b"provider = \"ollama\"\n").expect("state"), TrustState::Changed);
        assert!(store.revoke(workspace.path()).expect("revoke"));
        assert!(!store.revoke(workspace.path()).expect("revoke again"));
        assert_eq!(store.state(workspace.path(), file).expect("state"), TrustState::Untrusted);
    }

    #[test]
    fn a_damaged_record_is_an_error_not_trust() {
        let data = tempfile::tempdir().expect("tempdir");
        let path = data.path().join(TRUST_FILE);
        std::fs::write(&path, "{not json").expect("write");
        let store = TrustStore::at(path);
        assert!(matches!(store.state(data.path(), b"x"), Err(TrustError::Damaged { .. })));
    }
}
