//! sextant-lsp: the Sextant language server (tower-lsp over stdio).
//!
//! One module per LSP feature; shared state lives in [`session::Session`].
//! Pure parts (prompt building, post-processing, edit extraction/validation,
//! the completion cache) have no LSP or I/O dependencies and are benchmarked
//! and snapshot-tested directly.

pub mod code_actions;
pub mod commands;
pub mod completion;
pub mod completion_cache;
pub mod document;
pub mod edits;
pub mod errors;
pub mod hover;
pub mod indexing;
pub mod inline_completion;
pub mod markup;
pub mod model;
pub mod output;
pub mod progress;
pub mod prompt;
pub mod server;
pub mod service;
pub mod session;
pub mod settings;
pub mod syntax_tree;
pub mod transport;
