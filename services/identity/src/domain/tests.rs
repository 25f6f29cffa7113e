//! The domain rules, checked without I/O.

use super::*;

const NOW: i64 = 1_800_000_000_000_000;
const DAY: i64 = 24 * 3600 * 1_000_000;

fn request() -> KeyRequest {
    KeyRequest {
        display_name: "Prometheus bridge".into(),
        service_account: "svc-monitoring".into(),
        roles: vec!["service".into(), "agent".into(), "service".into()],
        description: String::new(),
        expire_time: Some(((NOW + 30 * DAY) / 1_000_000, 0)),
    }
}

fn fields(error: &ApiError) -> Vec<&str> {
    error
        .field_violations()
        .iter()
        .map(|v| v.field.as_str())
        .collect()
}

#[test]
fn a_valid_request_is_normalized() {
    let key = request().validate(NOW).unwrap();
    assert_eq!(key.roles, ["agent", "service"], "sorted, deduplicated");
    assert_eq!(key.expire_time, NOW + 30 * DAY);
}

#[test]
fn every_bad_field_is_named_at_once() {
    let bad = KeyRequest {
        display_name: "  ".into(),
        service_account: "Svc_Monitoring".into(),
        roles: vec!["agent".into(), "root".into()],
        description: "x".repeat(1001),
        expire_time: Some(((NOW - DAY) / 1_000_000, 0)),
    };
    let error = bad.validate(NOW).unwrap_err();
    assert_eq!(
        fields(&error),
        [
            "api_key.display_name",
            "api_key.service_account",
            "api_key.roles[1]",
            "api_key.description",
            "api_key.expire_time"
        ]
    );
    let none = KeyRequest {
        roles: vec![],
        expire_time: None,
        display_name: "x".repeat(101),
        ..request()
    };
    let error = none.validate(NOW).unwrap_err();
    assert_eq!(
        fields(&error),
        [
            "api_key.display_name",
            "api_key.roles",
            "api_key.expire_time"
        ]
    );
}

#[test]
fn expiry_is_within_two_years() {
    let at = |micros: i64| KeyRequest {
        expire_time: Some((micros.div_euclid(1_000_000), 0)),
        ..request()
    };
    assert!(at(NOW + MAX_LIFETIME_MICROS).validate(NOW).is_ok());
    assert!(
        at(NOW + MAX_LIFETIME_MICROS + 1_000_000)
            .validate(NOW)
            .is_err()
    );
    assert!(at(NOW).validate(NOW).is_err(), "now is not the future");
    let bad_nanos = KeyRequest {
        expire_time: Some((NOW / 1_000_000 + 60, -1)),
        ..request()
    };
    assert!(bad_nanos.validate(NOW).is_err());
}

#[test]
fn times_read_as_rfc3339() {
    assert_eq!(rfc3339(NOW), "2027-01-15T08:00:00Z");
    assert_eq!(rfc3339(1_500_000), "1970-01-01T00:00:01.5Z");
}

#[test]
fn service_accounts_follow_the_pattern() {
    for good in [
        "svc",
        "svc-monitoring",
        "a1-",
        &format!("a{}", "b".repeat(62)),
    ] {
        assert!(is_service_account(good), "{good}");
    }
    for bad in [
        "",
        "sv",
        "1svc",
        "-svc",
        "Svc",
        "svc_x",
        "svc.x",
        &"a".repeat(64),
    ] {
        assert!(!is_service_account(bad), "{bad}");
    }
}

#[test]
fn only_admins_grant_admin() {
    let admin = vec!["admin".to_owned()];
    assert!(check_grant(&admin, true).is_ok());
    let error = check_grant(&admin, false).unwrap_err();
    assert_eq!(error.code(), itsm_platform::ErrorCode::PermissionDenied);
    assert!(check_grant(&["agent".to_owned()], false).is_ok());
}

#[test]
fn names_carry_a_twelve_hex_key_id() {
    assert_eq!(
        key_id_from_name("apiKeys/0123456789ab", "name").unwrap(),
        "0123456789ab"
    );
    for bad in [
        "",
        "apiKeys/",
        "apiKeys/0123456789AB",
        "keys/0123456789ab",
        "apiKeys/0123456789abc",
    ] {
        assert!(key_id_from_name(bad, "name").is_err(), "{bad}");
    }
}

#[test]
fn a_key_expires_and_is_revoked_once() {
    let new = request().validate(NOW).unwrap();
    let mut key = ApiKey::issue(new, "0123456789ab".into(), Actor::default(), NOW);
    assert_eq!(key.state(NOW), KeyState::Active);
    assert_eq!(key.state(NOW + 30 * DAY), KeyState::Expired);
    let changes = key
        .revoke(Actor::default(), "leaked", NOW + 31 * DAY)
        .unwrap();
    assert_eq!(changes[0], FieldChange::new("state", "EXPIRED", "REVOKED"));
    assert_eq!((key.state(NOW), key.version), (KeyState::Revoked, 2));
    let error = key.revoke(Actor::default(), "", NOW).unwrap_err();
    assert_eq!(error.code(), itsm_platform::ErrorCode::FailedPrecondition);
    assert!(error.message().contains("REVOKED"), "{}", error.message());
    assert_eq!(key.version, 2, "untouched on error");
}
