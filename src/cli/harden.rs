//! Process hardening while coffer holds secrets: no core dumps, and no
//! ptrace or `/proc/<pid>/mem` access by other processes of the same user.

use std::sync::OnceLock;

use rustix::process::{
    DumpableBehavior, Resource, Rlimit, getrlimit, set_dumpable_behavior, setrlimit,
};

/// The core-size limit coffer started with, for the program `run` becomes.
static ORIGINAL_CORE_LIMIT: OnceLock<Rlimit> = OnceLock::new();

/// Turns core dumps off (soft limit 0; the hard limit is kept so that
/// `coffer run` can give its program the user's own limit back) and marks
/// the process not dumpable. Best effort: a failure here is not a reason
/// to refuse to work, and nothing secret is in memory yet.
pub fn harden() {
    let original = getrlimit(Resource::Core);
    let _ = setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: original.maximum,
        },
    );
    let _ = ORIGINAL_CORE_LIMIT.set(original);
    let _ = set_dumpable_behavior(DumpableBehavior::NotDumpable);
}

/// Restores the user's core-size limit just before `coffer run` executes
/// the program (`execve` resets the dumpable flag by itself).
pub fn restore_for_exec() {
    if let Some(original) = ORIGINAL_CORE_LIMIT.get() {
        let _ = setrlimit(Resource::Core, *original);
    }
}
