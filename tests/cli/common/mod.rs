//! The test environment: every command runs with a cleared environment, a
//! temporary HOME and XDG config directory, and a fixed PATH, so a test can
//! never see the developer's real keys or store.

#![allow(dead_code)]

pub mod transcript;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// PATH for every command: the system's tools only.
pub const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A temporary world for one test.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub config: PathBuf,
    pub work: PathBuf,
}

/// The result of one command, with helpers that make failures readable.
pub struct Run {
    pub args: Vec<String>,
    pub output: Output,
    /// The test's directories and their placeholders, for transcripts.
    pub redactions: Vec<(String, &'static str)>,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }
    fn describe(&self) -> String {
        format!(
            "coffer {:?}\n--- status: {}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.args,
            self.code(),
            self.stdout(),
            self.stderr()
        )
    }
    /// Asserts success and returns self.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert!(
            self.output.status.success(),
            "expected success:\n{}",
            self.describe()
        );
        self
    }
    /// Asserts exit status 1 and that stderr contains `needle`.
    #[track_caller]
    pub fn fails(self, needle: &str) -> Run {
        assert_eq!(self.code(), 1, "expected exit 1:\n{}", self.describe());
        assert!(
            self.stderr().contains(needle),
            "expected {needle:?} in stderr:\n{}",
            self.describe()
        );
        self
    }
    /// Asserts that stderr contains `needle`.
    #[track_caller]
    pub fn stderr_has(self, needle: &str) -> Run {
        assert!(
            self.stderr().contains(needle),
            "expected {needle:?} in stderr:\n{}",
            self.describe()
        );
        self
    }
    /// Stderr with the test's directories replaced by placeholders.
    pub fn stderr_normalised(&self) -> String {
        transcript::normalise(&self.stderr(), &self.redactions)
    }
    /// Asserts that the whole stderr (normalised) is transcript `name`,
    /// `tests/transcripts/<name>.stderr`; `COFFER_BLESS=1` rewrites it.
    #[track_caller]
    pub fn transcript(self, name: &str) -> Run {
        transcript::assert_file(
            &transcript::path(name),
            &self.stderr_normalised(),
            &self.describe(),
        );
        self
    }
}

/// Several commands' stderr in one transcript, for a test that loops over
/// cases: each run is recorded under a `--- <case>: coffer <args>` line,
/// with its exit code when it is not 1.
pub struct Transcript {
    name: String,
    text: String,
}

impl Transcript {
    pub fn new(name: &str) -> Transcript {
        Transcript {
            name: name.to_owned(),
            text: String::new(),
        }
    }
    /// Records `r`'s arguments and stderr under `case`; returns `r` for
    /// more checks.
    pub fn record(&mut self, case: &str, r: Run) -> Run {
        let args = transcript::normalise(&format!("{:?}", r.args), &r.redactions);
        self.text.push_str(&format!("--- {case}: coffer {args}\n"));
        if r.code() != 1 {
            self.text.push_str(&format!("[exit {}]\n", r.code()));
        }
        self.text.push_str(&r.stderr_normalised());
        r
    }
    /// Compares everything recorded with the transcript file.
    #[track_caller]
    pub fn check(self) {
        let context = format!("transcript {}:\n{}", self.name, self.text);
        transcript::assert_file(&transcript::path(&self.name), &self.text, &context);
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("coffer-test-")
            .tempdir()
            .unwrap();
        let home = dir.path().join("home");
        let config = dir.path().join("config");
        let work = dir.path().join("work");
        for d in [&home, &config, &work] {
            fs::create_dir_all(d).unwrap();
        }
        TestEnv {
            dir,
            home,
            config,
            work,
        }
    }

    /// The store directory of the default layout.
    pub fn store(&self) -> PathBuf {
        self.work.join("vaults")
    }

    /// The default identity file.
    pub fn default_identity(&self) -> PathBuf {
        self.config.join("coffer/identity.txt")
    }

    /// The public key of the default identity, from its `# public key:`
    /// comment.
    pub fn default_public_key(&self) -> String {
        fs::read_to_string(self.default_identity())
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("# public key: "))
            .expect("the identity file names its public key")
            .to_owned()
    }

    /// A `coffer` command in the work directory with a hermetic environment.
    /// The directories a command's output may name, with the placeholders
    /// transcripts show instead (see `transcript::normalise`).
    pub fn redactions(&self) -> Vec<(String, &'static str)> {
        let mut out = Vec::new();
        for (dir, placeholder) in [
            (self.store(), "[STORE]"),
            (self.work.clone(), "[WORK]"),
            (self.config.clone(), "[CONFIG]"),
            (self.home.clone(), "[HOME]"),
            (self.dir.path().to_owned(), "[TMP]"),
        ] {
            // Also the resolved form, in case the temporary directory is
            // reached through a symbolic link.
            if let Ok(real) = dir.canonicalize() {
                out.push((real.display().to_string(), placeholder));
            }
            out.push((dir.display().to_string(), placeholder));
        }
        out
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_coffer"));
        c.env_clear()
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", &self.config)
            .env("PATH", PATH)
            .env("USER", "alice")
            .env("TMPDIR", self.dir.path())
            .current_dir(&self.work)
            .stdin(Stdio::null());
        c
    }

    /// Runs coffer with `args` and no stdin.
    #[must_use = "check the status with .ok() or .fails()"]
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, |_| {})
    }

    /// Runs coffer with `args` after `f` adjusts the command.
    #[must_use = "check the status with .ok() or .fails()"]
    pub fn run_with(&self, args: &[&str], f: impl FnOnce(&mut Command)) -> Run {
        let mut c = self.cmd();
        c.args(args);
        f(&mut c);
        let output = c.output().unwrap();
        Run {
            args: args.iter().map(|s| s.to_string()).collect(),
            output,
            redactions: self.redactions(),
        }
    }

    /// Runs coffer with `stdin` piped in.
    #[must_use = "check the status with .ok() or .fails()"]
    pub fn run_stdin(&self, args: &[&str], stdin: &[u8]) -> Run {
        let mut c = self.cmd();
        c.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        // A command that refuses its arguments exits before reading stdin.
        match child.stdin.take().unwrap().write_all(stdin) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            r => r.unwrap(),
        }
        let output = child.wait_with_output().unwrap();
        Run {
            args: args.iter().map(|s| s.to_string()).collect(),
            output,
            redactions: self.redactions(),
        }
    }

    /// `coffer init` (which creates the default identity) plus the given
    /// vaults. Returns alice's recipient.
    pub fn init(&self, vaults: &[&str]) -> String {
        let r = self.run(&["keygen"]).ok();
        let recipient = r.stdout().trim().to_owned();
        self.run(&["init"]).ok();
        for v in vaults {
            self.run(&["vault", "create", v]).ok();
        }
        recipient
    }

    /// Creates a secret from stdin.
    pub fn put(&self, vault: &str, name: &str, value: &str) {
        self.run_stdin(&["create", "-V", vault, "-n", name], value.as_bytes())
            .ok();
    }

    /// Reads a secret's value.
    pub fn get(&self, vault: &str, name: &str) -> String {
        self.run(&["get", "-V", vault, "-n", name]).ok().stdout()
    }

    /// Every file under the store, with its bytes, for "nothing changed"
    /// assertions.
    pub fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out: Vec<_> = files(&self.store())
            .into_iter()
            .map(|(p, is_file)| {
                let bytes = if is_file {
                    fs::read(&p).unwrap()
                } else {
                    b"<link>".to_vec()
                };
                (p, bytes)
            })
            .collect();
        out.sort();
        out
    }

    /// Every file under the store with its size and modification time,
    /// without reading it (for stores holding huge sparse files).
    pub fn snapshot_names(&self) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
        let mut out: Vec<_> = files(&self.store())
            .into_iter()
            .map(|(p, _)| {
                let m = fs::symlink_metadata(&p).unwrap();
                (p, m.len(), m.modified().unwrap())
            })
            .collect();
        out.sort();
        out
    }

    /// Writes an identity file with the given mode; returns its recipient.
    pub fn identity_file(&self, path: &Path, mode: u32) -> String {
        let id = age::x25519::Identity::generate();
        use age::secrecy::ExposeSecret;
        fs::write(path, format!("{}\n", id.to_string().expose_secret())).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
        id.to_public().to_string()
    }

    /// Gives `name` an identity file of its own (`NAME.txt`, 0600) and
    /// adds them as a recipient; returns the identity file's path.
    pub fn add_member(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.txt"));
        let key = self.identity_file(&path, 0o600);
        self.run(&["recipients", "add", name, &key]).ok();
        path
    }
}

/// Every entry under `dir` that is not a directory (links are not
/// followed), with whether it is a regular file.
fn files(dir: &Path) -> Vec<(PathBuf, bool)> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let e = e.unwrap();
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            out.extend(files(&e.path()));
        } else {
            out.push((e.path(), ft.is_file()));
        }
    }
    out
}

/// Returns whether an external tool is on PATH. When it is not, the test
/// is skipped with a note, unless `COFFER_REQUIRE_TOOLS=1` (as in CI), in
/// which case it fails.
pub fn have_tool(name: &str) -> bool {
    let found = PATH.split(':').any(|d| Path::new(d).join(name).is_file());
    if !found {
        if std::env::var("COFFER_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("{name} is required (COFFER_REQUIRE_TOOLS=1) but not on {PATH}");
        }
        eprintln!("note: skipping: {name} is not installed");
    }
    found
}

/// Runs an external tool in the test environment.
pub fn tool(env: &TestEnv, program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env_clear()
        .env("HOME", &env.home)
        .env("PATH", PATH)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .current_dir(&env.work)
        .output()
        .unwrap()
}

/// Runs a command with a pseudo-terminal as its stdin, stdout and stderr.
/// Waits for `prompt` to appear before typing `input` (a program turning
/// echo off flushes pending input). Returns everything the terminal showed
/// and the exit code.
pub fn run_in_pty(cmd: Command, prompt: Option<&str>, input: &str) -> (String, i32) {
    run_in_pty_with(cmd, prompt, input, || {})
}

/// Like [`run_in_pty`], calling `at_prompt` once the prompt is shown and
/// before typing, while the program waits.
pub fn run_in_pty_with(
    mut cmd: Command,
    prompt: Option<&str>,
    input: &str,
    at_prompt: impl FnOnce(),
) -> (String, i32) {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let slave = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().unwrap())
        .unwrap();
    cmd.stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave);
    let mut child = cmd.spawn().unwrap();
    drop(cmd); // closes our copies of the slave
    let master = fs::File::from(master);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let seen = seen.clone();
        let mut m = master.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = m.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    if let Some(p) = prompt {
        let start = Instant::now();
        while !String::from_utf8_lossy(&seen.lock().unwrap()).contains(p) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "prompt {p:?} never appeared: {:?}",
                String::from_utf8_lossy(&seen.lock().unwrap())
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    at_prompt();
    (&master).write_all(input.as_bytes()).unwrap();
    let status = child.wait().unwrap();
    // The reader ends with EIO once the last slave descriptor closes.
    reader.join().unwrap();
    let out = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    (out, status.code().unwrap_or(-1))
}

// The configuration of every `proptest!` block here is the library's own:
// a failure prints its seed as `COFFER_TEST_SEED=…`, and a run with that
// variable set tries that seed first. The file is shared, not copied: the
// integration tests cannot see the library's test-only modules.
#[path = "../../../src/test_seed.rs"]
mod test_seed;
pub use test_seed::config as proptest_config;
