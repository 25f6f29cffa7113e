//! The group rules, checked without I/O.

use super::*;

const NOW: i64 = 1_800_000_000_000_000;

fn request() -> GroupRequest {
    GroupRequest {
        display_name: "Network operations".into(),
        description: "Routers, switches, firewalls".into(),
        email: "network@example.com".into(),
        manager: "ada".into(),
        members: vec!["grace".into(), "ada".into(), "grace".into()],
    }
}

fn fields(error: &ApiError) -> Vec<&str> {
    error
        .field_violations()
        .iter()
        .map(|v| v.field.as_str())
        .collect()
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

#[test]
fn a_valid_group_is_normalized() {
    let group = request().validate_new("network").unwrap();
    assert_eq!(group.members, ["ada", "grace"], "sorted, deduplicated");
    let optional = GroupRequest {
        description: String::new(),
        email: String::new(),
        manager: String::new(),
        members: vec![],
        ..request()
    };
    assert!(
        optional.validate_new("ne").is_ok(),
        "only the name is required"
    );
}

#[test]
fn every_bad_field_is_named_at_once() {
    let bad = GroupRequest {
        display_name: " ".into(),
        description: "x".repeat(1001),
        email: "not an address".into(),
        manager: "ada lovelace".into(),
        members: vec!["ok".into(), String::new(), "a,b".into()],
    };
    let error = bad.validate_new("Network").unwrap_err();
    assert_eq!(
        fields(&error),
        [
            "group_id",
            "group.display_name",
            "group.description",
            "group.email",
            "group.manager",
            "group.members[1]",
            "group.members[2]"
        ]
    );
}

#[test]
fn at_most_a_thousand_distinct_members() {
    let many = |n: usize| GroupRequest {
        members: (0..n).map(|i| format!("user-{i}")).collect(),
        ..request()
    };
    assert!(many(MEMBERS_MAX).validate().is_ok());
    let error = many(MEMBERS_MAX + 1).validate().unwrap_err();
    assert_eq!(fields(&error), ["group.members"]);
    assert!(error.message().contains("1001"), "{}", error.message());
    let mut repeated = many(MEMBERS_MAX);
    repeated.members.push("user-0".into());
    assert!(
        repeated.validate().is_ok(),
        "a repeat is not another member"
    );
}

#[test]
fn group_ids_follow_the_pattern() {
    for good in ["ne", "network", "cab-2", &format!("a{}", "b".repeat(62))] {
        assert!(is_group_id(good), "{good}");
    }
    for bad in [
        "",
        "n",
        "2nd",
        "-net",
        "Network",
        "net_ops",
        "net.ops",
        &"a".repeat(64),
    ] {
        assert!(!is_group_id(bad), "{bad}");
    }
    assert_eq!(
        group_id_from_name("groups/network", "name").unwrap(),
        "network"
    );
    for bad in [
        "network",
        "groups/",
        "groups/Network",
        "apiKeys/network",
        "groups/a/b",
    ] {
        assert!(group_id_from_name(bad, "name").is_err(), "{bad}");
    }
}

#[test]
fn subjects_and_emails() {
    for good in [
        "ada",
        "ada@example.com",
        "svc-monitoring",
        "0b5f3c1e-7d3a-4c59",
    ] {
        assert!(is_subject(good), "{good}");
    }
    for bad in ["", "a b", "a,b", "a\tb", "a\u{0}b", &"x".repeat(257)] {
        assert!(!is_subject(bad), "{bad:?}");
    }
    assert!(check_subject("ada", "member").is_ok());
    assert_eq!(
        fields(&check_subject("", "member").unwrap_err()),
        ["member"]
    );
    for bad in ["team", "@example.com", "team@", "a@b@c", "a b@c.d"] {
        let group = GroupRequest {
            email: bad.into(),
            ..request()
        };
        assert!(group.validate().is_err(), "{bad}");
    }
}

#[test]
fn update_masks_name_known_fields_once() {
    let mask = parse_update_mask(&strings(&["members", "display_name", "members"])).unwrap();
    assert_eq!(mask, [GroupField::Members, GroupField::DisplayName]);
    let error = parse_update_mask(&[]).unwrap_err();
    assert_eq!(fields(&error), ["update_mask"]);
    let error = parse_update_mask(&strings(&["email", "name", "etag"])).unwrap_err();
    assert_eq!(
        fields(&error),
        ["update_mask.paths[1]", "update_mask.paths[2]"]
    );
}

#[test]
fn an_update_changes_only_the_masked_fields() {
    let current = Group::create("network".into(), request().validate().unwrap(), NOW);
    let wanted = GroupRequest {
        display_name: "ignored".into(),
        manager: "grace".into(),
        members: vec!["linus".into(), "ada".into()],
        ..GroupRequest::default()
    };
    let merged = current
        .request()
        .merge(wanted, &[GroupField::Manager, GroupField::Members]);
    assert_eq!(merged.display_name, "Network operations");
    assert_eq!(merged.email, "network@example.com");

    let mut group = current.clone();
    let changes = group.update(merged.validate().unwrap(), NOW + 1);
    assert_eq!(
        changes,
        [
            FieldChange::new("manager", "ada", "grace"),
            FieldChange::new("members", "grace", ""),
            FieldChange::new("members", "", "linus"),
        ]
    );
    assert_eq!(group.members, ["ada", "linus"]);
    assert_eq!((group.version, group.update_time), (2, NOW + 1));

    let same = group.request().validate().unwrap();
    assert!(group.update(same, NOW + 2).is_empty());
    assert_eq!((group.version, group.update_time), (2, NOW + 1), "no-op");
}

#[test]
fn members_join_once_and_leave_once() {
    let mut group = Group::create("network".into(), request().validate().unwrap(), NOW);
    let change = group.add_member("linus", NOW + 1).unwrap();
    assert_eq!(change, Some(FieldChange::new("members", "", "linus")));
    assert_eq!(group.members, ["ada", "grace", "linus"]);
    assert!(group.is_member("linus") && !group.is_member("lin"));
    assert_eq!(group.add_member("linus", NOW + 2).unwrap(), None);
    assert_eq!(group.version, 2, "adding twice changes nothing");

    let change = group.remove_member("ada", NOW + 3).unwrap();
    assert_eq!(change, FieldChange::new("members", "ada", ""));
    let error = group.remove_member("ada", NOW + 4).unwrap_err();
    assert_eq!(error.code(), ErrorCode::NotFound);
    assert!(error.message().contains("\"ada\""), "{}", error.message());
    assert_eq!((group.version, group.members.len()), (3, 2));
}

#[test]
fn a_full_group_takes_no_one_else() {
    let full = GroupRequest {
        members: (0..MEMBERS_MAX).map(|i| format!("user-{i}")).collect(),
        ..request()
    };
    let mut group = Group::create("big".into(), full.validate().unwrap(), NOW);
    let error = group.add_member("one-more", NOW).unwrap_err();
    assert_eq!(error.code(), ErrorCode::FailedPrecondition);
    assert_eq!(
        group.add_member("user-7", NOW).unwrap(),
        None,
        "still harmless"
    );
    group.remove_member("user-7", NOW).unwrap();
    assert!(group.add_member("one-more", NOW).unwrap().is_some());
}

#[test]
fn creation_and_deletion_record_every_field_and_member() {
    let mut group = Group::create("network".into(), request().validate().unwrap(), NOW);
    let created = group.creation_changes();
    assert_eq!(
        created[0],
        FieldChange::new("display_name", "", "Network operations")
    );
    assert_eq!(created.iter().filter(|c| c.field == "members").count(), 2);
    let deleted = group.delete(NOW + 1);
    assert_eq!(deleted.len(), created.len());
    assert!(deleted.iter().all(|c| c.new.is_empty()));
    assert_eq!(group.version, 2, "the deletion is the last version");
}
