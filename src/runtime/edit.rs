//! `coffer edit`'s document: a vault as a dotenv file to edit, and the
//! plan that turns the edited file back into changes.
//!
//! The document is what `export` writes (`STRIPE_SECRET_KEY=…`, each value
//! quoted as the simplest exact form, multi-line values in quotes) under a
//! header of `#` comments. On save, [`plan`] compares the file with the
//! values it started from: a new name is created, a changed value updated,
//! a missing line deleted, and everything else left alone, so that an
//! unchanged secret is never rewritten.
//!
//! A file that does not parse is shown again with the problem in `#!`
//! comment lines at its top ([`with_errors`]), as `git commit` and
//! `crontab -e` do; those lines are dropped again before the next parse.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use crate::name::SecretName;
use crate::runtime::{dotenv, envname};
use crate::secret::SecretValue;

/// The prefix of the error lines [`with_errors`] puts at the top.
const ERROR_PREFIX: &str = "#! ";

/// What the edit does to one secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A new secret (`+`).
    Create,
    /// A new value (`~`).
    Update,
    /// Removed from the file (`-`).
    Delete,
}

impl Op {
    /// The plan's mark: `+`, `~` or `-`.
    pub fn mark(self) -> char {
        match self {
            Op::Create => '+',
            Op::Update => '~',
            Op::Delete => '-',
        }
    }
}

/// One change of the plan; `value` is `None` for a deletion.
pub struct Change {
    /// The secret.
    pub name: SecretName,
    /// What happens to it.
    pub op: Op,
    /// Its new value (not for a deletion).
    pub value: Option<SecretValue>,
}

impl std::fmt::Debug for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.op.mark(), self.name)
    }
}

/// Writes the document for `values` (every secret of the vault, by name)
/// under `header` (lines without their `# `).
pub fn document(
    header: &[String],
    values: &BTreeMap<SecretName, SecretValue>,
) -> Zeroizing<String> {
    let vars: Vec<String> = values.keys().map(|n| envname::var_name("", n)).collect();
    let body = dotenv::write(
        vars.iter()
            .map(String::as_str)
            .zip(values.values().map(|v| v.expose_secret())),
    );
    let mut out = Zeroizing::new(String::with_capacity(body.len() + 80 * header.len() + 1));
    for h in header {
        out.push_str("# ");
        out.push_str(h);
        out.push('\n');
    }
    out.push_str(&body);
    out
}

/// The edited text without the error lines an earlier round put at its
/// top.
pub fn strip_errors(text: &str) -> &str {
    let mut rest = text;
    while rest.starts_with(ERROR_PREFIX) {
        rest = rest.split_once('\n').map_or("", |(_, r)| r);
    }
    rest
}

/// `text` (already stripped) with `errors` in `#!` lines at its top. Each
/// error's line number is counted in the text as it will be shown.
pub fn with_errors(text: &str, errors: &[(usize, String)]) -> Zeroizing<String> {
    let shift = errors.len() + 1;
    let mut out = Zeroizing::new(String::with_capacity(text.len() + 100 * shift));
    for (line, msg) in errors {
        out.push_str(ERROR_PREFIX);
        if *line > 0 {
            out.push_str(&format!("line {}: ", line + shift));
        }
        out.push_str(msg);
        out.push('\n');
    }
    out.push_str(ERROR_PREFIX);
    out.push_str(
        "fix the file and save it again, or empty it to cancel; these lines are removed\n",
    );
    out.push_str(text);
    out
}

/// What an edit of the whole vault changes. `current` holds every value
/// the document started from; `text` is the file as saved (stripped of
/// error lines). Returns the changes sorted by name, or every problem with
/// its line (1-based, in `text`; 0 for none).
pub fn plan(
    current: &BTreeMap<SecretName, SecretValue>,
    text: &[u8],
    may_delete: bool,
) -> Result<Vec<Change>, Vec<(usize, String)>> {
    let assignments = dotenv::parse(text).map_err(|e| {
        let line = e.line;
        let shown = e.to_string();
        let msg = shown
            .strip_prefix(&format!("line {line}: "))
            .unwrap_or(&shown)
            .to_owned();
        vec![(line, msg)]
    })?;
    let mut problems = Vec::new();
    let mut seen: BTreeMap<SecretName, (String, usize)> = BTreeMap::new();
    let mut changes = Vec::new();
    for a in assignments {
        let name = match envname::secret_name(&a.name) {
            Ok(n) => n,
            Err(why) => {
                problems.push((a.line, format!("{}: {why}", a.name)));
                continue;
            }
        };
        if let Some((first, first_line)) = seen.get(&name) {
            problems.push((
                a.line,
                format!(
                    "{} and {first} (line {first_line}) both name secret {name}",
                    a.name
                ),
            ));
            continue;
        }
        seen.insert(name.clone(), (a.name.clone(), a.line));
        let value = match SecretValue::from_string(a.value.to_string()) {
            Ok(v) => v,
            Err(e) => {
                problems.push((a.line, format!("{}: {e}", a.name)));
                continue;
            }
        };
        match current.get(&name) {
            Some(old) if old.ct_eq(&value) => {}
            Some(_) => changes.push(Change {
                name,
                op: Op::Update,
                value: Some(value),
            }),
            None => changes.push(Change {
                name,
                op: Op::Create,
                value: Some(value),
            }),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    if may_delete {
        for name in current.keys() {
            if !seen.contains_key(name) {
                changes.push(Change {
                    name: name.clone(),
                    op: Op::Delete,
                    value: None,
                });
            }
        }
    }
    changes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(pairs: &[(&str, &str)]) -> BTreeMap<SecretName, SecretValue> {
        pairs
            .iter()
            .map(|(n, v)| {
                (
                    n.parse().unwrap(),
                    SecretValue::from_string(v.to_string()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn the_plan_holds_only_what_changed() {
        let cur = vals(&[
            ("api-token", "a"),
            ("db-url", "multi\nline"),
            ("old-one", "x"),
        ]);
        let doc = document(&["header".into()], &cur);
        assert!(plan(&cur, doc.as_bytes(), true).unwrap().is_empty());
        let edited = doc
            .replace("API_TOKEN=a", "API_TOKEN=b")
            .replace("OLD_ONE=x\n", "")
            + "NEW_ONE='it''s'\n";
        let edited = edited.replace("NEW_ONE='it''s'", "NEW_ONE=\"it's\"");
        let p = plan(&cur, edited.as_bytes(), true).unwrap();
        let shown: Vec<String> = p.iter().map(|c| format!("{c:?}")).collect();
        assert_eq!(shown, ["~ api-token", "+ new-one", "- old-one"]);
        assert!(plan(&cur, edited.as_bytes(), false).unwrap().len() == 2);
    }

    #[test]
    fn errors_are_shown_on_top_and_removed_again() {
        let cur = vals(&[]);
        let bad = "OK_NAME=1\nnot an assignment\n";
        let errs = plan(&cur, bad.as_bytes(), true).unwrap_err();
        assert_eq!(errs[0].0, 2);
        let shown = with_errors(bad, &errs);
        assert!(
            shown.starts_with("#! line 4: expected NAME=value"),
            "{}",
            &*shown
        );
        assert_eq!(strip_errors(&shown), bad);
    }

    #[test]
    fn names_that_collide_or_do_not_map_are_reported_together() {
        let cur = vals(&[]);
        let errs = plan(&cur, b"AB=1\nlower=2\n", true).unwrap_err();
        assert_eq!(errs.len(), 2);
    }
}
