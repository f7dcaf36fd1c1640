//! End-to-end tests of the `coffer` command. One binary (faster to build
//! and link); each module is one area of the CLI.

mod common;

/// Tampered stores: swapped, rolled-back and forged files.
mod integrity;
/// The real `age` CLI and real `git`.
mod interop;
/// `keygen`, `init`, identity lookup and permissions.
mod keys;
/// Help, completions, man page, and the sample store in `vaults/`.
mod meta;
/// `refs check`: references in source files.
mod refs;
/// `resolve`: references in JSON replaced by values.
mod resolve;
/// `run`: secrets in a program's environment.
mod run;
/// `create|update|get|list|delete` and value input.
mod secrets;
/// `export` and `import`.
mod transfer;
/// `vault create|list|delete`.
mod vaults;
