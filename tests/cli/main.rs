//! End-to-end tests of the `coffer` command. One binary (faster to build
//! and link); each module is one area of the CLI.

mod common;

/// The bad-input corpus: malformed, oversized, planted and hostile input.
mod bad_input;

/// The published demo identity opens the sample store only.
mod demo;
/// `coffer diff` across commits.
mod diff;
/// The docs' console examples, run for real.
mod docs;
/// `coffer edit` with scripted editors.
mod edit;
/// Format 2: keyrings in epochs, removal, format-1 stores.
mod epochs;
/// `coffer git setup`, merges and textconv with real git.
mod git;
/// Attacks by another local user, a keyless writer, a hostile platform.
mod hardening;
/// `coffer inject`: config-file templates.
mod inject;
/// Tampered stores: swapped, rolled-back and forged files.
mod integrity;
/// The real `age` CLI and real `git`.
mod interop;
/// `keygen`, `init`, identity lookup and permissions.
mod keys;
/// A sentinel value never shows up where it should not.
#[cfg(feature = "sync")]
mod leaks;
/// Help, completions, man page, and the sample store in `vaults/`.
mod meta;
/// `import --from sops`, YAML and nested JSON, with the real `sops`.
mod migrate;
/// `--json` and the output layer.
mod output;
/// The platform's command tree verbatim, and `-V` everywhere.
mod platform;
/// `.pre-commit-hooks.yaml` run by the real `pre-commit`.
mod precommit;
/// `refs check`: references in source files.
mod refs;
/// Kills at random moments, injected I/O errors, racing processes.
mod reliability;
/// `resolve`: references in JSON replaced by values.
mod resolve;
/// `run`: secrets in a program's environment.
mod run;
/// `coffer scan` and the pre-commit hook.
mod scan;
/// `create|update|get|list|delete` and value input.
mod secrets;
/// `export --format shell|fish` in real shells, and direnv.
mod shell;
/// `sync` against the stand-in.
#[cfg(feature = "sync")]
mod sync;
/// Recipients, rotation, rekey, contributions, hardware keys, verify.
mod teams;
/// `export` and `import`.
mod transfer;
/// `vault create|list|delete`.
mod vaults;
