//! Pushing a store to a secret manager: the engine, and the Tailor
//! Platform as its one target.
//!
//! The platform's API never returns a value, so a sync cannot compare
//! values with what is there. It compares with what *it* pushed last time
//! instead: the [`State`] keeps, per secret, a keyed digest of the value
//! last pushed and the remote `updateTime` seen afterwards. A secret is
//! pushed when it is missing remotely, when its value changed locally,
//! when its remote `updateTime` moved (someone changed it elsewhere), or
//! when there is no record of it (a fresh CI clone pushes everything once).
//!
//! A sync is three steps, each testable on its own:
//! 1. [`read_local`] (`local.rs`) verifies every secret in scope and
//!    decrypts each whose file is not the one whose value was last pushed
//!    (the state keeps a keyed digest of that file too);
//! 2. [`fetch`] (`remote.rs`) reads the remote side through a [`Remote`],
//!    [`read_values`] decrypts the unchanged secrets the plan will push
//!    after all ([`values_needed`]: drifted or missing remotely), and
//!    [`plan()`] (`plan.rs`) computes the [`Plan`] (pure: no I/O);
//! 3. [`apply()`] (`apply.rs`) runs the plan's writes a few at a time and
//!    records each success in the [`State`] (`state.rs`), so an
//!    interrupted run is finished by the next.
//!
//! The engine knows no target: a target implements [`Remote`], expresses
//! its failures as [`ErrorKind`]s and supplies an opaque id that keys the
//! state. [`tailor`] is the one target; it imports the engine, never the
//! reverse, and a second target would sit beside it.
//!
//! Nothing here prints, prompts or reads the environment, and no value
//! ever reaches an error, a step or a note: a plan holds names only.

pub mod apply;
pub mod local;
pub mod plan;
pub mod remote;
pub mod state;
pub mod tailor;

pub use apply::{Outcome, apply};
pub use local::{LocalSecret, LocalVault, read_local, read_values, unread_values};
pub use plan::{Action, Plan, SkipReason, Step, UpdateReason, plan, values_needed};
pub use remote::{
    DEFAULT_WORKERS, ErrorKind, Ownership, Remote, RemoteError, RemoteSecret, RemoteSnapshot,
    RemoteVault, Scope, fetch, normalize_time, parallel,
};
pub use state::{LockedState, Record, State};

#[cfg(test)]
mod tests;
