//! The Tailor target's own rules: workspace ids, URLs, the SDK's labels
//! and reserved vaults, and what Connect codes are to the engine.

use super::*;
use crate::sync::remote::ErrorKind;

const WS: &str = "123e4567-e89b-12d3-a456-426614174000";

#[test]
fn workspace_ids_and_urls_are_validated() {
    assert!(WS.parse::<WorkspaceId>().is_ok());
    assert!(WS.to_uppercase().parse::<WorkspaceId>().is_ok());
    for bad in [
        "",
        "not-a-uuid",
        &WS[1..],
        &format!("{WS}0"),
        &WS.replace('-', "_"),
    ] {
        assert!(bad.parse::<WorkspaceId>().is_err(), "{bad}");
    }
    for ok in [
        "https://api.tailor.tech",
        "https://api.tailor.tech/",
        "http://127.0.0.1:8080",
        "http://localhost:1",
        "http://[::1]:9",
    ] {
        assert!(ok.parse::<PlatformUrl>().is_ok(), "{ok}");
    }
    assert_eq!(
        "https://x.example/"
            .parse::<PlatformUrl>()
            .unwrap()
            .as_str(),
        "https://x.example"
    );
    for bad in [
        "api.tailor.tech",
        "http://api.tailor.tech",
        "http://10.0.0.1",
        "ftp://x",
        "https://user:pw@x.example",
        "https://x.example?q=1",
        "https://",
    ] {
        assert!(bad.parse::<PlatformUrl>().is_err(), "{bad}");
    }
}

#[test]
fn invalid_urls_and_workspace_ids_are_never_echoed_with_credentials() {
    let err = "https://ci:tpp_SENTINELTOKEN@api.example.com/x?token=tpp_Q"
        .parse::<PlatformUrl>()
        .unwrap_err()
        .to_string();
    assert!(!err.contains("SENTINEL") && !err.contains("tpp_Q"), "{err}");
    assert!(err.contains("https://…@api.example.com/x…"), "{err}");
    let err = "tpp_SENTINELTOKEN"
        .parse::<WorkspaceId>()
        .unwrap_err()
        .to_string();
    assert!(!err.contains("SENTINEL"), "{err}");
    assert!(err.contains("17 characters"), "{err}");
}

#[test]
fn a_vault_labelled_by_the_sdk_is_managed_and_an_idp_vault_is_reserved() {
    let labels: BTreeMap<String, String> = [("sdk-name".into(), "app".into())].into();
    assert_eq!(
        managed_by(&labels).as_deref(),
        Some("managed by the SDK's defineSecretManager() (label sdk-name)")
    );
    assert_eq!(managed_by(&BTreeMap::new()), None);
    assert!(reserved("idp-ns-client").is_some());
    assert!(reserved("app").is_none());
}

#[test]
fn ownership_is_read_as_the_sdk_reads_it_app_id_first_and_empty_labels_as_none() {
    let l = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    // Released: sdk-name and sdk-version removed, sdk-app-id kept.
    let released = managed_by(&l(&[("sdk-app-id", "app-1234")]));
    assert!(
        released
            .as_deref()
            .is_some_and(|r| r.contains("label sdk-app-id")),
        "{released:?}"
    );
    // sdk-app-id wins over sdk-name.
    let both = managed_by(&l(&[("sdk-name", "shop"), ("sdk-app-id", "app-1")]));
    let both = both.unwrap();
    assert!(both.contains("sdk-app-id"), "{both}");
    // An empty label is no label.
    assert_eq!(managed_by(&l(&[("sdk-name", "")])), None);
    assert_eq!(
        managed_by(&l(&[("sdk-name", ""), ("sdk-app-id", "")])),
        None
    );
    assert_eq!(managed_by(&l(&[("team", "payments")])), None);
    // The label's value (the platform's text) is never repeated.
    assert!(!both.contains("shop"), "{both}");
}

#[test]
fn labels_that_cannot_be_read_leave_the_owner_unknown_unless_there_are_none() {
    for (code, free) in [
        (Code::Internal, false),
        (Code::Unknown, false),
        (Code::PermissionDenied, false),
        (Code::Unauthenticated, false),
        (Code::NotFound, true),
        (Code::Unimplemented, true),
        (Code::InvalidArgument, true),
    ] {
        let r = owner_from_labels(Err(code.error("GetMetadata", "")));
        assert_eq!(r.is_ok_and(|o| o.is_none()), free, "{code:?}");
    }
}

#[test]
fn connect_codes_keep_their_words_and_retry_as_before() {
    let e = Code::Unauthenticated.error("ListSecretManagerVaults", "expired");
    assert_eq!(e.kind, ErrorKind::Unauthenticated);
    assert_eq!(
        e.to_string(),
        "ListSecretManagerVaults: the platform did not accept the token (unauthenticated): expired"
    );
    for code in [Code::Unavailable, Code::ResourceExhausted, Code::Transport] {
        assert!(code.kind().is_transient(), "{code:?}");
    }
    for code in [Code::Internal, Code::NotFound, Code::DeadlineExceeded] {
        assert!(!code.kind().is_transient(), "{code:?}");
    }
}

#[test]
fn the_target_id_tells_workspaces_and_platforms_apart() {
    let ws: WorkspaceId = WS.parse().unwrap();
    let other: WorkspaceId = "00000000-0000-0000-0000-000000000001".parse().unwrap();
    let a: PlatformUrl = "https://api.tailor.tech".parse().unwrap();
    let b: PlatformUrl = "http://127.0.0.1:9".parse().unwrap();
    let ids = [
        target_id(&a, &ws),
        target_id(&a, &other),
        target_id(&b, &ws),
    ];
    assert_ne!(ids[0], ids[1]);
    assert_ne!(ids[0], ids[2]);
    assert_eq!(ids[0], format!("https://api.tailor.tech#{WS}"));
}
