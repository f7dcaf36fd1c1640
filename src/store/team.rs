//! Who can open a vault, and changing it.
//!
//! A vault's *approved* recipients are the ones in its manifest, under the
//! recipients MAC that only holders of the vault key can compute (if the
//! MAC fails, the list recorded inside `vault-key.age` is used instead, and
//! the manifest counts as edited). `coffer.toml` says who *should* be able
//! to open it. Any difference is a change awaiting approval, and no command
//! encrypts to the vault until someone holding its key approves or undoes
//! it.
//!
//! Adding a recipient re-wraps `vault-key.age` and nothing else. Taking
//! one away (removal, or a changed key) starts a new epoch: a new current
//! vault key is added to the keyring, the keyring is re-wrapped to the
//! remaining recipients, every entry's MAC is checked and then computed
//! again under the new key, and each secret is marked rotation-due, since
//! the person may have kept the values. No secret file changes: values
//! written from then on are encrypted to the new key. Either is one
//! transaction of `vault-key.age` and `vault.toml`.

use std::collections::BTreeMap;

use crate::crypto::recipient::RecipientKey;
use crate::crypto::{self, VaultKey};
use crate::error::{ChangeKind, Error, RecipientChange, Result};
use crate::fsio;
use crate::name::{RecipientName, SecretName, VaultName};
use crate::secret::SecretValue;
use crate::store::config::Config;
use crate::store::layout;
use crate::store::layout::{MAX_VAULT_KEY_FILE_LEN, VAULT_KEY_FILE};
use crate::store::manifest::{Entry, Manifest, RotationDue};
use crate::store::txn;
use crate::store::vault::{VaultRead, VaultWrite};
use crate::time::Time;

/// A set of named recipients.
pub type Recipients = BTreeMap<RecipientName, RecipientKey>;

/// The first line of a format-2 contribution's plaintext: the contribution
/// is bound to its vault and secret name (`docs/format.md`, section 6), so
/// a keyless writer can neither move one to another name nor pass a sealed
/// value (whose plaintext is the bare value) off as a contribution.
const CONTRIBUTION_HEADER: &str = "coffer-contribution v2\n";

/// Returns the plaintext of a contribution of `value` as `vault`/`name`.
fn bound_plaintext(vault: &VaultName, name: &SecretName, value: &SecretValue) -> Vec<u8> {
    let mut p = format!("{CONTRIBUTION_HEADER}vault: {vault}\nsecret: {name}\n\n").into_bytes();
    p.extend_from_slice(value.expose_secret().as_bytes());
    p
}

/// What a contribution's plaintext says it is.
#[derive(Debug)]
pub enum Binding {
    /// Bound to this vault and name: the value follows.
    Bound,
    /// Bound to another vault or name: moved here by a keyless writer.
    Elsewhere {
        /// The vault and secret it names, as `vault/secret`.
        claims: String,
    },
    /// Not bound at all: written by format-1 coffer, or a sealed value whose
    /// MAC was removed. Only accepted when asked explicitly.
    Unbound,
}

/// A contribution read for review.
#[derive(Debug)]
pub struct Contribution {
    /// What its plaintext says it is.
    pub binding: Binding,
    /// The value (without the binding header).
    pub value: SecretValue,
}

/// Splits a contribution's plaintext into its binding and value.
fn unbind(vault: &VaultName, name: &SecretName, plain: SecretValue) -> Result<Contribution> {
    let text = plain.expose_secret();
    let Some(rest) = text.strip_prefix(CONTRIBUTION_HEADER) else {
        return Ok(Contribution {
            binding: Binding::Unbound,
            value: plain,
        });
    };
    let malformed = || Error::Integrity {
        vault: vault.to_string(),
        name: name.to_string(),
        problem: crate::error::IntegrityProblem::Malformed(
            "its contribution header is malformed".into(),
        ),
    };
    let (v, rest) = rest
        .strip_prefix("vault: ")
        .and_then(|r| r.split_once('\n'))
        .ok_or_else(malformed)?;
    let (n, rest) = rest
        .strip_prefix("secret: ")
        .and_then(|r| r.split_once('\n'))
        .ok_or_else(malformed)?;
    let value = rest.strip_prefix('\n').ok_or_else(malformed)?;
    let binding = if v == vault.as_str() && n == name.as_str() {
        Binding::Bound
    } else {
        Binding::Elsewhere {
            claims: format!("{v}/{n}"),
        }
    };
    Ok(Contribution {
        binding,
        value: SecretValue::from_string(value.to_owned())?,
    })
}

/// Returns what changes turn `from` into `to`, sorted by name.
pub fn diff(from: &Recipients, to: &Recipients) -> Vec<RecipientChange> {
    let mut out = Vec::new();
    for (name, key) in to {
        match from.get(name) {
            None => out.push(RecipientChange {
                name: name.to_string(),
                kind: ChangeKind::Added,
                fingerprint: key.fingerprint(),
            }),
            Some(old) if old != key => out.push(RecipientChange {
                name: name.to_string(),
                kind: ChangeKind::KeyChanged,
                fingerprint: key.fingerprint(),
            }),
            Some(_) => {}
        }
    }
    for (name, key) in from {
        if !to.contains_key(name) {
            out.push(RecipientChange {
                name: name.to_string(),
                kind: ChangeKind::Removed,
                fingerprint: key.fingerprint(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// A vault's recipients as approved, as asked for, and the difference.
#[derive(Clone, Debug)]
pub struct RecipientPlan {
    /// Who can open the vault now, as approved by a key holder.
    pub approved: Recipients,
    /// Who `coffer.toml` says should.
    pub desired: Recipients,
    /// True if the manifest's recipient list was edited without the key.
    pub manifest_edited: bool,
    /// The changes from `approved` to `desired`.
    pub changes: Vec<RecipientChange>,
}

impl RecipientPlan {
    /// Returns true if nothing awaits approval.
    pub fn is_settled(&self) -> bool {
        !self.manifest_edited && self.changes.is_empty()
    }
}

/// What a change of recipients did to a vault.
#[derive(Debug)]
pub enum Outcome {
    /// Nothing needed doing.
    Unchanged,
    /// `vault-key.age` was re-encrypted to more recipients; no secret
    /// changed.
    Rewrapped,
    /// A new vault key became current (a new epoch); no secret file
    /// changed unless re-encryption was asked for.
    Rotated {
        /// The new vault key, for further changes in the same session.
        key: Box<VaultKey>,
        /// How many secrets were marked rotation-due.
        marked: usize,
        /// How many secret files were re-encrypted to the current key.
        reencrypted: usize,
    },
    /// Secret files encrypted to earlier epochs were re-encrypted to the
    /// current key, or a format-1 manifest was upgraded; the key did not
    /// change.
    Rewritten {
        /// How many secret files were re-encrypted.
        reencrypted: usize,
    },
}

/// Returns a vault's approved recipients: the manifest's list if its MAC
/// verifies, else the list recorded inside `vault-key.age`. The flag is true
/// in the second case.
pub fn approved(vault: &VaultName, manifest: &Manifest, key: &VaultKey) -> (Recipients, bool) {
    if manifest.recipients_verify(vault, key) {
        (manifest.recipients.clone(), false)
    } else {
        (key.listed_recipients().clone(), true)
    }
}

/// Compares a vault's approved recipients with what `config` asks for.
pub fn plan(
    vault: &VaultName,
    manifest: &Manifest,
    key: &VaultKey,
    config: &Config,
) -> RecipientPlan {
    let (approved, manifest_edited) = approved(vault, manifest, key);
    let desired = config.desired_for(vault);
    let changes = diff(&approved, &desired);
    RecipientPlan {
        approved,
        desired,
        manifest_edited,
        changes,
    }
}

impl VaultRead<'_> {
    /// Compares the approved recipients with `coffer.toml`.
    pub fn recipient_plan(&self, key: &VaultKey) -> RecipientPlan {
        plan(
            self.vault().name(),
            self.manifest(),
            key,
            self.vault().store().config(),
        )
    }
}

impl VaultWrite<'_> {
    /// Returns the approved recipients (see [`approved`]).
    pub fn approved_recipients(&self, key: &VaultKey) -> (Recipients, bool) {
        approved(self.vault.name(), &self.manifest, key)
    }

    /// Compares the approved recipients with `coffer.toml`.
    pub fn recipient_plan(&self, key: &VaultKey) -> RecipientPlan {
        plan(
            self.vault.name(),
            &self.manifest,
            key,
            self.vault.store().config(),
        )
    }

    /// Refuses to go on if the vault's recipients have unapproved changes
    /// (see the module docs). Every command that encrypts calls this.
    pub(crate) fn check_recipients(&self, key: &VaultKey) -> Result<()> {
        let plan = self.recipient_plan(key);
        if plan.is_settled() {
            return Ok(());
        }
        let changes = if plan.manifest_edited {
            // Say what the hand edit did, not what coffer.toml asks for.
            let mut c = diff(&plan.approved, &self.manifest.recipients);
            if c.is_empty() {
                c = plan.changes.clone();
            }
            c
        } else {
            plan.changes
        };
        Err(Error::UnapprovedRecipients {
            vault: self.vault.name().to_string(),
            manifest_edited: plan.manifest_edited,
            changes,
        })
    }

    /// Makes the vault's recipients exactly `target`. If nobody loses
    /// access, only `vault-key.age` is re-encrypted; otherwise the vault key
    /// is rotated, every secret re-encrypted, and each marked rotation-due
    /// on behalf of whoever lost access. Staged until [`VaultWrite::commit`].
    pub fn set_recipients<C: crypto::Callbacks>(
        &mut self,
        key: &VaultKey,
        target: &Recipients,
        now: Time,
        callbacks: C,
    ) -> Result<Outcome> {
        self.check_current_key(key)?;
        if target.is_empty() {
            return Err(Error::NoRecipientsLeft {
                vault: self.vault.name().to_string(),
            });
        }
        let (approved, edited) = self.approved_recipients(key);
        let changes = diff(&approved, target);
        let revoked: Vec<RecipientName> = changes
            .iter()
            .filter(|c| c.kind != ChangeKind::Added)
            .map(|c| c.name.parse().expect("names in a diff are valid"))
            .collect();
        if !revoked.is_empty() {
            let (key, marked) = self.rotate(key, target, &revoked, now, callbacks)?;
            return Ok(Outcome::Rotated {
                key: Box::new(key),
                marked,
                reencrypted: 0,
            });
        }
        if changes.is_empty() && !edited && self.key_file_current(key, target)? {
            let was_v1 = self.manifest.is_v1();
            self.upgrade(key)?;
            return Ok(if was_v1 {
                Outcome::Rewritten { reencrypted: 0 }
            } else {
                Outcome::Unchanged
            });
        }
        self.upgrade(key)?;
        self.rewrap(key, target, callbacks)?;
        Ok(Outcome::Rewrapped)
    }

    /// Brings the vault up to date without changing who can open it:
    /// upgrades a format-1 manifest, re-wraps `vault-key.age` if it is not
    /// encrypted to exactly the approved recipients, with `new_key` starts
    /// a new epoch, and with `reencrypt` re-encrypts every secret file of
    /// an earlier epoch to the current key. Refuses while recipient changes
    /// await approval.
    pub fn rekey<C: crypto::Callbacks>(
        &mut self,
        key: &VaultKey,
        new_key: bool,
        reencrypt: bool,
        now: Time,
        callbacks: C,
    ) -> Result<Outcome> {
        self.check_current_key(key)?;
        self.check_recipients(key)?;
        let was_v1 = self.manifest.is_v1();
        self.upgrade(key)?;
        let approved = self.manifest.recipients.clone();
        if new_key {
            let (key, marked) = self.rotate(key, &approved, &[], now, callbacks)?;
            let reencrypted = if reencrypt { self.reencrypt(&key)? } else { 0 };
            return Ok(Outcome::Rotated {
                key: Box::new(key),
                marked,
                reencrypted,
            });
        }
        let reencrypted = if reencrypt { self.reencrypt(key)? } else { 0 };
        if self.key_file_current(key, &approved)? {
            return Ok(if was_v1 || reencrypted > 0 {
                Outcome::Rewritten { reencrypted }
            } else {
                Outcome::Unchanged
            });
        }
        self.rewrap(key, &approved, callbacks)?;
        Ok(Outcome::Rewrapped)
    }

    /// Re-encrypts every sealed secret whose file is encrypted to an
    /// earlier epoch to the current key, after checking it as `get` does
    /// (a secret that fails stops it, naming each: re-encrypting would
    /// launder a forgery). Unaccepted contributions are left for a
    /// recipient to accept. Returns how many files were re-encrypted.
    pub fn reencrypt(&mut self, key: &VaultKey) -> Result<usize> {
        self.check_current_key(key)?;
        self.upgrade(key)?;
        let current = key.epoch();
        let names: Vec<SecretName> = self
            .manifest
            .secrets
            .iter()
            .filter(|(_, e)| e.epoch != current && e.mac.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        if names.is_empty() {
            return Ok(0);
        }
        let files: Vec<String> = names.iter().map(layout::secret_file_name).collect();
        let vault = self.vault;
        let dir = vault.files()?;
        let staged = self.put_each(&files, |manifest, i| {
            let value = vault.get_in(&dir, manifest, key, &names[i])?;
            let ct = key.encrypt_value(&value)?;
            let digest = crypto::digest(&ct);
            Ok((ct, digest))
        })?;
        let digests = self.staged_or_blocked(staged, &names)?;
        for (name, digest) in names.iter().zip(digests) {
            let vault_name = self.vault.name().clone();
            let e = self.manifest.secrets.get_mut(name).expect("listed above");
            e.digest = digest;
            e.epoch = current;
            Manifest::seal_entry(&vault_name, name, e, key);
        }
        Ok(names.len())
    }

    /// Returns the results of a parallel staging, or the error that stops
    /// it: an unreadable file as what it is, forged or damaged secrets as
    /// [`Error::RekeyBlocked`] naming each.
    fn staged_or_blocked<T>(&self, staged: txn::Staged<T>, names: &[SecretName]) -> Result<Vec<T>> {
        match staged {
            txn::Staged::All(v) => Ok(v),
            txn::Staged::Failed(mut failed) => {
                if let Some(at) = failed
                    .iter()
                    .position(|(_, e)| !matches!(e, Error::Integrity { .. }))
                {
                    return Err(failed.swap_remove(at).1);
                }
                Err(Error::RekeyBlocked {
                    vault: self.vault.name().to_string(),
                    count: failed.len(),
                    names: failed
                        .iter()
                        .map(|&(i, _)| names[i].as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
        }
    }

    fn check_current_key(&self, key: &VaultKey) -> Result<()> {
        if !key.is_current(&self.manifest.public_key, self.manifest.epoch) {
            return Err(Error::Concurrent {
                vault: self.vault.name().to_string(),
            });
        }
        Ok(())
    }

    /// Returns whether `vault-key.age` records exactly `recipients` and
    /// holds one stanza for each.
    fn key_file_current(&self, key: &VaultKey, recipients: &Recipients) -> Result<bool> {
        if key.listed_recipients() != recipients {
            return Ok(false);
        }
        let path = self.vault.dir().join(VAULT_KEY_FILE);
        let bytes = fsio::read_file(&path, MAX_VAULT_KEY_FILE_LEN)?;
        Ok(crypto::count_stanzas(&bytes).is_ok_and(|c| c.real == recipients.len()))
    }

    fn rewrap<C: crypto::Callbacks>(
        &mut self,
        key: &VaultKey,
        recipients: &Recipients,
        callbacks: C,
    ) -> Result<()> {
        let keys: Vec<&RecipientKey> = recipients.values().collect();
        let file = crypto::encrypt_to_keys(
            &keys,
            key.to_identity_file(recipients).as_bytes(),
            callbacks,
        )?;
        self.put(VAULT_KEY_FILE, &file)?;
        self.manifest.recipients = recipients.clone();
        self.manifest.seal_recipients(self.vault.name(), key);
        Ok(())
    }

    /// Starts a new epoch: a fresh current key is added to the keyring,
    /// which is re-wrapped to `recipients`; every sealed entry's MAC is
    /// checked under the old key and computed again under the new one (its
    /// file, and the epoch it records, unchanged); with `revoked`, every
    /// secret is marked rotation-due. Refuses, naming them, if any entry
    /// fails its MAC: sealing it again would launder a forgery. Writes
    /// `vault-key.age` and `vault.toml` only.
    fn rotate<C: crypto::Callbacks>(
        &mut self,
        old: &VaultKey,
        recipients: &Recipients,
        revoked: &[RecipientName],
        now: Time,
        callbacks: C,
    ) -> Result<(VaultKey, usize)> {
        use rayon::prelude::*;
        let vault = self.vault.name().clone();
        let entries: Vec<(&SecretName, &Entry)> = self.manifest.secrets.iter().collect();
        let manifest = &self.manifest;
        let failed: Vec<&str> = entries
            .par_iter()
            .filter(|(n, e)| e.mac.is_some() && !manifest.entry_verifies(&vault, n, e, old))
            .map(|(n, _)| n.as_str())
            .collect();
        if !failed.is_empty() {
            return Err(Error::RekeyBlocked {
                vault: vault.to_string(),
                count: failed.len(),
                names: failed.join(", "),
            });
        }
        if old.epoch() as usize >= crypto::vault_key::MAX_EPOCHS {
            return Err(Error::RekeyBlocked {
                vault: vault.to_string(),
                count: 0,
                names: "the keyring is full".into(),
            });
        }
        let new = old.successor();
        // Checked above in the manifest's own format; from here on it is
        // format 2 (a format-1 vault is upgraded by its first rotation).
        self.manifest.format = crate::store::manifest::FORMAT_VERSION;
        let mut marked = 0;
        let mut entries: Vec<(&SecretName, &mut Entry)> =
            self.manifest.secrets.iter_mut().collect();
        if !revoked.is_empty() {
            marked = entries.len();
        }
        entries.par_iter_mut().for_each(|(name, entry)| {
            if !revoked.is_empty() {
                let r = entry.rotation.get_or_insert_with(|| RotationDue {
                    since: now,
                    removed: Vec::new(),
                });
                r.removed.extend(revoked.iter().cloned());
                r.removed.sort();
                r.removed.dedup();
            }
            // An unaccepted contribution stays unaccepted under the new key.
            if entry.mac.is_some() {
                Manifest::seal_entry(&vault, name, entry, &new);
            }
        });
        self.manifest.public_key = new.public().to_string();
        self.manifest.epoch = new.epoch();
        self.rewrap(&new, recipients, callbacks)?;
        // The listed recipients of `new` are read back from the file next
        // time; carry them now so the returned key is complete.
        let new = VaultKey::from_identity_file(
            &new.to_identity_file(recipients),
            &self.vault.dir().join(VAULT_KEY_FILE),
        )?;
        Ok((new, marked))
    }

    /// Stages a value written by someone who cannot open the vault: it is
    /// encrypted to the manifest's public key and recorded without a MAC,
    /// so nobody reads or syncs it until a recipient accepts it.
    ///
    /// Its plaintext is bound to the vault and name (see [`Binding`]).
    pub fn contribute(&mut self, name: &SecretName, value: &SecretValue, now: Time) -> Result<()> {
        let plain = zeroize::Zeroizing::new(bound_plaintext(self.vault.name(), name, value));
        let ct = crypto::encrypt_to_recipient(&self.manifest.public_key, &plain)?;
        let existing = self.manifest.secrets.get(name);
        let created = existing.map_or(now, |e| e.created);
        // A rotation mark stays: a contribution could come from the very
        // person who was removed, putting back a value they know.
        let rotation = existing.and_then(|e| e.rotation.clone());
        self.put(&layout::secret_file_name(name), &ct)?;
        self.manifest.secrets.insert(
            name.clone(),
            Entry {
                epoch: self.manifest.epoch,
                created,
                updated: now,
                digest: crypto::digest(&ct),
                mac: None,
                rotation,
            },
        );
        Ok(())
    }

    /// Returns the names of unaccepted contributions.
    pub fn contributions(&self) -> Vec<SecretName> {
        self.manifest
            .secrets
            .iter()
            .filter(|(_, e)| e.mac.is_none())
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Reads a contribution for review: checks its file's digest,
    /// decrypts it with the key of its epoch, and splits off its binding.
    pub fn review(&self, key: &VaultKey, name: &SecretName) -> Result<Contribution> {
        self.check_current_key(key)?;
        let entry = self
            .manifest
            .secrets
            .get(name)
            .ok_or_else(|| Error::SecretNotFound {
                vault: self.vault.name().to_string(),
                name: name.to_string(),
            })?;
        let plain = self
            .vault
            .decrypt_file(&self.vault.files()?, name, entry, key)?;
        unbind(self.vault.name(), name, plain)
    }

    /// Accepts contributions: each is read as [`VaultWrite::review`] reads
    /// it and must be bound to its own vault and name (or be unbound, if
    /// `allow_unbound`: format-1 contributions); its value is re-encrypted,
    /// bare, to the current key, and its entry sealed with the vault key.
    /// `restore` gives rotation marks to keep even though the entry lost
    /// them (from the committed state): they are merged into the entry's
    /// own. Returns what was accepted; a contribution that fails any check
    /// is an error naming it, and nothing is accepted.
    pub fn accept(
        &mut self,
        key: &VaultKey,
        names: &[SecretName],
        restore: &BTreeMap<SecretName, RotationDue>,
        allow_unbound: bool,
    ) -> Result<Vec<SecretName>> {
        self.check_current_key(key)?;
        self.upgrade(key)?;
        let vault = self.vault.name().clone();
        let mut values = Vec::with_capacity(names.len());
        for name in names {
            let c = self.review(key, name)?;
            match c.binding {
                Binding::Bound => {}
                Binding::Unbound if allow_unbound => {}
                Binding::Unbound => {
                    return Err(Error::ContributionUnbound {
                        vault: vault.to_string(),
                        name: name.to_string(),
                        claims: None,
                    });
                }
                Binding::Elsewhere { claims } => {
                    return Err(Error::ContributionUnbound {
                        vault: vault.to_string(),
                        name: name.to_string(),
                        claims: Some(claims),
                    });
                }
            }
            values.push(c.value);
        }
        for (name, value) in names.iter().zip(values) {
            let ct = key.encrypt_value(&value)?;
            self.put(&layout::secret_file_name(name), &ct)?;
            let e = self.manifest.secrets.get_mut(name).expect("reviewed above");
            e.digest = crypto::digest(&ct);
            e.epoch = key.epoch();
            if let Some(r) = restore.get(name) {
                let mark = e.rotation.get_or_insert_with(|| r.clone());
                mark.since = mark.since.min(r.since);
                mark.removed.extend(r.removed.iter().cloned());
                mark.removed.sort();
                mark.removed.dedup();
            }
            Manifest::seal_entry(&vault, name, e, key);
        }
        Ok(names.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k() -> RecipientKey {
        age::x25519::Identity::generate()
            .to_public()
            .to_string()
            .parse()
            .unwrap()
    }

    #[test]
    fn diff_names_additions_key_changes_and_removals() {
        let (a, b, c) = (k(), k(), k());
        let from: Recipients = [
            ("alice".parse().unwrap(), a.clone()),
            ("bob".parse().unwrap(), b),
        ]
        .into();
        let to: Recipients = [
            ("alice".parse().unwrap(), c.clone()),
            ("carol".parse().unwrap(), a),
        ]
        .into();
        let d = diff(&from, &to);
        let kinds: Vec<(&str, ChangeKind)> = d.iter().map(|c| (c.name.as_str(), c.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("alice", ChangeKind::KeyChanged),
                ("bob", ChangeKind::Removed),
                ("carol", ChangeKind::Added)
            ]
        );
        assert_eq!(
            d[0].fingerprint,
            c.fingerprint(),
            "the new key's fingerprint"
        );
        assert!(diff(&from, &from).is_empty());
    }
}
