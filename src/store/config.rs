//! The store configuration, `coffer.toml`: the team's named recipients,
//! and which vaults each should be able to open (all, unless scoped).
//!
//! People edit this file by hand as well as through coffer, so coffer edits
//! it with `toml_edit`, keeping comments and layout. It is not trusted on
//! its own: a vault's authoritative recipients are the ones in its manifest,
//! under a MAC only vault-key holders can compute (see `docs/teams.md`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::crypto::recipient::RecipientKey;
use crate::error::toml_message;
use crate::error::{Error, Result};
use crate::name::{RecipientName, VaultName};
use crate::store::layout::MAX_CONFIG_LEN;

/// The configuration format this coffer reads and writes.
pub const CONFIG_FORMAT: i64 = 1;

/// One recipient in `coffer.toml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Their public key.
    pub key: RecipientKey,
    /// The vaults they should be able to open; `None` means every vault.
    pub vaults: Option<BTreeSet<VaultName>>,
}

impl Member {
    /// Returns whether this member should be able to open `vault`.
    pub fn covers(&self, vault: &VaultName) -> bool {
        self.vaults.as_ref().is_none_or(|v| v.contains(vault))
    }
}

/// A parsed `coffer.toml`.
#[derive(Clone, Debug)]
pub struct Config {
    path: PathBuf,
    doc: toml_edit::DocumentMut,
    recipients: BTreeMap<RecipientName, Member>,
}

impl Config {
    /// Returns the text of a new store's `coffer.toml`.
    pub fn initial_text(name: &RecipientName, key: &RecipientKey) -> String {
        format!(
            "# coffer store configuration: see docs/format.md and docs/teams.md.\n\
             format = {CONFIG_FORMAT}\n\
             \n\
             # Everyone (people, CI jobs, hardware keys) who can open the vaults.\n\
             # Add with `coffer recipients add NAME KEY`; the vault keys are only\n\
             # re-encrypted to a new key once someone who already holds them approves.\n\
             [recipients]\n\
             {} = \"{key}\"\n",
            toml_edit::Key::new(name.as_str()).display_repr()
        )
    }

    /// Reads and validates `coffer.toml` at `path`.
    pub fn load(path: &Path) -> Result<Config> {
        let bytes = crate::fsio::read_file(path, MAX_CONFIG_LEN)?;
        let text = String::from_utf8(bytes).map_err(|_| Error::Config {
            path: path.to_owned(),
            message: "it is not UTF-8 text".into(),
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates `coffer.toml` text. `path` is for messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let err = |message: String| Error::Config {
            path: path.to_owned(),
            message,
        };
        let doc: toml_edit::DocumentMut = text.parse().map_err(|e| {
            if crate::store::manifest::has_conflict_markers(text) {
                Error::ConflictMarkers {
                    path: path.to_owned(),
                }
            } else {
                err(toml_message(&e))
            }
        })?;
        for (key, _) in doc.iter() {
            if key != "format" && key != "recipients" {
                return Err(err(format!("unknown setting {key:?}")));
            }
        }
        match doc.get("format").and_then(|v| v.as_integer()) {
            Some(CONFIG_FORMAT) => {}
            Some(v) => {
                return Err(err(format!(
                    "format {v} is not supported (this coffer reads format {CONFIG_FORMAT})"
                )));
            }
            None => return Err(err("it has no integer `format` field".into())),
        }
        let mut recipients = BTreeMap::new();
        if let Some(item) = doc.get("recipients") {
            let table = item
                .as_table_like()
                .ok_or_else(|| err("[recipients] must be a table".into()))?;
            for (name, value) in table.iter() {
                let n: RecipientName = name
                    .parse()
                    .map_err(|e: Error| err(format!("[recipients]: {e}")))?;
                let member =
                    parse_member(value).map_err(|m| err(format!("recipient {name:?}: {m}")))?;
                if let Some((other, _)) = recipients
                    .iter()
                    .find(|(_, m): &(&RecipientName, &Member)| m.key == member.key)
                {
                    return Err(err(format!(
                        "recipients {other} and {name:?} have the same key"
                    )));
                }
                recipients.insert(n, member);
            }
        }
        Ok(Config {
            path: path.to_owned(),
            doc,
            recipients,
        })
    }

    /// Returns the path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the named recipients.
    pub fn recipients(&self) -> &BTreeMap<RecipientName, Member> {
        &self.recipients
    }

    /// Returns who should be able to open `vault`: every recipient whose
    /// scope covers it.
    pub fn desired_for(&self, vault: &VaultName) -> BTreeMap<RecipientName, RecipientKey> {
        self.recipients
            .iter()
            .filter(|(_, m)| m.covers(vault))
            .map(|(n, m)| (n.clone(), m.key.clone()))
            .collect()
    }

    /// Returns the text as it would be written, comments preserved.
    pub fn to_text(&self) -> String {
        self.doc.to_string()
    }

    /// Sets (adds or replaces) a recipient, keeping the rest of the file as
    /// it was: `name = "key"` for every vault, or
    /// `name = { key = "…", vaults = […] }` when scoped.
    pub fn set_recipient(&mut self, name: &RecipientName, member: &Member) {
        let table = self
            .doc
            .entry("recipients")
            .or_insert(toml_edit::table())
            .as_table_like_mut()
            .expect("validated as a table on load");
        let value = match &member.vaults {
            None => toml_edit::value(member.key.to_string()),
            Some(vaults) => {
                let mut t = toml_edit::InlineTable::new();
                t.insert("key", member.key.to_string().into());
                let mut arr = toml_edit::Array::new();
                for v in vaults {
                    arr.push(v.as_str());
                }
                t.insert("vaults", toml_edit::Value::Array(arr));
                toml_edit::value(t)
            }
        };
        table.insert(name.as_str(), value);
        self.recipients.insert(name.clone(), member.clone());
    }

    /// Removes a recipient; returns it if it was there.
    pub fn remove_recipient(&mut self, name: &RecipientName) -> Option<Member> {
        if let Some(t) = self
            .doc
            .get_mut("recipients")
            .and_then(|i| i.as_table_like_mut())
        {
            t.remove(name.as_str());
        }
        self.recipients.remove(name)
    }
}

/// Parses a recipient's value: a key string, or a table with `key` and an
/// optional `vaults` list.
fn parse_member(value: &toml_edit::Item) -> std::result::Result<Member, String> {
    if let Some(key) = value.as_str() {
        let key = key.parse::<RecipientKey>().map_err(|e| e.to_string())?;
        return Ok(Member { key, vaults: None });
    }
    let Some(t) = value.as_table_like() else {
        return Err("must be a key string or { key = \"…\", vaults = [\"…\"] }".into());
    };
    let mut key = None;
    let mut vaults = None;
    for (k, v) in t.iter() {
        match k {
            "key" => {
                let s = v.as_str().ok_or("`key` must be a string")?;
                key = Some(s.parse::<RecipientKey>().map_err(|e| e.to_string())?);
            }
            "vaults" => {
                let arr = v
                    .as_array()
                    .ok_or("`vaults` must be a list of vault names")?;
                let mut set = BTreeSet::new();
                for item in arr.iter() {
                    let s = item
                        .as_str()
                        .ok_or("`vaults` must be a list of vault names")?;
                    set.insert(s.parse::<VaultName>().map_err(|e| e.to_string())?);
                }
                vaults = Some(set);
            }
            other => return Err(format!("unknown field {other:?}")),
        }
    }
    Ok(Member {
        key: key.ok_or("missing `key`")?,
        vaults,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> RecipientKey {
        age::x25519::Identity::generate()
            .to_public()
            .to_string()
            .parse()
            .unwrap()
    }

    #[test]
    fn initial_text_parses_and_edits_keep_comments() {
        let alice: RecipientName = "alice".parse().unwrap();
        let text = Config::initial_text(&alice, &key());
        let mut c = Config::parse(&text, Path::new("coffer.toml")).unwrap();
        assert_eq!(c.recipients().len(), 1);
        let bob: RecipientName = "bob.smith".parse().unwrap();
        c.set_recipient(
            &bob,
            &Member {
                key: key(),
                vaults: None,
            },
        );
        let dave: RecipientName = "dave".parse().unwrap();
        let staging: VaultName = "staging".parse().unwrap();
        c.set_recipient(
            &dave,
            &Member {
                key: key(),
                vaults: Some([staging.clone()].into()),
            },
        );
        let out = c.to_text();
        assert!(out.contains("# Everyone (people"), "{out}");
        assert!(out.contains("\"bob.smith\" = "), "{out}");
        assert!(out.contains("dave = { key = \"age1"), "{out}");
        let c2 = Config::parse(&out, Path::new("coffer.toml")).unwrap();
        assert_eq!(c2.recipients().len(), 3);
        assert_eq!(c2.desired_for(&staging).len(), 3);
        assert_eq!(c2.desired_for(&"prod".parse().unwrap()).len(), 2);
        let mut c3 = c2.clone();
        assert!(c3.remove_recipient(&alice).is_some());
        assert!(!c3.to_text().contains("alice"));
    }

    #[test]
    fn invalid_configs_are_refused_with_the_reason() {
        let k = key();
        for (text, want) in [
            ("format = 2\n".to_owned(), "format 2 is not supported"),
            ("[recipients]\n".to_owned(), "no integer `format`"),
            (
                "format = 1\nsurprise = true\n".to_owned(),
                "unknown setting",
            ),
            (
                format!("format = 1\n[recipients]\n\"a b\" = \"{k}\"\n"),
                "invalid recipient name",
            ),
            (
                "format = 1\n[recipients]\nbob = \"nope\"\n".to_owned(),
                "recipient \"bob\"",
            ),
            (
                format!("format = 1\n[recipients]\nbob = \"{k}\"\ncarol = \"{k}\"\n"),
                "same key",
            ),
            ("format = 1\n[recipients\n".to_owned(), "TOML parse error"),
        ] {
            let err = Config::parse(&text, Path::new("coffer.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "want {want:?} in {err:?}");
        }
    }
}
