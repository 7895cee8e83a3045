//! sextant-core: the pure core shared by the LSP server and the CLI.
//!
//! No editor or terminal I/O happens here: callers pass paths and contents in
//! and get data back. See ARCHITECTURE.md for the code map.

pub mod agent;
pub mod completion;
pub mod config;
pub mod providers;
pub mod repomap;
pub mod sessions;
pub mod syntax;
pub mod tokens;
pub mod tools;
