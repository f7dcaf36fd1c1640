#![no_main]
// The target's body lives in the library (coffer::fuzzing), so that
// `cargo test` replays the committed corpus on stable.
libfuzzer_sys::fuzz_target!(|data: &[u8]| coffer::fuzzing::run("refs", data));
