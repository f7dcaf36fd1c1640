//! Replays the committed fuzz corpus and every past crash on stable: each
//! file under `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` runs
//! through the same target as `cargo fuzz` does (`coffer::fuzzing`).

use std::fs;
use std::path::Path;

#[test]
fn fuzz_corpus_and_regressions_replay_without_panics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut ran = 0;
    for (target, _) in coffer::fuzzing::TARGETS {
        for kind in ["corpus", "regressions"] {
            let dir = root.join(kind).join(target);
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for e in entries {
                let path = e.unwrap().path();
                let data = fs::read(&path).unwrap();
                let r = std::panic::catch_unwind(|| coffer::fuzzing::run(target, &data));
                assert!(r.is_ok(), "{target} panicked on {}", path.display());
                ran += 1;
            }
        }
        assert!(
            root.join("corpus").join(target).is_dir(),
            "fuzz/corpus/{target} is missing: every target keeps a seed corpus"
        );
    }
    assert!(ran > 0);
}
