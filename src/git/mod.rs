//! Git: running it, and what coffer does inside git's own machinery.
//!
//! - `repo`: running `git` (old states of the store, staged files);
//! - `diff`: comparing two states of a store, values masked;
//! - `merge`: three-way merges of a vault, secret by secret;
//! - `continuity`: `verify --base`, keyrings that carry their predecessor.

pub mod continuity;
pub mod diff;
pub mod merge;
pub mod repo;

pub use repo::{Git, find_program};
