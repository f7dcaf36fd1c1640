//! Shell assignments a shell evaluates back to the exact value: what
//! `export --format shell|fish` writes and what the template filter
//! `| shell` produces.
//!
//! - POSIX (`sh`, `bash`, `dash`, `zsh`, `ksh`): `export NAME='value'`.
//!   Inside single quotes every byte is literal, newlines included; a `'`
//!   in the value ends the quote, adds an escaped quote and reopens it:
//!   `'\''`. Nothing else needs care, so `$`, backslashes, backquotes and
//!   any Unicode text come back as they were.
//! - fish: `set -gx NAME 'value'`. fish's single quotes are literal too,
//!   except that `\'` and `\\` are escapes there, so both are escaped.
//!
//! Values hold no NUL (a secret value cannot), which no shell variable can
//! carry anyway.

use zeroize::Zeroizing;

/// The shells whose syntax [`write`] speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shell {
    /// Any POSIX shell.
    Posix,
    /// fish.
    Fish,
}

/// Appends `value` as one POSIX single-quoted word.
pub fn quote_posix_into(out: &mut String, value: &str) {
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
}

/// Appends `value` as one fish single-quoted word.
pub fn quote_fish_into(out: &mut String, value: &str) {
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
}

/// Writes one assignment per `(variable, value)` pair, in the order given,
/// each ending with a newline. The variable names must already be valid
/// shell names (`envname::var_name` makes them).
pub fn write<'a>(
    shell: Shell,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::new());
    for (name, value) in pairs {
        // Reserve up front: growing the string would leave unwiped copies.
        let need = name.len() + 16 + value.len() * 4;
        if out.capacity() - out.len() < need {
            let mut bigger = Zeroizing::new(String::with_capacity((out.len() + need) * 2));
            bigger.push_str(&out);
            out = bigger;
        }
        match shell {
            Shell::Posix => {
                out.push_str("export ");
                out.push_str(name);
                out.push('=');
                quote_posix_into(&mut out, value);
            }
            Shell::Fish => {
                out.push_str("set -gx ");
                out.push_str(name);
                out.push(' ');
                quote_fish_into(&mut out, value);
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posix_quotes_escape_only_single_quotes() {
        let s = write(Shell::Posix, [("A", "it's $HOME\\n\n`x`")]);
        assert_eq!(&*s, "export A='it'\\''s $HOME\\n\n`x`'\n");
    }

    #[test]
    fn fish_quotes_escape_quotes_and_backslashes() {
        let s = write(Shell::Fish, [("A", "it's a\\b $x")]);
        assert_eq!(&*s, "set -gx A 'it\\'s a\\\\b $x'\n");
    }

    #[test]
    fn many_assignments_keep_their_order() {
        let s = write(Shell::Posix, [("B", "1"), ("A", "")]);
        assert_eq!(&*s, "export B='1'\nexport A=''\n");
    }
}
