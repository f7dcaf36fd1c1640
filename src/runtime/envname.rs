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
    fn prefixes_are_variable_starts() {
        for ok in ["", "APP_", "_", "a1"] {
            assert!(is_valid_prefix(ok), "{ok}");
        }
        for bad in ["1A", "A-", "A B", "É"] {
            assert!(!is_valid_prefix(bad), "{bad}");
        }
    }
}
