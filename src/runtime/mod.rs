//! Handing secrets to programs and files, and reading them back in.
//!
//! - `envname`: secret names as environment variable names, and back;
//! - [`dotenv`], [`json`]: the two file formats `export` and `import` speak;
//! - `refs`: `{ vault, key }` references in source files;
//! - `scan`: plaintext values where they do not belong;
//! - `output`: writing plaintext out of the store, privately.

pub mod dotenv;
pub mod edit;
pub mod envname;
pub mod flatten;
pub mod json;
pub mod output;
pub mod refs;
pub mod scan;
pub mod shell;
pub mod template;
