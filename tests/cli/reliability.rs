//! Crash safety, concurrency and hardening: commands killed at random
//! moments, I/O errors injected into system calls, processes racing for
//! the same vault.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::{TestEnv, have_tool, run_in_pty_with};

/// A small deterministic PRNG (xorshift64*), so a failing run can be
/// replayed from the seed it prints.
struct Rng(u64);

impl Rng {
    fn from_env() -> Rng {
        let seed = std::env::var("COFFER_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("note: COFFER_TEST_SEED={seed}");
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Every value in the vault, through one `coffer export`.
fn values(env: &TestEnv) -> BTreeMap<String, String> {
    let r = env
        .run(&["export", "-V", "api-keys", "--format", "json"])
        .ok();
    serde_json::from_str(&r.stdout()).unwrap()
}

/// Files coffer left in the store that are not part of it.
fn leftovers(env: &TestEnv) -> Vec<String> {
    let mut out = Vec::new();
    for (p, _) in env.snapshot() {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with(".coffer-") {
            out.push(p.display().to_string());
        }
    }
    out
}

fn spawn(env: &TestEnv, args: &[&str], stdin: Option<&[u8]>) -> Child {
    let mut c = env.cmd();
    c.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    if let Some(input) = stdin {
        // The process may be killed before it reads: ignore a broken pipe.
        let _ = child.stdin.take().unwrap().write_all(input);
    }
    child
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Create,
    Update,
    Delete,
    AddBob,
    RemoveBob,
    Import,
}

/// Kills write commands at random moments, hundreds of times, and after
/// each kill checks that the store verifies with the key, that every
/// secret holds its old or its new value, and that nothing is left over.
#[test]
fn killing_writes_at_random_moments_never_loses_or_corrupts_a_value() {
    let kills_wanted: usize = std::env::var("COFFER_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let mut rng = Rng::from_env();
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    for i in 0..12 {
        let (n, v) = (format!("secret-{i:02}"), format!("initial-{i}"));
        env.put("api-keys", &n, &v);
        expected.insert(n, v);
    }
    let bob = env.dir.path().join("bob.txt");
    let bob_key = env.identity_file(&bob, 0o600);
    let mut bob_in = false;
    let import_file = env.dir.path().join("import.env");

    // How long a write takes here, so that kills land inside one.
    let start = Instant::now();
    env.run_stdin(
        &["update", "-V", "api-keys", "-n", "secret-00"],
        b"initial-0-timing",
    )
    .ok();
    env.run_stdin(
        &["update", "-V", "api-keys", "-n", "secret-00"],
        b"initial-0",
    )
    .ok();
    let window_us = (start.elapsed().as_micros() as u64 / 2).max(2_000);

    let (mut kills, mut runs, mut counter) = (0usize, 0usize, 0usize);
    let mut windows: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_op: BTreeMap<String, usize> = BTreeMap::new();
    while kills < kills_wanted {
        assert!(
            runs < kills_wanted * 20,
            "too few kills landed: {kills} in {runs} runs"
        );
        runs += 1;
        counter += 1;
        let names: Vec<String> = expected.keys().cloned().collect();
        let op = match rng.below(10) {
            0..=2 => Op::Create,
            3..=5 => Op::Update,
            6 => Op::Delete,
            7 => {
                if bob_in {
                    Op::RemoveBob
                } else {
                    Op::AddBob
                }
            }
            _ => Op::Import,
        };
        // What each secret may hold after this run: its old value, or the
        // new one the run was writing (None: absent).
        let mut allowed: BTreeMap<String, Vec<Option<String>>> = expected
            .iter()
            .map(|(k, v)| (k.clone(), vec![Some(v.clone())]))
            .collect();
        let child = match op {
            Op::Create => {
                let (n, v) = (format!("new-{counter}"), format!("created-{counter}"));
                allowed.insert(n.clone(), vec![None, Some(v.clone())]);
                spawn(
                    &env,
                    &["create", "-V", "api-keys", "-n", &n],
                    Some(v.as_bytes()),
                )
            }
            Op::Update if !names.is_empty() => {
                let n = &names[rng.below(names.len() as u64) as usize];
                let v = format!("updated-{counter}");
                allowed.get_mut(n).unwrap().push(Some(v.clone()));
                spawn(
                    &env,
                    &["update", "-V", "api-keys", "-n", n],
                    Some(v.as_bytes()),
                )
            }
            Op::Delete if names.len() > 3 => {
                let n = &names[rng.below(names.len() as u64) as usize];
                allowed.get_mut(n).unwrap().push(None);
                spawn(&env, &["delete", "-V", "api-keys", "-n", n, "--yes"], None)
            }
            Op::AddBob => spawn(&env, &["recipients", "add", "bob", &bob_key], None),
            Op::RemoveBob => spawn(&env, &["recipients", "remove", "bob", "--yes"], None),
            _ => {
                // Import: two updates and one new secret, in one transaction.
                let mut text = String::new();
                for n in names.iter().take(2) {
                    let v = format!("imported-{counter}");
                    text.push_str(&format!("{}=\"{v}\"\n", n.to_uppercase().replace('-', "_")));
                    allowed.get_mut(n).unwrap().push(Some(v));
                }
                let n = format!("imp-{counter}");
                let v = format!("imported-{counter}");
                text.push_str(&format!("{}={v}\n", n.to_uppercase().replace('-', "_")));
                allowed.insert(n, vec![None, Some(v)]);
                fs::write(&import_file, text).unwrap();
                spawn(
                    &env,
                    &["import", "-V", "api-keys", import_file.to_str().unwrap()],
                    None,
                )
            }
        };
        let mut child = child;
        let key = format!("{op:?}");
        let window = *windows.get(&key).unwrap_or(&window_us);
        let started = Instant::now();
        std::thread::sleep(Duration::from_micros(rng.below(window)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
            *by_op.entry(key).or_default() += 1;
        } else {
            // It finished: aim the next kill of this kind inside its run time.
            windows.insert(key, (started.elapsed().as_micros() as u64).max(500));
        }
        child.wait().unwrap();

        // The state after the kill, as the next command sees it.
        let v = env.run(&["verify"]);
        assert_eq!(
            v.code(),
            0,
            "verify failed after run {runs} ({op:?}):\n{}\n{}",
            v.stdout(),
            v.stderr()
        );
        assert!(
            leftovers(&env).is_empty(),
            "left over after {op:?}: {:?}",
            leftovers(&env)
        );
        let now = values(&env);
        for (name, options) in &allowed {
            let got = now.get(name).cloned();
            assert!(
                options.contains(&got),
                "after {op:?}, {name} holds an unexpected value"
            );
        }
        for name in now.keys() {
            assert!(
                allowed.contains_key(name),
                "after {op:?}, {name} appeared from nowhere"
            );
        }
        expected = now;
        // Whether bob is in coffer.toml now decides the next recipient op.
        bob_in = fs::read_to_string(env.store().join("coffer.toml"))
            .unwrap()
            .contains("bob =");
    }
    eprintln!("note: {kills} kills in {runs} runs: {by_op:?}");
}

/// Runs `coffer` under strace, failing the `nth` matching system call with
/// `errno`. Returns (exit code, stderr).
fn with_fault(
    env: &TestEnv,
    syscalls: &str,
    errno: &str,
    nth: usize,
    args: &[&str],
    stdin: &[u8],
) -> (i32, String) {
    let mut c = under_strace(
        env,
        &format!("inject={syscalls}:error={errno}:when={nth}"),
        args,
    );
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `coffer args` under strace with one `-e` expression, in the test's
/// hermetic environment.
fn under_strace(env: &TestEnv, expression: &str, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new("strace");
    c.args(["-f", "-qq", "-o", "/dev/null", "-e", expression])
        .arg(env!("CARGO_BIN_EXE_coffer"))
        .args(args)
        .env_clear()
        .env("HOME", &env.home)
        .env("XDG_CONFIG_HOME", &env.config)
        .env("PATH", crate::common::PATH)
        .current_dir(&env.work);
    c
}

/// Fails each write, fsync and rename that `update` makes, one at a time:
/// every failure is a clear error, and the store afterwards holds either
/// the old value with every file as it was, or (after the commit point)
/// the new one once the next command finishes the change.
#[test]
fn io_errors_leave_the_store_as_it_was_with_a_clear_error() {
    if !have_tool("strace") {
        return;
    }
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "OLD-VALUE");
    env.put("api-keys", "other-key", "OTHER");
    // Probe: does strace work here (ptrace may be forbidden)?
    let (code, err) = with_fault(&env, "getpid", "EPERM", 1000, &["vault", "list"], b"");
    if code != 0 {
        if std::env::var("COFFER_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("strace does not work here: {err}");
        }
        eprintln!("note: skipping: strace cannot trace here: {err}");
        return;
    }
    let classes = [
        ("write,pwrite64,writev", "ENOSPC", "No space left on device"),
        ("write,pwrite64,writev", "EIO", "Input/output error"),
        ("fsync,fdatasync,syncfs", "EIO", "Input/output error"),
        ("rename,renameat,renameat2", "EIO", "Input/output error"),
    ];
    let mut failures = 0;
    for (calls, errno, message) in classes {
        for nth in 1..=12 {
            let before = env.snapshot();
            let value = format!("NEW-{errno}-{nth}");
            let (code, err) = with_fault(
                &env,
                calls,
                errno,
                nth,
                &["update", "-V", "api-keys", "-n", "stripe-key"],
                value.as_bytes(),
            );
            if code == 0 {
                // The nth call came after the command's last one: reset.
                env.run_stdin(
                    &["update", "-V", "api-keys", "-n", "stripe-key"],
                    b"OLD-VALUE",
                )
                .ok();
                continue;
            }
            failures += 1;
            assert_eq!(code, 1, "{calls}#{nth}: {err}");
            assert!(
                err.starts_with("error: ") && err.contains(message),
                "{calls}#{nth}: unclear error: {err}"
            );
            assert!(!err.contains("NEW-"), "the value leaked: {err}");
            // The next command sees a consistent store.
            env.run(&["verify"]).ok();
            let got = env.get("api-keys", "stripe-key");
            if got == "OLD-VALUE" {
                assert_eq!(env.snapshot(), before, "{calls}#{nth}: the store changed");
            } else {
                assert_eq!(got, value, "{calls}#{nth}");
                assert!(
                    err.contains(
                        "the change was committed, and the next coffer command finishes it"
                    ) && err.contains("hint: `coffer verify` finishes the change"),
                    "{calls}#{nth}: a failure after the commit point must say so: {err}"
                );
                env.run_stdin(
                    &["update", "-V", "api-keys", "-n", "stripe-key"],
                    b"OLD-VALUE",
                )
                .ok();
            }
            assert_eq!(env.get("api-keys", "other-key"), "OTHER");
        }
    }
    assert!(
        failures >= 12,
        "only {failures} injected faults hit the command"
    );
}

/// 4 processes each create 50 secrets in the same vault at once while a
/// fifth rewrites one secret over and over with long values, and a reader
/// reads that very secret throughout: every read is one whole value some
/// writer wrote, never a mix, a half or an error.
#[test]
fn concurrent_writers_lose_nothing_and_readers_never_see_half_a_write() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    // Long values: a torn read of one would be a prefix of it, or mix two.
    let hot = |i: usize| format!("hot-{i:02}-{}", "x".repeat(4000 + i));
    env.put("api-keys", "hot-key", &hot(0));
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut reads = 0;
            let mut seen = std::collections::BTreeSet::new();
            let deadline = Instant::now() + Duration::from_secs(300);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < deadline {
                let r = env.run(&["get", "-V", "api-keys", "-n", "hot-key"]);
                assert_eq!(r.code(), 0, "a read failed during writes: {}", r.stderr());
                let got = r.stdout();
                let i: usize = got[4..6].parse().expect("a value some writer wrote");
                assert_eq!(got, hot(i), "a read saw part of a write");
                seen.insert(i);
                reads += 1;
            }
            (reads, seen.len())
        });
        let updater = s.spawn(|| {
            for i in 1..=40 {
                let r = env.run_stdin(
                    &["update", "-V", "api-keys", "-n", "hot-key"],
                    hot(i).as_bytes(),
                );
                assert_eq!(r.code(), 0, "update {i}: {}", r.stderr());
            }
        });
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let env = &env;
                s.spawn(move || {
                    for i in 0..50 {
                        let name = format!("w{w}-secret-{i:02}");
                        let r = env
                            .run_stdin(&["create", "-V", "api-keys", "-n", &name], name.as_bytes());
                        assert_eq!(r.code(), 0, "{name}: {}", r.stderr());
                    }
                })
            })
            .collect();
        let mut results: Vec<_> = writers.into_iter().map(|w| w.join()).collect();
        results.push(updater.join());
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for r in results {
            r.unwrap();
        }
        let (reads, distinct) = reader.join().unwrap();
        assert!(reads > 0);
        // The reader really overlapped the writes of the secret it read.
        assert!(
            distinct > 1,
            "the reader saw only one value in {reads} reads"
        );
    });
    let all = values(&env);
    assert_eq!(all.len(), 201);
    assert_eq!(all["hot-key"], hot(40));
    for (name, value) in &all {
        if name != "hot-key" {
            assert_eq!(name, value);
        }
    }
    env.run(&["verify"]).ok();
}

#[test]
fn a_held_lock_is_waited_for_then_given_up_with_a_clear_error() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    let held = fs::File::open(env.store()).unwrap();
    held.lock().unwrap();
    let before = env.snapshot();
    let start = Instant::now();
    let r = env.run_with(
        &[
            "create",
            "-V",
            "api-keys",
            "-n",
            "new-key",
            "--value-file",
            "/dev/null",
        ],
        |c| {
            c.env("COFFER_LOCK_TIMEOUT", "2");
        },
    );
    // An empty value is refused before any lock: use a real one.
    assert!(r.stderr().contains("empty"), "{}", r.stderr());
    fs::write(env.dir.path().join("v.txt"), "v").unwrap();
    let file = env.dir.path().join("v.txt");
    let r = env.run_with(
        &[
            "create",
            "-V",
            "api-keys",
            "-n",
            "new-key",
            "--value-file",
            file.to_str().unwrap(),
        ],
        |c| {
            c.env("COFFER_LOCK_TIMEOUT", "2");
        },
    );
    let r = r
        .fails("timed out after 2s waiting for another coffer process")
        .transcript("reliability/timed-out-after-2s-waiting-for-another");
    assert!(
        r.stderr()
            .contains("waiting for another coffer process to release"),
        "{}",
        r.stderr()
    );
    assert!(start.elapsed() >= Duration::from_secs(2));
    assert_eq!(env.snapshot(), before);
    // Released: the same command goes through.
    drop(held);
    env.run(&[
        "create",
        "-V",
        "api-keys",
        "-n",
        "new-key",
        "--value-file",
        file.to_str().unwrap(),
    ])
    .ok();
}

/// While coffer waits for a value (holding nothing yet), its core dumps
/// are off and it is not dumpable; the program `run` starts gets the
/// user's own core limit back.
///
/// The test gives coffer a core limit that is not 0 (raising the soft
/// limit to the hard one), so that a 0 seen afterwards is coffer's doing;
/// it finds coffer by a secret name no other test uses; and it checks "not
/// dumpable" the way the kernel enforces it: a process of the same user
/// without `CAP_SYS_PTRACE` may read a dumpable process's
/// `/proc/PID/environ` and not a non-dumpable one's (shown first on a
/// process that is dumpable, so the check cannot pass by failing).
/// `COFFER_REQUIRE_TOOLS=1` turns every "could not check" into a failure.
#[test]
fn core_dumps_are_off_while_coffer_runs() {
    let require = std::env::var("COFFER_REQUIRE_TOOLS").as_deref() == Ok("1");
    let cannot = |why: &str| {
        assert!(!require, "COFFER_REQUIRE_TOOLS=1: {why}");
        eprintln!("note: {why}");
    };
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    let name = format!(
        "typed-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let hard = {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct it is given.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut l) }, 0);
        l.rlim_max
    };
    // Without capabilities (root's would let it read any process's
    // environ, or keep a capless reader out of a dumpable coffer), so that
    // only the dumpable flag decides what the reader below may see.
    let plain = env.cmd();
    let setpriv = have_setpriv();
    let mut c = if setpriv {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--inh-caps=-all", "--bounding-set=-all", "--"])
            .arg(plain.get_program())
            .env_clear()
            .envs(
                plain
                    .get_envs()
                    .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
            )
            .current_dir(plain.get_current_dir().unwrap());
        c
    } else {
        plain
    };
    c.args(["create", "-V", "api-keys", "-n", &name]);
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            c.pre_exec(move || {
                let l = libc::rlimit {
                    rlim_cur: hard,
                    rlim_max: hard,
                };
                libc::setrlimit(libc::RLIMIT_CORE, &l);
                Ok(())
            });
        }
    }
    let mut limits = String::new();
    let mut dumpable: Option<(bool, bool)> = None;
    let (out, code) = run_in_pty_with(
        c,
        Some(&format!("Value for api-keys/{name}: ")),
        "wait-a-moment\n",
        || {
            let pid = find_coffer_waiting(&name).expect("coffer is waiting at its prompt");
            limits = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
            if setpriv {
                let mut control = std::process::Command::new("setpriv")
                    .args([
                        "--inh-caps=-all",
                        "--bounding-set=-all",
                        "--",
                        "sleep",
                        "30",
                    ])
                    .spawn()
                    .unwrap();
                // Until it has become `sleep`, it is setpriv, with caps.
                std::thread::sleep(Duration::from_millis(200));
                dumpable =
                    readable_without_ptrace_cap(control.id()).zip(readable_without_ptrace_cap(pid));
                let _ = control.kill();
                let _ = control.wait();
            }
        },
    );
    assert_eq!(code, 0, "{out}");
    if hard == 0 {
        cannot("the hard core limit is 0, so coffer setting 0 proves nothing");
    } else if limits.is_empty() {
        cannot("could not read the limits of the waiting process");
    } else {
        let core = limits
            .lines()
            .find(|l| l.starts_with("Max core file size"))
            .unwrap();
        assert_eq!(core.split_whitespace().nth(4), Some("0"), "{core}");
    }
    match dumpable {
        Some((true, coffer)) => assert!(!coffer, "coffer is dumpable while it runs"),
        Some((false, _)) => cannot("even a dumpable process's environ could not be read"),
        None => cannot("setpriv, needed to run without CAP_SYS_PTRACE, is not available"),
    }
    // `run` gives the program the user's own limit back: the raised one,
    // so that it cannot be the 0 coffer set for itself.
    let raise = move |c: &mut std::process::Command| {
        use std::os::unix::process::CommandExt;
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            c.pre_exec(move || {
                let l = libc::rlimit {
                    rlim_cur: hard,
                    rlim_max: hard,
                };
                libc::setrlimit(libc::RLIMIT_CORE, &l);
                Ok(())
            });
        }
    };
    let own = {
        let mut c = std::process::Command::new("sh");
        c.args(["-c", "ulimit -c"]);
        raise(&mut c);
        c.output().unwrap()
    };
    let r = env
        .run_with(
            &["run", "-V", "api-keys", "--", "sh", "-c", "ulimit -c"],
            raise,
        )
        .ok();
    assert_eq!(
        r.stdout(),
        String::from_utf8_lossy(&own.stdout),
        "the program keeps the user's limit"
    );
    if hard != 0 {
        assert_ne!(r.stdout(), "0\n");
    }
}

/// Whether `setpriv` (util-linux) runs here.
fn have_setpriv() -> bool {
    std::process::Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether a process of this user without `CAP_SYS_PTRACE` can read
/// `/proc/PID/environ` (the kernel allows it for a dumpable process of the
/// same user only). `None` when that could not be tried.
fn readable_without_ptrace_cap(pid: u32) -> Option<bool> {
    let path = format!("/proc/{pid}/environ");
    let out = std::process::Command::new("setpriv")
        .args([
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
            "head",
            "-c",
            "1",
            &path,
        ])
        .output()
        .ok()?;
    if String::from_utf8_lossy(&out.stderr).contains("setpriv") {
        return None;
    }
    Some(out.status.success())
}

/// Returns the pid of the coffer process waiting for the value of `name`.
fn find_coffer_waiting(name: &str) -> Option<u32> {
    let exe = env!("CARGO_BIN_EXE_coffer");
    for e in fs::read_dir("/proc").ok()? {
        let e = e.ok()?;
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        // cmdline is readable even for a process that is not dumpable.
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        if args.first() == Some(&exe.as_bytes()) && args.contains(&name.as_bytes()) {
            return Some(pid);
        }
    }
    None
}

/// Runs `coffer` under strace, killing it (SIGKILL) at the `nth` matching
/// system call. Returns the exit code (-1 when killed).
fn killed_at(env: &TestEnv, syscalls: &str, nth: usize, args: &[&str]) -> i32 {
    let out = under_strace(
        env,
        &format!("inject={syscalls}:signal=KILL:when={nth}"),
        args,
    )
    .stdin(Stdio::null())
    .output()
    .unwrap();
    out.status.code().unwrap_or(-1)
}

/// `export -o` killed at any write, flush, link or rename leaves no
/// plaintext under a name: the file appears whole or not at all, and an
/// intermediate name (only possible between the link and the rename of a
/// replacement) is removed by the next export into that directory.
#[test]
fn export_killed_at_any_moment_leaves_no_plaintext_file_behind() {
    if !have_tool("strace") {
        if std::env::var("COFFER_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("strace is missing");
        }
        return;
    }
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "sk_live_killed_export_value");
    let out = env.work.join("out");
    fs::create_dir(&out).unwrap();
    let names = || -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let whole = "STRIPE_KEY=sk_live_killed_export_value\n";
    let mut kills = 0;
    for replacing in [false, true] {
        for calls in ["write", "fsync", "linkat", "renameat,renameat2"] {
            for nth in 1..=3 {
                if !replacing {
                    let _ = fs::remove_file(out.join("app.env"));
                }
                let code = killed_at(
                    &env,
                    calls,
                    nth,
                    &["export", "-V", "api-keys", "-o", "out/app.env"],
                );
                if code != -1 {
                    continue;
                }
                kills += 1;
                for n in names() {
                    let text = fs::read_to_string(out.join(&n)).unwrap();
                    if n == "app.env" {
                        assert_eq!(text, whole, "app.env is whole or absent ({calls} #{nth})");
                    } else {
                        // Only a replacement has an intermediate name, and
                        // only between its link and its rename.
                        assert!(
                            replacing
                                && calls.starts_with("rename")
                                && n.starts_with(".coffer-tmp-out-"),
                            "plaintext left under {n} ({calls} #{nth}, replacing: {replacing})"
                        );
                    }
                }
                env.run(&["export", "-V", "api-keys", "-o", "out/app.env"])
                    .ok();
                assert_eq!(names(), ["app.env"], "the next export cleans up");
            }
        }
    }
    assert!(kills >= 6, "too few kills landed: {kills}");
}
