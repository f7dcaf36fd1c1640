//! Talking to the terminal: status lines, prompts, hidden input, and the
//! callbacks age uses to ask for passphrases and hardware-key touches.
//!
//! Stdout is data, stderr is commentary: everything here writes to stderr
//! or the terminal, except [`Ui::data`].

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, IsTerminal, Write};
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};

use rustix::termios::{self, LocalModes, OptionalActions};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::error::{CliError, CliResult};

/// Output settings for one run.
#[derive(Clone, Copy, Debug)]
pub struct Ui {
    pub quiet: bool,
}

impl Ui {
    /// Prints a status line on stderr, unless `--quiet`.
    pub fn status(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            errln!("{}", msg.as_ref());
        }
    }

    /// Prints a warning on stderr (even with `--quiet`).
    pub fn warn(&self, msg: impl AsRef<str>) {
        errln!("warning: {}", msg.as_ref());
    }
}

pub fn stdin_is_terminal() -> bool {
    io::stdin().is_terminal()
}

pub fn stdout_is_terminal() -> bool {
    io::stdout().is_terminal()
}

/// Shows a prompt and reads one line from `reader` with echo turned off on
/// `fd`, restoring the terminal afterwards. The prompt is shown only once
/// echo is off, so that nothing typed after it can be echoed (or dropped by
/// the mode change). The trailing newline is dropped.
fn read_hidden_line(
    fd: impl AsFd,
    reader: &mut impl BufRead,
    show_prompt: impl FnOnce(),
) -> io::Result<Zeroizing<String>> {
    let orig = termios::tcgetattr(&fd)?;
    let mut quiet = orig.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    termios::tcsetattr(&fd, OptionalActions::Now, &quiet)?;
    show_prompt();
    let mut line = Zeroizing::new(String::new());
    let r = reader.read_line(&mut line);
    let _ = termios::tcsetattr(&fd, OptionalActions::Now, &orig);
    r?;
    while line.ends_with('\n') || line.ends_with('\r') {
        line.pop();
    }
    Ok(line)
}

/// Asks for a secret value on the terminal (stdin), without echo.
pub fn prompt_value(prompt: &str) -> CliResult<Zeroizing<String>> {
    let stdin = io::stdin();
    let mut lock = stdin.lock();
    read_hidden_line(io::stdin(), &mut lock, || {
        errp!("{prompt}");
    })
    .map_err(|e| CliError::new(format!("could not read the value from the terminal: {e}")))
}

/// Asks the user to type `expected` to confirm a deletion. Needs a
/// terminal on stdin; without one the caller must have `--yes`.
pub fn confirm_by_typing(what: &str, expected: &str) -> CliResult {
    confirm_typing(("delete", "deletion"), what, expected)
}

/// Asks the user to type `expected` to confirm an action on a `what`
/// (`("remove", "removal")`, "recipient", "bob"). Needs a terminal on
/// stdin; without one the caller must have `--yes`.
pub fn confirm_typing((verb, noun): (&str, &str), what: &str, expected: &str) -> CliResult {
    if !stdin_is_terminal() {
        return Err(CliError::new(format!(
            "refusing to {verb} {what} {expected:?} without confirmation: stdin is not a terminal"
        ))
        .hint(format!("pass --yes to {verb} without asking")));
    }
    let line = ask(&format!(
        "Enter the {what} name to confirm {noun} (\"{expected}\"): "
    ))?;
    if line.trim_end_matches(['\n', '\r']) != expected {
        return Err(CliError::new(format!(
            "{} {noun} cancelled: the name did not match",
            capitalise(what)
        )));
    }
    Ok(())
}

/// Asks a yes/no question on the terminal (stdin); without a terminal,
/// refuses and points to `--yes`. `what` names the action for the error.
pub fn confirm_yes_no(question: &str, what: &str) -> CliResult {
    if !stdin_is_terminal() {
        return Err(CliError::new(format!(
            "refusing to {what} without confirmation: stdin is not a terminal"
        ))
        .hint("check the list above, then pass --yes"));
    }
    if matches!(
        ask(&format!("{question} [y/N] "))?.trim(),
        "y" | "Y" | "yes"
    ) {
        Ok(())
    } else {
        Err(CliError::new("not confirmed; nothing changed"))
    }
}

/// Prints `prompt` on stderr and returns the line the user answers on
/// stdin (the callers have checked it is a terminal).
pub fn ask(prompt: &str) -> CliResult<String> {
    errp!("{prompt}");
    let mut line = String::new();
    io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::new(format!("could not read the answer: {e}")))?;
    Ok(line)
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// age's callbacks, answered on the controlling terminal (`/dev/tty`), so
/// that they work even when stdin and stdout are pipes. Passphrases are
/// remembered for the rest of the process, so an encrypted SSH key is
/// asked for once, not once per vault.
#[derive(Clone, Default)]
pub struct TermCallbacks {
    cache: Arc<Mutex<HashMap<String, SecretString>>>,
}

fn tty() -> Option<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()
}

impl coffer::crypto::Callbacks for TermCallbacks {
    fn display_message(&self, message: &str) {
        errln!("{message}");
    }

    fn confirm(&self, message: &str, yes_string: &str, no_string: Option<&str>) -> Option<bool> {
        let t = tty()?;
        let no = no_string.unwrap_or("no");
        let mut w = t.try_clone().ok()?;
        let _ = write!(w, "{message} [{yes_string}/{no}]: ");
        let mut line = String::new();
        BufReader::new(t).read_line(&mut line).ok()?;
        Some(line.trim().eq_ignore_ascii_case(yes_string) || line.trim().eq_ignore_ascii_case("y"))
    }

    fn request_public_string(&self, description: &str) -> Option<String> {
        let t = tty()?;
        let mut w = t.try_clone().ok()?;
        let _ = write!(w, "{description} ");
        let mut line = String::new();
        BufReader::new(t).read_line(&mut line).ok()?;
        Some(line.trim_end_matches(['\n', '\r']).to_owned())
    }

    fn request_passphrase(&self, description: &str) -> Option<SecretString> {
        if let Some(p) = self.cache.lock().ok()?.get(description) {
            return Some(SecretString::from(p.expose_secret().to_owned()));
        }
        let t = tty()?;
        let mut w = t.try_clone().ok()?;
        let line = read_hidden_line(&t, &mut BufReader::new(t.try_clone().ok()?), || {
            let _ = write!(w, "{description} ");
        })
        .ok()?;
        let secret = SecretString::from(line.to_string());
        self.cache
            .lock()
            .ok()?
            .insert(description.to_owned(), SecretString::from(line.to_string()));
        Some(secret)
    }
}
