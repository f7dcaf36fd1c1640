//! Git: running it, and what coffer does inside git's own machinery.
//!
//! - `repo`: running `git` (old states of the store, staged files);
//! - `diff`: comparing two states of a store, values masked;
//! - `merge`: three-way merges of a vault, secret by secret;
//! - `history`: a vault key from the repository's history that opens an
//!   old version of a secret;
//! - `worktree`: writing coffer's files into a repository, atomically and
//!   never through a link;
//! - `continuity`: `verify --base`, keyrings that carry their predecessor.

pub mod continuity;
pub mod diff;
pub mod history;
pub mod merge;
pub mod repo;
pub mod worktree;

pub use repo::{Git, find_program};
