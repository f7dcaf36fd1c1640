//! A stand-in age plugin for coffer's tests: `age-plugin-counter`.
//!
//! It speaks the real age plugin protocol (C2SP age-plugin.md, through the
//! `age-plugin` crate), so coffer drives it exactly as it would drive
//! `age-plugin-yubikey`, and it appends one line per run to the file named
//! by `COFFER_TEST_PLUGIN_LOG` (`identity-v1` or `recipient-v1`). Tests use
//! the count to prove that a hardware key is asked once per vault, not once
//! per secret.
//!
//! NOT A REAL PLUGIN: its "wrapping" is derived from the public recipient,
//! so anyone can unwrap. Test use only.
//!
//! Usage: `age-plugin-counter` prints a new identity and its recipient;
//! age runs it with `--age-plugin=recipient-v1|identity-v1`.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};

use age_core::format::{FileKey, Stanza};
use age_core::secrecy::ExposeSecret;
use age_plugin::identity::{self, IdentityPluginV1};
use age_plugin::recipient::{self, RecipientPluginV1};
use age_plugin::{Callbacks, PluginHandler, print_new_identity, run_state_machine};
use sha2::{Digest, Sha256};

const NAME: &str = "counter";

/// The recipient bytes for an identity: a hash of it.
fn recipient_of(identity: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(b"counter recipient")
        .chain_update(identity)
        .finalize()
        .into()
}

/// The pad XORed into the file key, and the stanza's tag argument.
fn pad_and_tag(recipient: &[u8]) -> ([u8; 16], String) {
    let d: [u8; 32] = Sha256::new()
        .chain_update(b"counter wrap")
        .chain_update(recipient)
        .finalize()
        .into();
    let mut pad = [0u8; 16];
    pad.copy_from_slice(&d[..16]);
    let tag = d[16..20].iter().map(|b| format!("{b:02x}")).collect();
    (pad, tag)
}

fn log(what: &str) {
    if let Some(path) = std::env::var_os("COFFER_TEST_PLUGIN_LOG") {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("the log file is writable");
        writeln!(f, "{what}").expect("the log file is writable");
    }
}

struct Handler;

impl PluginHandler for Handler {
    type RecipientV1 = Wrap;
    type IdentityV1 = Unwrap;

    fn recipient_v1(self) -> io::Result<Wrap> {
        log("recipient-v1");
        Ok(Wrap(Vec::new()))
    }

    fn identity_v1(self) -> io::Result<Unwrap> {
        log("identity-v1");
        Ok(Unwrap(Vec::new()))
    }
}

struct Wrap(Vec<Vec<u8>>);

impl RecipientPluginV1 for Wrap {
    fn add_recipient(
        &mut self,
        index: usize,
        plugin_name: &str,
        bytes: &[u8],
    ) -> Result<(), recipient::Error> {
        if plugin_name != NAME || bytes.len() != 32 {
            return Err(recipient::Error::Recipient {
                index,
                message: "not a counter recipient".into(),
            });
        }
        self.0.push(bytes.to_vec());
        Ok(())
    }

    fn add_identity(&mut self, index: usize, _: &str, _: &[u8]) -> Result<(), recipient::Error> {
        Err(recipient::Error::Identity {
            index,
            message: "identities are not recipients here".into(),
        })
    }

    fn labels(&mut self) -> HashSet<String> {
        HashSet::new()
    }

    fn wrap_file_keys(
        &mut self,
        file_keys: Vec<FileKey>,
        _: impl Callbacks<recipient::Error>,
    ) -> io::Result<Result<Vec<Vec<Stanza>>, Vec<recipient::Error>>> {
        let stanzas = file_keys
            .iter()
            .map(|fk| {
                self.0
                    .iter()
                    .map(|r| {
                        let (pad, tag) = pad_and_tag(r);
                        let body = fk
                            .expose_secret()
                            .iter()
                            .zip(pad)
                            .map(|(a, b)| a ^ b)
                            .collect();
                        Stanza {
                            tag: NAME.into(),
                            args: vec![tag],
                            body,
                        }
                    })
                    .collect()
            })
            .collect();
        Ok(Ok(stanzas))
    }
}

struct Unwrap(Vec<[u8; 32]>);

impl IdentityPluginV1 for Unwrap {
    fn add_identity(
        &mut self,
        index: usize,
        plugin_name: &str,
        bytes: &[u8],
    ) -> Result<(), identity::Error> {
        if plugin_name != NAME {
            return Err(identity::Error::Identity {
                index,
                message: "not a counter identity".into(),
            });
        }
        self.0.push(recipient_of(bytes));
        Ok(())
    }

    fn unwrap_file_keys(
        &mut self,
        files: Vec<Vec<Stanza>>,
        _: impl Callbacks<identity::Error>,
    ) -> io::Result<HashMap<usize, Result<FileKey, Vec<identity::Error>>>> {
        let mut out = HashMap::new();
        for (i, stanzas) in files.iter().enumerate() {
            for s in stanzas
                .iter()
                .filter(|s| s.tag == NAME && s.body.len() == 16)
            {
                for r in &self.0 {
                    let (pad, tag) = pad_and_tag(r);
                    if s.args.first() != Some(&tag) {
                        continue;
                    }
                    let key = FileKey::try_init_with_mut(|k| {
                        for (j, b) in k.iter_mut().enumerate() {
                            *b = s.body[j] ^ pad[j];
                        }
                        Ok::<(), ()>(())
                    })
                    .expect("infallible");
                    out.entry(i).or_insert(Ok(key));
                }
            }
        }
        Ok(out)
    }
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(sm) = args.iter().find_map(|a| a.strip_prefix("--age-plugin=")) {
        return run_state_machine(sm, Handler);
    }
    let mut identity = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| io::Read::read_exact(&mut f, &mut identity))?;
    print_new_identity(NAME, &identity, &recipient_of(&identity));
    Ok(())
}
