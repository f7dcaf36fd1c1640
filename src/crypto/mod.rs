//! Everything that touches age, keys, digests and MACs. Only this part
//! calls the age crate.
//!
//! - `age_file`: armored age files, strict decryption, stanza rules;
//! - `x25519`: the X25519 stanza through aws-lc-rs;
//! - `vault_key`: a vault's own key and the keys derived from it;
//! - `mac`: SHA-256 digests, length-prefixed MAC messages, hex;
//! - `identity`: finding and loading the user's identities;
//! - `recipient`: recipient public keys.
//!
//! Files inside this part import each other by file; everything above
//! imports the names re-exported here.

pub mod age_file;
pub mod identity;
pub mod mac;
pub mod recipient;
pub mod vault_key;
pub mod x25519;

#[cfg(test)]
mod reader_tests;
#[cfg(test)]
mod tests;

/// What age asks of the caller (a passphrase, a touch of a hardware key):
/// the parts above take it from here, so that only this part names age.
pub use age::{Callbacks, NoCallbacks};
pub(crate) use age_file::encrypt_to_keys;
pub use age_file::encrypt_to_recipient;
pub use age_file::{ARMOR_BEGIN, MAX_GREASE, StanzaCount, count_stanzas, plaintext_len};
pub use identity::{Identities, IdentitySources, generate_identity_file, write_new_identity};
pub(crate) use mac::MacInput;
pub use mac::digest;
pub use recipient::RecipientKey;
pub use vault_key::VaultKey;
pub(crate) use vault_key::{DecryptFailure, decrypt_vault_key};
pub use x25519::is_canonical_recipient;
