//! Finding and loading the user's identities (private keys).
//!
//! The library never reads the environment: the CLI describes where to
//! look in an [`IdentitySources`], and [`Identities::load`] looks there in
//! order, remembering every place it tried so that "no key" errors can list
//! them (as sops does). Order: `--identity` files (which, when given, are
//! the only source: an explicit choice is not second-guessed), then
//! `COFFER_AGE_KEY`, `COFFER_IDENTITY`, the default file, and the SSH keys
//! `~/.ssh/id_ed25519` and `~/.ssh/id_rsa`.
//!
//! Identity files must not be accessible by group or others, as ssh
//! insists for its keys. Plugin identities (hardware keys) are tried last,
//! so a plugin only runs when no plain key matched.

use std::fs;
use std::io::{self, BufReader};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use age::secrecy::{ExposeSecret, SecretString};
use base64::Engine;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::crypto::recipient::RecipientKey;
use crate::error::{Error, Result, Tried};
use crate::fsio;

/// The largest identity file coffer reads.
const MAX_IDENTITY_LEN: u64 = 1 << 20;

/// Where to look for identities. Filled in by the CLI from flags and the
/// environment.
#[derive(Default)]
pub struct IdentitySources {
    /// `--identity FILE` flags, in order. When non-empty, nothing else is
    /// consulted.
    pub flags: Vec<PathBuf>,
    /// The text of `COFFER_AGE_KEY`, if set.
    pub env_key: Option<SecretString>,
    /// The path in `COFFER_IDENTITY`, if set.
    pub env_path: Option<PathBuf>,
    /// The default identity file (`$XDG_CONFIG_HOME/coffer/identity.txt`).
    pub default_file: Option<PathBuf>,
    /// The SSH directory (`~/.ssh`), searched for `id_ed25519` and `id_rsa`.
    pub ssh_dir: Option<PathBuf>,
}

impl std::fmt::Debug for IdentitySources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentitySources")
            .field("flags", &self.flags)
            .field("env_key", &self.env_key.as_ref().map(|_| "[redacted]"))
            .field("env_path", &self.env_path)
            .field("default_file", &self.default_file)
            .field("ssh_dir", &self.ssh_dir)
            .finish()
    }
}

struct Loaded {
    place: String,
    identity: Box<dyn age::Identity>,
    plugin: bool,
    /// Whether opening a stanza with it may wait on the user: a plugin
    /// (a hardware key's touch or PIN) or a passphrase.
    may_ask: bool,
    /// Its public key, where coffer can derive one.
    recipient: Option<RecipientKey>,
}

/// The identities found, ready to open vault keys, and the record of where
/// they came from.
pub struct Identities {
    loaded: Vec<Loaded>,
    tried: Vec<Tried>,
    /// Every place looked at, in lookup order, so that the two "no
    /// identity" errors list them alike.
    order: Vec<String>,
    recipients: Vec<RecipientKey>,
    skipped: Vec<String>,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identities")
            .field("count", &self.loaded.len())
            .field("tried", &self.tried)
            .finish_non_exhaustive()
    }
}

impl Identities {
    /// Looks for identities in every source, in order. A missing optional
    /// source (default file, SSH keys, unset variables) is recorded, not an
    /// error; a source the user named that cannot be used is an error.
    /// `callbacks` answer passphrase prompts and plugin requests.
    pub fn load<C: age::Callbacks>(sources: &IdentitySources, callbacks: C) -> Result<Identities> {
        let mut ids = Identities {
            loaded: Vec::new(),
            tried: Vec::new(),
            order: Vec::new(),
            recipients: Vec::new(),
            skipped: Vec::new(),
        };
        if !sources.flags.is_empty() {
            for path in &sources.flags {
                let place = format!("--identity {}", path.display());
                ids.load_file(path, place, true, &callbacks)?;
            }
            return Ok(ids.ordered());
        }
        match &sources.env_key {
            Some(text) => {
                let text = Zeroizing::new(text.expose_secret().as_bytes().to_vec());
                ids.load_text(&text, "COFFER_AGE_KEY".into(), None, &callbacks)?;
            }
            None => ids.note("COFFER_AGE_KEY", "not set"),
        }
        match &sources.env_path {
            Some(path) => {
                let place = format!("COFFER_IDENTITY={}", path.display());
                ids.load_file(path, place, true, &callbacks)?;
            }
            None => ids.note("COFFER_IDENTITY", "not set"),
        }
        // The default file and the SSH keys are looked at, not asked for: a
        // problem with one is recorded (and listed if nothing works), not a
        // reason to fail when another identity would do.
        let mut optional = Vec::new();
        if let Some(path) = &sources.default_file {
            optional.push(path.clone());
        }
        if let Some(dir) = &sources.ssh_dir {
            optional.extend(["id_ed25519", "id_rsa"].map(|n| dir.join(n)));
        }
        for path in optional {
            let place = path.display().to_string();
            if let Err(e) = ids.load_file(&path, place.clone(), false, &callbacks) {
                let outcome = match e {
                    Error::IdentityPermissions { mode, .. } => format!(
                        "skipped: accessible by other users (mode {mode:04o}); chmod 600 {place}"
                    ),
                    Error::Identity { message, .. } => format!("skipped: {message}"),
                    other => format!("skipped: {other}"),
                };
                ids.note(&place, &outcome);
                ids.skipped.push(outcome);
            }
        }
        Ok(ids.ordered())
    }

    /// Builds identities from one identity file's text, for tools and
    /// tests.
    pub fn from_text<C: age::Callbacks>(
        text: &[u8],
        place: &str,
        callbacks: C,
    ) -> Result<Identities> {
        let mut ids = Identities {
            loaded: Vec::new(),
            tried: Vec::new(),
            order: Vec::new(),
            recipients: Vec::new(),
            skipped: Vec::new(),
        };
        ids.load_text(text, place.to_owned(), None, &callbacks)?;
        Ok(ids.ordered())
    }

    fn ordered(mut self) -> Identities {
        // Stable: plain keys keep their order, plugins go last.
        self.loaded.sort_by_key(|l| l.plugin);
        self
    }

    fn push_loaded(&mut self, l: Loaded) {
        if !self.order.contains(&l.place) {
            self.order.push(l.place.clone());
        }
        self.loaded.push(l);
    }

    fn note(&mut self, place: &str, outcome: &str) {
        if !self.order.iter().any(|p| p == place) {
            self.order.push(place.to_owned());
        }
        self.tried.push(Tried {
            place: place.to_owned(),
            outcome: outcome.to_owned(),
        });
    }

    fn load_file<C: age::Callbacks>(
        &mut self,
        path: &Path,
        place: String,
        required: bool,
        callbacks: &C,
    ) -> Result<()> {
        let meta = match fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !required => {
                self.note(&place, "not found");
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::Identity {
                    place,
                    message: "no such file".into(),
                });
            }
            Err(e) => return Err(Error::io("read", path, e)),
        };
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(Error::IdentityPermissions {
                path: path.to_owned(),
                mode: mode & 0o7777,
            });
        }
        let mut f = fs::File::open(path).map_err(|e| Error::io("read", path, e))?;
        let mut buf = Zeroizing::new(Vec::new());
        io::Read::read_to_end(&mut io::Read::take(&mut f, MAX_IDENTITY_LEN + 1), &mut buf)
            .map_err(|e| Error::io("read", path, e))?;
        if buf.len() as u64 > MAX_IDENTITY_LEN {
            return Err(Error::Identity {
                place,
                message: "the file is larger than 1 MiB; is it an identity file?".into(),
            });
        }
        self.load_text(&buf, place, Some(path), callbacks)
    }

    fn load_text<C: age::Callbacks>(
        &mut self,
        text: &[u8],
        place: String,
        path: Option<&Path>,
        callbacks: &C,
    ) -> Result<()> {
        let bad = |message: String| Error::Identity {
            place: place.clone(),
            message,
        };
        let filename = path.map(|p| p.display().to_string());
        let trimmed = text.trim_ascii_start();
        if trimmed.starts_with(b"-----BEGIN OPENSSH PRIVATE KEY-----")
            || trimmed.starts_with(b"-----BEGIN RSA PRIVATE KEY-----")
        {
            let id = age::ssh::Identity::from_buffer(BufReader::new(trimmed), filename)
                .map_err(|_| bad("it is not a valid OpenSSH private key".into()))?;
            if let age::ssh::Identity::Unsupported(_) = id {
                self.note(&place, "unsupported SSH key type (use ed25519 or rsa)");
                return Ok(());
            }
            let recipient = age::ssh::Recipient::try_from(id.clone())
                .map_err(|_| bad("its public key is not a supported SSH key".into()))?;
            let may_ask = matches!(id, age::ssh::Identity::Encrypted(_));
            let tag = ssh_tag(&recipient);
            self.recipients.push(RecipientKey::Ssh(recipient.clone()));
            self.push_loaded(Loaded {
                recipient: Some(RecipientKey::Ssh(recipient)),
                place: place.clone(),
                identity: Box::new(SshOnly {
                    inner: Box::new(id.with_callbacks(callbacks.clone())),
                    tag,
                }),
                plugin: false,
                may_ask,
            });
            return Ok(());
        }
        if trimmed.starts_with(b"age-encryption.org/")
            || trimmed.starts_with(crate::crypto::ARMOR_BEGIN.as_bytes())
        {
            // A passphrase-protected identity file, as `age -p` writes.
            let reader = age::armor::ArmoredReader::new(io::Cursor::new(trimmed.to_vec()));
            let id =
                age::encrypted::Identity::from_buffer(reader, filename, callbacks.clone(), None)
                    .map_err(|e| bad(format!("it is an age file but not a readable one: {e}")))?
                    .ok_or_else(|| {
                        bad("it is an age-encrypted file, but not passphrase-protected".into())
                    })?;
            self.push_loaded(Loaded {
                place,
                identity: Box::new(id),
                plugin: false,
                may_ask: true,
                recipient: None,
            });
            return Ok(());
        }
        let text = std::str::from_utf8(text).map_err(|_| bad("it is not UTF-8 text".into()))?;
        let mut count = 0;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Ok(id) = line.parse::<age::x25519::Identity>() {
                self.recipients.push(RecipientKey::X25519(id.to_public()));
                self.push_loaded(Loaded {
                    recipient: Some(RecipientKey::X25519(id.to_public())),
                    place: place.clone(),
                    identity: Box::new(crate::crypto::x25519::X25519Identity::from_age(&id)),
                    plugin: false,
                    may_ask: false,
                });
            } else if let Ok(id) = line.parse::<age::plugin::Identity>() {
                match age::plugin::IdentityPluginV1::new(
                    id.plugin(),
                    std::slice::from_ref(&id),
                    callbacks.clone(),
                ) {
                    Ok(p) => self.push_loaded(Loaded {
                        recipient: None,
                        place: place.clone(),
                        identity: Box::new(p),
                        plugin: true,
                        may_ask: true,
                    }),
                    Err(_) => {
                        self.note(
                            &place,
                            &format!("plugin identity needs age-plugin-{} on PATH", id.plugin()),
                        );
                        continue;
                    }
                }
            } else {
                // A line number, never the line: it may be a damaged key.
                return Err(bad(format!("line {} is not an age identity", i + 1)));
            }
            count += 1;
        }
        if count == 0 && !self.tried.iter().any(|t| t.place == place) {
            return Err(bad("it holds no identity".into()));
        }
        Ok(())
    }

    /// Returns what was wrong with identity files that were skipped (a
    /// default file or SSH key readable by others, or unreadable), for the
    /// caller to mention.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// Sets aside the published demo identity, if it was loaded (see
    /// [`crate::crypto::recipient::DEMO_RECIPIENT`]): it opens only the
    /// sample store, and must never become a real store's recipient.
    /// Returns the places it came from.
    pub fn set_aside_published_demo(&mut self) -> Vec<String> {
        let demo =
            |r: &Option<RecipientKey>| r.as_ref().is_some_and(RecipientKey::is_published_demo);
        let places: Vec<String> = self
            .loaded
            .iter()
            .filter(|l| demo(&l.recipient))
            .map(|l| l.place.clone())
            .collect();
        self.loaded.retain(|l| !demo(&l.recipient));
        self.recipients.retain(|r| !r.is_published_demo());
        places
    }

    /// Returns whether opening a vault key with these identities may wait
    /// on the user (a plugin's touch or PIN, a passphrase): then it is done
    /// outside the store's lock, so that nobody waits on us meanwhile.
    pub fn may_ask(&self) -> bool {
        self.loaded.iter().any(|l| l.may_ask)
    }

    /// Returns true if no identity was found.
    pub fn is_empty(&self) -> bool {
        self.loaded.is_empty()
    }

    /// Returns every place that was looked at, with what was found there.
    pub fn tried(&self) -> Vec<Tried> {
        let mut t = Vec::new();
        for place in &self.order {
            let noted: Vec<&Tried> = self.tried.iter().filter(|x| &x.place == place).collect();
            if noted.is_empty() {
                t.push(Tried {
                    place: place.clone(),
                    outcome: "no match".into(),
                });
            } else {
                t.extend(noted.into_iter().cloned());
            }
        }
        t
    }

    /// Returns the public recipients of the plain (non-plugin) identities,
    /// in lookup order: what `init` registers for the user.
    pub fn recipients(&self) -> &[RecipientKey] {
        &self.recipients
    }

    /// Iterates over the identities, in the order to try them.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.loaded.iter().map(|l| l.identity.as_ref())
    }
}

/// The SSH stanza tag of a recipient: base64 of the first 4 bytes of the
/// SHA-256 of its wire-format public key (age spec, ssh-ed25519 stanza).
fn ssh_tag(r: &age::ssh::Recipient) -> String {
    let text = r.to_string();
    let blob = text
        .split(' ')
        .nth(1)
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_default();
    let d = Sha256::digest(&blob);
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(&d[..4])
}

/// Restricts an SSH identity to stanzas made for its own key, so that an
/// encrypted key asks for its passphrase only when it can actually help.
struct SshOnly {
    inner: Box<dyn age::Identity>,
    tag: String,
}

impl age::Identity for SshOnly {
    fn unwrap_stanza(
        &self,
        stanza: &age_core::format::Stanza,
    ) -> Option<std::result::Result<age_core::format::FileKey, age::DecryptError>> {
        let ours = (stanza.tag == "ssh-ed25519" || stanza.tag == "ssh-rsa")
            && stanza.args.first() == Some(&self.tag);
        if ours {
            self.inner.unwrap_stanza(stanza)
        } else {
            None
        }
    }
}

/// Generates a new X25519 identity and returns the identity file text (in
/// `age-keygen`'s format) and its public recipient.
pub fn generate_identity_file(now: &str) -> (Zeroizing<String>, String) {
    let id = age::x25519::Identity::generate();
    let public = id.to_public().to_string();
    let text = Zeroizing::new(format!(
        "# created: {now}\n# public key: {public}\n{}\n",
        id.to_string().expose_secret()
    ));
    (text, public)
}

/// Writes a new identity file with mode 0600, creating its parent
/// directory (0700) if needed, never overwriting. Returns the recipient.
pub fn write_new_identity(path: &Path, now: &str) -> Result<String> {
    if let Some(parent) = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty() && !p.exists())
    {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| Error::io("create", parent, e))?;
    }
    let (text, public) = generate_identity_file(now);
    fsio::write_new(path, text.as_bytes(), 0o600)?;
    Ok(public)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_mode(path: &Path, text: &str, mode: u32) {
        fs::write(path, text).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn finds_every_source_in_order_and_records_the_rest() {
        let d = tempfile::tempdir().unwrap();
        let default = d.path().join("identity.txt");
        let (text, public) = generate_identity_file("now");
        write_mode(&default, &text, 0o600);
        let (env_text, env_public) = generate_identity_file("now");
        let sources = IdentitySources {
            env_key: Some(SecretString::from(env_text.to_string())),
            default_file: Some(default.clone()),
            ssh_dir: Some(d.path().join("ssh")),
            ..Default::default()
        };
        let ids = Identities::load(&sources, age::NoCallbacks).unwrap();
        let rs: Vec<String> = ids.recipients().iter().map(|r| r.to_string()).collect();
        assert_eq!(rs, vec![env_public, public]);
        let tried = ids.tried();
        let places: Vec<&str> = tried.iter().map(|t| t.place.as_str()).collect();
        assert!(places.contains(&"COFFER_IDENTITY"));
        assert!(places.iter().any(|p| p.ends_with("id_ed25519")));
        assert!(places.iter().any(|p| p.ends_with("id_rsa")));
    }

    #[test]
    fn flags_are_exclusive_and_required() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("nope.txt");
        let sources = IdentitySources {
            flags: vec![missing],
            ..Default::default()
        };
        let err = Identities::load(&sources, age::NoCallbacks).unwrap_err();
        assert!(err.to_string().contains("no such file"), "{err}");
    }

    #[test]
    fn group_readable_identity_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("id.txt");
        let (text, _) = generate_identity_file("now");
        for mode in [0o644, 0o640, 0o604] {
            write_mode(&p, &text, mode);
            let sources = IdentitySources {
                flags: vec![p.clone()],
                ..Default::default()
            };
            let err = Identities::load(&sources, age::NoCallbacks).unwrap_err();
            assert!(matches!(err, Error::IdentityPermissions { .. }), "{mode:o}");
        }
    }

    #[test]
    fn bad_identity_text_reports_a_line_number_not_the_line() {
        let text = "# comment\nAGE-SECRET-KEY-1NOTAREALKEYSENTINEL\n";
        let err = Identities::from_text(text.as_bytes(), "COFFER_AGE_KEY", age::NoCallbacks)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains("SENTINEL"), "{err}");
    }
}
