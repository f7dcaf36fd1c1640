//! Environment variable names for secrets, and back.
//!
//! A secret's variable is its name upper-cased with `-` turned into `_`:
//! `stripe-secret-key` is `STRIPE_SECRET_KEY`. Secret names hold only
//! `a-z`, `0-9` and `-`, so the mapping is one-to-one and reversible; a
//! variable maps back only if it is exactly the image of a valid secret
//! name (so `lower_case`, `A` and `_X` do not, and are reported rather than
//! guessed at).

use std::fmt;

use crate::name::SecretName;

/// Returns the environment variable for a secret: `prefix` followed by the
/// name upper-cased with `-` turned into `_`.
pub fn var_name(prefix: &str, name: &SecretName) -> String {
    let mut out = String::with_capacity(prefix.len() + name.as_str().len());
    out.push_str(prefix);
    out.extend(name.as_str().chars().map(|c| match c {
        '-' => '_',
        c => c.to_ascii_uppercase(),
    }));
    out
}

/// Why a variable name does not map to a secret name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unmappable {
    /// It has a character other than `A-Z`, `0-9` and `_` (a lowercase
    /// letter would not survive the trip back).
    Characters,
    /// It maps to a name outside the platform's rule (`why` says how).
    Rule(&'static str),
    /// It maps to `vault-key`, which names the vault's key file.
    Reserved,
}

impl fmt::Display for Unmappable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unmappable::Characters => f.write_str("only A-Z, 0-9 and _ map to secret names"),
            Unmappable::Rule(why) => write!(f, "as a secret name, {why}"),
            Unmappable::Reserved => f.write_str("it maps to vault-key, a reserved name"),
        }
    }
}

/// Returns the secret name a variable stands for: `STRIPE_SECRET_KEY` is
/// `stripe-secret-key`.
pub fn secret_name(var: &str) -> Result<SecretName, Unmappable> {
    if var.is_empty()
        || !var
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(Unmappable::Characters);
    }
    let name: String = var
        .chars()
        .map(|c| match c {
            '_' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    match name.parse::<SecretName>() {
        Ok(n) => Ok(n),
        Err(crate::Error::InvalidName { .. }) if name == crate::name::RESERVED_SECRET_NAME => {
            Err(Unmappable::Reserved)
        }
        Err(crate::Error::InvalidName { reason, .. }) => Err(Unmappable::Rule(reason)),
        Err(_) => Err(Unmappable::Characters),
    }
}

/// Why a variable changes how programs load or start, so that a secret
/// may not set it without the user's say-so.
///
/// A secret's name is chosen by whoever wrote it, and a keyless writer of
/// the repository can plant a secret (or a contribution) under any name:
/// as `ld-preload` or `bash-env` it would run their code in every `coffer
/// run`. The list covers the dynamic loader, shell start-up, interpreter
/// start-up options and search paths, git's program hooks, and the
/// variables that say where programs find their configuration and tools.
/// It cannot be complete (any program may read any variable), so it holds
/// what is well known to run code; `--prefix` avoids the question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hazard {
    /// The dynamic loader's variables (`LD_*`, `DYLD_*`, `GCONV_PATH`):
    /// preload or search a library of the setter's choice.
    Loader,
    /// Read by a shell as it starts or runs (`BASH_ENV`, `ENV`,
    /// `PROMPT_COMMAND`, `PS4`, `IFS`…): run commands or change how every
    /// script is parsed.
    Shell,
    /// Interpreter options and module paths (`NODE_OPTIONS`, `PYTHONPATH`,
    /// `PERL5OPT`, `JAVA_TOOL_OPTIONS`…): load code at start-up.
    Interpreter,
    /// git's variables (`GIT_*`): programs to run (`GIT_SSH_COMMAND`,
    /// `GIT_EXEC_PATH`), configuration to read (`GIT_CONFIG_*`, which can
    /// name a hook or `core.fsmonitor`) and repositories to use.
    Git,
    /// Where programs look for commands, configuration and scratch files
    /// (`PATH`, `HOME`, `TMPDIR`, `XDG_CONFIG_HOME`, `EDITOR`…).
    Lookup,
}

impl Hazard {
    /// What such a variable does, for an error message.
    pub fn what(self) -> &'static str {
        match self {
            Hazard::Loader => "it tells the dynamic loader which libraries to load",
            Hazard::Shell => "shells read it as they start and run commands from it",
            Hazard::Interpreter => "it makes an interpreter load code as it starts",
            Hazard::Git => "it tells git which programs and configuration to use",
            Hazard::Lookup => "it says where programs find commands, configuration or files",
        }
    }
}

/// Variables refused by name. Secret variables hold only `A-Z`, `0-9` and
/// `_`, so names with other characters (`BASH_FUNC_f%%`) cannot occur.
const HAZARDS: &[(&str, Hazard)] = &[
    ("GCONV_PATH", Hazard::Loader),
    ("BASH_ENV", Hazard::Shell),
    ("ENV", Hazard::Shell),
    ("ZDOTDIR", Hazard::Shell),
    ("PROMPT_COMMAND", Hazard::Shell),
    ("SHELLOPTS", Hazard::Shell),
    ("BASHOPTS", Hazard::Shell),
    ("PS1", Hazard::Shell),
    ("PS2", Hazard::Shell),
    ("PS3", Hazard::Shell),
    ("PS4", Hazard::Shell),
    ("IFS", Hazard::Shell),
    ("CDPATH", Hazard::Shell),
    ("GLOBIGNORE", Hazard::Shell),
    ("SHELL", Hazard::Shell),
    ("NODE_OPTIONS", Hazard::Interpreter),
    ("NODE_PATH", Hazard::Interpreter),
    ("PYTHONSTARTUP", Hazard::Interpreter),
    ("PYTHONPATH", Hazard::Interpreter),
    ("PYTHONHOME", Hazard::Interpreter),
    ("PYTHONUSERBASE", Hazard::Interpreter),
    ("PYTHONWARNINGS", Hazard::Interpreter),
    ("PYTHONINSPECT", Hazard::Interpreter),
    ("PERL5OPT", Hazard::Interpreter),
    ("PERL5LIB", Hazard::Interpreter),
    ("PERLLIB", Hazard::Interpreter),
    ("PERL5DB", Hazard::Interpreter),
    ("RUBYOPT", Hazard::Interpreter),
    ("RUBYLIB", Hazard::Interpreter),
    ("GEM_PATH", Hazard::Interpreter),
    ("GEM_HOME", Hazard::Interpreter),
    ("JAVA_TOOL_OPTIONS", Hazard::Interpreter),
    ("_JAVA_OPTIONS", Hazard::Interpreter),
    ("JDK_JAVA_OPTIONS", Hazard::Interpreter),
    ("CLASSPATH", Hazard::Interpreter),
    ("LUA_INIT", Hazard::Interpreter),
    ("LUA_PATH", Hazard::Interpreter),
    ("LUA_CPATH", Hazard::Interpreter),
    ("PHPRC", Hazard::Interpreter),
    ("PHP_INI_SCAN_DIR", Hazard::Interpreter),
    ("PATH", Hazard::Lookup),
    ("HOME", Hazard::Lookup),
    ("TMPDIR", Hazard::Lookup),
    ("XDG_CONFIG_HOME", Hazard::Lookup),
    ("XDG_DATA_HOME", Hazard::Lookup),
    ("EDITOR", Hazard::Lookup),
    ("VISUAL", Hazard::Lookup),
    ("PAGER", Hazard::Lookup),
    ("MANPAGER", Hazard::Lookup),
    ("BROWSER", Hazard::Lookup),
    ("LESSOPEN", Hazard::Lookup),
    ("LESSCLOSE", Hazard::Lookup),
    ("SSH_ASKPASS", Hazard::Lookup),
    ("SUDO_ASKPASS", Hazard::Lookup),
];

/// Prefixes refused whole: every variable of the loader and of git (git
/// adds new ones, several of which run programs or read configuration).
const HAZARD_PREFIXES: &[(&str, Hazard)] = &[
    ("LD_", Hazard::Loader),
    ("DYLD_", Hazard::Loader),
    ("GIT_", Hazard::Git),
];

/// Returns why setting `var` changes how programs load or start, or `None`
/// when it is an ordinary variable. See [`Hazard`] for the reasoning.
pub fn hazard(var: &str) -> Option<Hazard> {
    HAZARDS
        .iter()
        .find(|(name, _)| *name == var)
        .or_else(|| HAZARD_PREFIXES.iter().find(|(p, _)| var.starts_with(p)))
        .map(|&(_, h)| h)
}

/// Returns whether `s` may start an environment variable name as shells
/// know them: `[A-Za-z_][A-Za-z0-9_]*`, or empty.
pub fn is_valid_prefix(s: &str) -> bool {
    s.bytes()
        .enumerate()
        .all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> SecretName {
        s.parse().unwrap()
    }

    #[test]
    fn maps_names_to_variables() {
        assert_eq!(var_name("", &n("stripe-secret-key")), "STRIPE_SECRET_KEY");
        assert_eq!(var_name("APP_", &n("db-9")), "APP_DB_9");
        assert_eq!(var_name("", &n("a--b")), "A__B");
    }

    #[test]
    fn maps_variables_back() {
        for name in ["stripe-secret-key", "abc", "0ab", "a--b", &"x".repeat(63)] {
            assert_eq!(secret_name(&var_name("", &n(name))), Ok(n(name)));
        }
    }

    #[test]
    fn reports_variables_that_do_not_map() {
        assert_eq!(secret_name("lower_case"), Err(Unmappable::Characters));
        assert_eq!(secret_name("Mixed"), Err(Unmappable::Characters));
        assert_eq!(secret_name("A.B"), Err(Unmappable::Characters));
        assert_eq!(secret_name(""), Err(Unmappable::Characters));
        assert_eq!(secret_name("É"), Err(Unmappable::Characters));
        assert!(matches!(secret_name("A"), Err(Unmappable::Rule(_))));
        assert!(matches!(secret_name("_XY"), Err(Unmappable::Rule(_))));
        assert!(matches!(secret_name("XY_"), Err(Unmappable::Rule(_))));
        assert!(matches!(
            secret_name(&"X".repeat(64)),
            Err(Unmappable::Rule(_))
        ));
        assert_eq!(secret_name("VAULT_KEY"), Err(Unmappable::Reserved));
    }

    #[test]
    fn variables_that_load_or_start_code_are_hazards() {
        for (var, h) in [
            ("LD_PRELOAD", Hazard::Loader),
            ("LD_LIBRARY_PATH", Hazard::Loader),
            ("DYLD_INSERT_LIBRARIES", Hazard::Loader),
            ("BASH_ENV", Hazard::Shell),
            ("ENV", Hazard::Shell),
            ("PROMPT_COMMAND", Hazard::Shell),
            ("IFS", Hazard::Shell),
            ("NODE_OPTIONS", Hazard::Interpreter),
            ("PYTHONSTARTUP", Hazard::Interpreter),
            ("_JAVA_OPTIONS", Hazard::Interpreter),
            ("GIT_SSH_COMMAND", Hazard::Git),
            ("GIT_CONFIG_COUNT", Hazard::Git),
            ("PATH", Hazard::Lookup),
            ("HOME", Hazard::Lookup),
            ("TMPDIR", Hazard::Lookup),
        ] {
            assert_eq!(hazard(var), Some(h), "{var}");
        }
        // Names that merely contain or resemble one are ordinary.
        for var in [
            "STRIPE_SECRET_KEY",
            "GITHUB_TOKEN",
            "APP_LD_PRELOAD",
            "APP_PATH",
            "ENVIRONMENT",
            "HOMEPAGE_URL",
            "PATHS",
        ] {
            assert_eq!(hazard(var), None, "{var}");
        }
    }

    #[test]
    fn prefixes_are_variable_starts() {
        for ok in ["", "APP_", "_", "a1"] {
            assert!(is_valid_prefix(ok), "{ok}");
        }
        for bad in ["1A", "A-", "A B", "É"] {
            assert!(!is_valid_prefix(bad), "{bad}");
        }
    }
}
