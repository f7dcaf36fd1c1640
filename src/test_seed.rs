//! Replayable property tests (test builds only): every `proptest!` block
//! takes its configuration from [`config`], so that a failure prints the
//! seed that found it, as `COFFER_TEST_SEED=…`, and a run with that
//! variable set tries that seed first. (The kill loop in
//! `tests/cli/reliability.rs` reads the same variable for its own
//! generator.) The integration tests include this file too (`#[path]` in
//! `tests/cli/common`), since they cannot see the library's test modules.

use std::any::Any;

use proptest::test_runner::{Config, FailurePersistence, PersistedSeed};

/// The default configuration (`PROPTEST_CASES` and the like still apply)
/// with [`EnvSeed`] as its failure persistence.
pub fn config() -> Config {
    Config {
        failure_persistence: Some(Box::new(EnvSeed)),
        ..Config::default()
    }
}

/// Seeds from `COFFER_TEST_SEED`, and failures printed rather than
/// written to a file in the source tree.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvSeed;

impl FailurePersistence for EnvSeed {
    fn load_persisted_failures2(&self, _: Option<&'static str>) -> Vec<PersistedSeed> {
        std::env::var("COFFER_TEST_SEED")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .into_iter()
            .collect()
    }

    fn save_persisted_failure2(
        &mut self,
        _: Option<&'static str>,
        seed: PersistedSeed,
        _: &dyn std::fmt::Debug,
    ) {
        eprintln!("note: to replay this failure, run with COFFER_TEST_SEED='{seed}'");
    }

    fn box_clone(&self) -> Box<dyn FailurePersistence> {
        Box::new(self.clone())
    }

    fn eq(&self, other: &dyn FailurePersistence) -> bool {
        other.as_any().downcast_ref::<EnvSeed>().is_some()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
