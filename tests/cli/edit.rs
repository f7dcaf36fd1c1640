//! `coffer edit` through scripted editors: what changes in the store, and
//! that no plaintext is left anywhere afterwards.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{Run, TestEnv};

/// A private directory on /dev/shm standing in for $XDG_RUNTIME_DIR.
fn runtime_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("coffer-test-run-")
        .tempdir_in("/dev/shm")
        .unwrap()
}

struct Edit {
    env: TestEnv,
    run_dir: tempfile::TempDir,
    /// Where the editor scripts leave what they saw.
    seen: PathBuf,
}

impl Edit {
    fn new() -> Edit {
        let env = TestEnv::new();
        env.init(&["api-keys"]);
        env.put("api-keys", "api-token", "tok-1");
        env.put("api-keys", "db-url", "postgres://u:p@h/db\nsecond line");
        env.put("api-keys", "old-one", "x-old");
        let seen = env.dir.path().join("seen");
        fs::create_dir(&seen).unwrap();
        Edit {
            env,
            run_dir: runtime_dir(),
            seen,
        }
    }

    /// Writes an editor script; returns the EDITOR value that runs it
    /// (with an argument, as `code --wait` has).
    fn editor(&self, name: &str, body: &str) -> String {
        let p = self.env.dir.path().join(name);
        let script = format!(
            "#!/bin/sh\nset -e\nf=\"$2\"\nseen='{}'\nstat -c %a \"$f\" > \"$seen/mode\"\nstat -c %a \"$(dirname \"$f\")\" > \"$seen/dirmode\"\necho \"$f\" > \"$seen/path\"\n{body}\n",
            self.seen.display()
        );
        fs::write(&p, script).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        format!("{} --flag", p.display())
    }

    fn run(&self, editor: &str, args: &[&str]) -> Run {
        let mut full = vec!["edit", "-V", "api-keys"];
        full.extend_from_slice(args);
        self.env.run_with(&full, |c| {
            c.env("EDITOR", editor)
                .env("XDG_RUNTIME_DIR", self.run_dir.path());
        })
    }

    /// Nothing is left in the runtime directory.
    #[track_caller]
    fn assert_no_plaintext_left(&self) {
        let left: Vec<_> = fs::read_dir(self.run_dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    fn seen(&self, what: &str) -> String {
        fs::read_to_string(self.seen.join(what))
            .unwrap_or_default()
            .trim()
            .to_owned()
    }
}

fn store_file(env: &TestEnv, name: &str) -> PathBuf {
    env.store().join("api-keys").join(name)
}

#[test]
fn an_edit_changes_adds_and_deletes_only_what_the_editor_changed() {
    let t = Edit::new();
    let before = t.env.snapshot();
    let editor = t.editor(
        "ed.sh",
        "cp \"$f\" \"$seen/doc\"\n\
         sed -i 's/^API_TOKEN=.*/API_TOKEN=tok-2/' \"$f\"\n\
         sed -i '/^OLD_ONE=/d' \"$f\"\n\
         printf 'NEW_ONE=\"two\\\\nlines \\\\\"q\\\\\"\"\\n' >> \"$f\"",
    );
    let r = t.run(&editor, &["--yes"]).ok();
    assert!(
        r.stderr().contains("~ api-token\n+ new-one\n- old-one\n"),
        "{}",
        r.stderr()
    );
    r.stderr_has("Vault api-keys: 1 created, 1 updated, 1 deleted.");
    // The document is what `export` writes, under a comment header.
    let doc = t.seen("doc");
    assert!(doc.starts_with("# coffer edit: vault api-keys."), "{doc}");
    assert!(
        doc.contains("API_TOKEN=tok-1\nDB_URL=\"postgres://u:p@h/db\nsecond line\"\nOLD_ONE=x-old")
    );
    // Private: 0600 in a 0700 directory under $XDG_RUNTIME_DIR, gone now.
    assert_eq!(t.seen("mode"), "600");
    assert_eq!(t.seen("dirmode"), "700");
    let path = t.seen("path");
    assert!(
        path.starts_with(&t.run_dir.path().display().to_string()),
        "{path}"
    );
    assert!(!Path::new(&path).exists());
    t.assert_no_plaintext_left();

    assert_eq!(t.env.get("api-keys", "api-token"), "tok-2");
    assert_eq!(t.env.get("api-keys", "new-one"), "two\nlines \"q\"");
    t.env
        .run(&["get", "-V", "api-keys", "-n", "old-one"])
        .fails("not found");
    // Only those files changed: db-url's file is untouched.
    let after = t.env.snapshot();
    let changed: Vec<String> = after
        .iter()
        .filter(|(p, b)| before.iter().find(|(q, _)| q == p).map(|(_, c)| c) != Some(b))
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(changed, ["api-token.age", "new-one.age", "vault.toml"]);
    assert!(!store_file(&t.env, "old-one.age").exists());
}

#[test]
fn an_unchanged_file_or_a_failing_editor_changes_nothing() {
    let t = Edit::new();
    let before = t.env.snapshot();
    let untouched = t.editor("noop.sh", "true");
    t.run(&untouched, &[])
        .ok()
        .stderr_has("The file was not changed: nothing to do.");
    let failing = t.editor(
        "fail.sh",
        "sed -i 's/^API_TOKEN=.*/API_TOKEN=zzz/' \"$f\"\nexit 3",
    );
    t.run(&failing, &[])
        .transcript("edit/the-editor-exited-with-status-3");
    assert_eq!(t.env.snapshot(), before);
    t.assert_no_plaintext_left();
}

#[test]
fn a_parse_error_reopens_the_file_with_the_error_on_top() {
    let t = Edit::new();
    // First round: a broken line. Second round: the error is on top, and
    // the line is fixed.
    let editor = t.editor(
        "twice.sh",
        "if head -1 \"$f\" | grep -q '^#! '; then\n\
           head -3 \"$f\" > \"$seen/errors\"\n\
           sed -i 's/^this is not an assignment$/FIXED_ONE=ok/' \"$f\"\n\
         else\n\
           echo 'this is not an assignment' >> \"$f\"\n\
         fi",
    );
    let r = t.run(&editor, &[]).ok();
    r.stderr_has("the file has 1 problem; opening it again");
    let errors = t.seen("errors");
    assert!(
        errors.starts_with("#! line 11: expected NAME=value"),
        "{errors}"
    );
    assert_eq!(t.env.get("api-keys", "fixed-one"), "ok");
    t.assert_no_plaintext_left();
}

#[test]
fn a_parse_error_left_unfixed_changes_nothing() {
    let t = Edit::new();
    let before = t.env.snapshot();
    let editor = t.editor(
        "broken.sh",
        "if ! head -1 \"$f\" | grep -q '^#! '; then echo 'lower=1' >> \"$f\"; fi",
    );
    t.run(&editor, &[])
        .stderr_has("the file has 1 problem")
        .stderr_has("The file was not changed: nothing to do.");
    assert_eq!(t.env.snapshot(), before);
}

#[test]
fn deleting_without_a_terminal_needs_yes() {
    let t = Edit::new();
    let before = t.env.snapshot();
    let editor = t.editor("del.sh", "sed -i '/^OLD_ONE=/d' \"$f\"");
    t.run(&editor, &[])
        .transcript("edit/deleting-without-a-terminal-needs-yes");
    assert_eq!(t.env.snapshot(), before);
    t.assert_no_plaintext_left();
}

#[test]
fn a_store_change_while_the_editor_is_open_stops_the_edit() {
    let t = Edit::new();
    let coffer = env!("CARGO_BIN_EXE_coffer");
    let editor = t.editor(
        "race.sh",
        &format!(
            "sed -i 's/^API_TOKEN=.*/API_TOKEN=mine/' \"$f\"\n\
             printf 'theirs' | {coffer} update -V api-keys -n db-url\n\
             printf 'theirs' | {coffer} create -V api-keys -n other-one"
        ),
    );
    t.run(&editor, &[])
        .transcript("edit/vault-changed-while-the-editor-was-open");
    // Their changes stay; mine was not applied.
    assert_eq!(t.env.get("api-keys", "db-url"), "theirs");
    assert_eq!(t.env.get("api-keys", "api-token"), "tok-1");
    t.assert_no_plaintext_left();
}

#[test]
fn one_value_is_edited_raw() {
    let t = Edit::new();
    let editor = t.editor(
        "one.sh",
        "cp \"$f\" \"$seen/doc\"\nprintf 'new\\nvalue\\n' > \"$f\"",
    );
    t.run(&editor, &["-n", "db-url"])
        .ok()
        .stderr_has("~ db-url\n");
    assert_eq!(t.seen("doc"), "postgres://u:p@h/db\nsecond line");
    assert_eq!(t.env.get("api-keys", "db-url"), "new\nvalue");
    // A new name is created.
    t.run(&editor, &["-n", "brand-new"])
        .ok()
        .stderr_has("+ brand-new\n");
    assert_eq!(t.env.get("api-keys", "brand-new"), "new\nvalue");
    t.assert_no_plaintext_left();
}

#[test]
fn ctrl_c_in_the_editor_changes_nothing_and_leaves_nothing() {
    let t = Edit::new();
    let before = t.env.snapshot();
    // The terminal sends SIGINT to the whole foreground process group:
    // the editor and coffer.
    let editor = t.editor(
        "int.sh",
        "sed -i 's/^API_TOKEN=.*/API_TOKEN=zzz/' \"$f\"\nkill -INT 0\nsleep 5",
    );
    let r = t.env.run_with(&["edit", "-V", "api-keys"], |c| {
        c.env("EDITOR", &editor)
            .env("XDG_RUNTIME_DIR", t.run_dir.path())
            .process_group(0);
    });
    r.transcript("edit/the-editor-was-interrupted");
    assert_eq!(t.env.snapshot(), before);
    t.assert_no_plaintext_left();
}

#[test]
fn a_killed_edit_leaves_a_directory_the_next_edit_removes() {
    let t = Edit::new();
    let editor = t.editor("hang.sh", "echo $$ > \"$seen/pid\"\nexec sleep 30");
    let mut cmd = t.env.cmd();
    cmd.args(["edit", "-V", "api-keys"])
        .env("EDITOR", &editor)
        .env("XDG_RUNTIME_DIR", t.run_dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    while t.seen("pid").is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the editor never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let editor_pid: i32 = t.seen("pid").parse().unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(editor_pid).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let left: Vec<String> = fs::read_dir(t.run_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        left[0].starts_with(&format!("coffer-edit-{}-", child.id())),
        "{left:?}"
    );
    let noop = t.editor("noop.sh", "true");
    t.run(&noop, &[])
        .ok()
        .stderr_has("left by an edit that was killed");
    t.assert_no_plaintext_left();
}

#[test]
fn a_disk_backed_directory_needs_consent() {
    let t = Edit::new();
    let disk = t.env.dir.path().join("disk-run");
    fs::create_dir(&disk).unwrap();
    let on_disk = fs::read_to_string("/proc/self/mountinfo")
        .map(|_| !is_tmpfs(&disk))
        .unwrap_or(false);
    if !on_disk {
        eprintln!("note: skipping: the test directory is on a memory file system");
        return;
    }
    let editor = t.editor("ed.sh", "sed -i 's/^API_TOKEN=.*/API_TOKEN=disk/' \"$f\"");
    t.env
        .run_with(&["edit", "-V", "api-keys"], |c| {
            c.env("EDITOR", &editor).env("XDG_RUNTIME_DIR", &disk);
        })
        .transcript("edit/not-on-a-memory-file-system");
    assert_eq!(t.env.get("api-keys", "api-token"), "tok-1");
    t.env
        .run_with(&["edit", "-V", "api-keys", "--yes"], |c| {
            c.env("EDITOR", &editor).env("XDG_RUNTIME_DIR", &disk);
        })
        .ok();
    assert_eq!(t.env.get("api-keys", "api-token"), "disk");
    assert_eq!(fs::read_dir(&disk).unwrap().count(), 0);
}

fn is_tmpfs(p: &Path) -> bool {
    let s = rustix::fs::statfs(p).unwrap();
    #[allow(clippy::unnecessary_cast)]
    let t = s.f_type as i64;
    t == 0x0102_1994
}

#[test]
fn an_edit_of_a_value_due_for_rotation_says_it_clears_the_mark() {
    let t = Edit::new();
    let bob = t.env.dir.path().join("bob.txt");
    let bob_key = t.env.identity_file(&bob, 0o600);
    t.env.run(&["recipients", "add", "bob", &bob_key]).ok();
    t.env.run(&["recipients", "remove", "bob", "--yes"]).ok();
    let editor = t.editor(
        "rot.sh",
        "sed -i 's/^API_TOKEN=.*/API_TOKEN=rotated/' \"$f\"",
    );
    t.run(&editor, &[])
        .ok()
        .stderr_has("~ api-token (clears its rotation mark)\n");
    let due = t.env.run(&["rotation", "--json"]).ok().stdout();
    assert!(!due.contains("api-token"), "{due}");
    assert!(due.contains("db-url"), "{due}");
}

#[test]
fn a_contributor_edits_without_seeing_values_and_adds_contributions() {
    let t = Edit::new();
    let dave = t.env.dir.path().join("dave.txt");
    t.env.identity_file(&dave, 0o600);
    let dave = dave.to_str().unwrap();
    let editor = t.editor(
        "contrib.sh",
        "cp \"$f\" \"$seen/doc\"\nprintf 'NEW_ONE=from-dave\\nAPI_TOKEN=dave-token\\n' >> \"$f\"",
    );
    // Without --contribute, the hint says how.
    t.run(&editor, &["-i", dave])
        .transcript("edit/no-identity-can-open-vault-api-keys");
    t.run(&editor, &["--contribute", "-i", dave])
        .ok()
        .stderr_has("~ api-token (unverified contribution)\n+ new-one (unverified contribution)\n")
        .stderr_has("coffer verify --accept --vault api-keys");
    let doc = t.seen("doc");
    assert!(!doc.contains("tok-1") && !doc.contains("postgres"), "{doc}");
    assert!(doc.contains("api-token db-url old-one"), "{doc}");
    // Nothing was deleted, and the contributions wait for a recipient.
    assert!(store_file(&t.env, "old-one.age").exists());
    let list = t.env.run(&["list", "-V", "api-keys"]).ok().stdout();
    assert!(list.contains("unverified contribution"), "{list}");
    t.assert_no_plaintext_left();
}

#[test]
fn a_runtime_directory_of_another_user_is_refused() {
    let t = Edit::new();
    // Not on tmpfs: ownership is checked first (and the path is one the
    // transcript can show).
    let theirs = t.env.dir.path().join("theirs");
    fs::create_dir(&theirs).unwrap();
    fs::set_permissions(&theirs, fs::Permissions::from_mode(0o777)).unwrap();
    let other = if rustix::process::getuid().is_root() {
        65534
    } else {
        0
    };
    if rustix::fs::chown(&theirs, Some(rustix::fs::Uid::from_raw(other)), None).is_err() {
        eprintln!("note: skipping: cannot give a directory to another user here");
        return;
    }
    let editor = t.editor("ed.sh", "sed -i 's/^API_TOKEN=.*/API_TOKEN=x/' \"$f\"");
    t.env
        .run_with(&["edit", "-V", "api-keys", "--yes"], |c| {
            c.env("EDITOR", &editor).env("XDG_RUNTIME_DIR", &theirs);
        })
        .transcript("edit/it-belongs-to-another-user");
    assert_eq!(fs::read_dir(&theirs).unwrap().count(), 0);
    assert_eq!(t.env.get("api-keys", "api-token"), "tok-1");
}

#[test]
fn a_file_saved_as_another_encoding_changes_nothing() {
    let t = Edit::new();
    let before = t.env.snapshot();
    let editor = t.editor("latin1.sh", "printf 'API_TOKEN=caf\\351\\n' >> \"$f\"");
    t.run(&editor, &[])
        .transcript("edit/the-edited-file-is-not-valid-utf-8");
    assert_eq!(t.env.snapshot(), before);
    t.assert_no_plaintext_left();
}

#[test]
fn an_editor_that_removes_or_replaces_the_file_changes_nothing() {
    let t = Edit::new();
    let before = t.env.snapshot();
    let rm = t.editor("rm.sh", "rm \"$f\"");
    t.run(&rm, &[])
        .transcript("edit/could-not-read-the-edited-file-back");
    let target = t.env.dir.path().join("elsewhere.env");
    fs::write(&target, "API_TOKEN=from-a-link\n").unwrap();
    let link = t.editor(
        "link.sh",
        &format!("rm \"$f\"\nln -s '{}' \"$f\"", target.display()),
    );
    t.run(&link, &[])
        .transcript("edit/the-edited-file-was-replaced-by-a-link");
    assert_eq!(t.env.snapshot(), before);
    t.assert_no_plaintext_left();
}

#[test]
fn a_missing_runtime_directory_falls_back_to_dev_shm() {
    let t = Edit::new();
    let missing = t.env.dir.path().join("no-such-run-dir");
    let editor = t.editor("ed.sh", "sed -i 's/^API_TOKEN=.*/API_TOKEN=shm/' \"$f\"");
    t.env
        .run_with(&["edit", "-V", "api-keys"], |c| {
            c.env("EDITOR", &editor).env("XDG_RUNTIME_DIR", &missing);
        })
        .ok()
        .stderr_has("is not a directory; not using it");
    assert!(
        t.seen("path").starts_with("/dev/shm/coffer-edit-"),
        "{}",
        t.seen("path")
    );
    assert!(!Path::new(&t.seen("path")).exists());
    assert_eq!(t.env.get("api-keys", "api-token"), "shm");
}
