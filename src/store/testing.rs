//! A real store for the library's own tests (test builds only).

use age::secrecy::ExposeSecret;

use crate::crypto::identity::Identities;
use crate::crypto::recipient::RecipientKey;
use crate::name::{RecipientName, VaultName};
use crate::store::root::Store;
use crate::time::Time;

/// A store in a temporary directory whose one member, `alice`, has a
/// fresh identity, with one empty vault `vault`; alice's identities open
/// it. The directory lives as long as the first value.
pub(crate) fn store_with_vault(vault: &str) -> (tempfile::TempDir, Store, Identities) {
    let d = tempfile::tempdir().unwrap();
    let id = age::x25519::Identity::generate();
    let who: RecipientName = "alice".parse().unwrap();
    let key: RecipientKey = id.to_public().to_string().parse().unwrap();
    let store = Store::init(d.path(), &who, &key).unwrap();
    let text = id.to_string();
    let ids =
        Identities::from_text(text.expose_secret().as_bytes(), "test", age::NoCallbacks).unwrap();
    let vname: VaultName = vault.parse().unwrap();
    let (recipients, _) = store.new_vault_recipients(&vname, &ids).unwrap();
    store
        .create_vault(&vname, &recipients, Time::now(), age::NoCallbacks)
        .unwrap();
    (d, store, ids)
}
