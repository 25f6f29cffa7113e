//! Assignment groups over the real server, on both backends: created,
//! read, listed (by member too), updated under an etag, deleted, and every
//! change leaving its audit entry and event. Membership calls are in
//! `memberships.rs`.

use itsm_proto::itsm::identity::v1 as pb;
use itsm_testkit::{TestDb, backend_tests};
use prost::Message as _;
use tonic::Code;

use super::support::{
    ADMIN, AGENT, Harness, as_, bad_fields, create_group_request, group_for, start,
};

backend_tests!(
    a_group_is_created_read_and_listed,
    group_lists_page_through_a_filter_and_a_member,
    an_update_changes_the_masked_fields_under_the_etag,
    a_deleted_group_is_gone_with_its_members,
    bad_group_input_names_every_field_and_writes_nothing,
    a_retried_group_create_returns_the_first_group,
    group_changes_leave_an_audit_entry_and_an_event,
);

/// Groups' rows and the rows every change writes beside them.
const TABLES: [&str; 5] = [
    "groups",
    "group_members",
    "audit_log",
    "outbox",
    "idempotency_keys",
];

async fn counts(svc: &Harness) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in TABLES {
        counts.push(svc.count(table).await);
    }
    counts
}

fn names(groups: &[pb::Group]) -> Vec<&str> {
    groups.iter().map(|g| g.name.as_str()).collect()
}

async fn a_group_is_created_read_and_listed(db: TestDb) {
    let mut svc = start(&db).await;
    let created = svc
        .create_group("network", &["linus", "ada", "linus"])
        .await;
    assert_eq!(created.name, "groups/network");
    assert_eq!(created.display_name, "network team");
    assert_eq!(
        (created.email.as_str(), created.manager.as_str()),
        ("team@example.com", "grace")
    );
    assert_eq!(created.members, ["ada", "linus"], "sorted, deduplicated");
    assert_eq!(created.etag, "v1");
    assert!(created.create_time.is_some());
    assert_eq!(created.update_time, created.create_time);

    let read = svc.get_group("groups/network").await.unwrap();
    assert_eq!(read, created);
    let listed = svc.list_groups(Default::default()).await.unwrap();
    assert_eq!(listed.groups, [created]);
    assert_eq!(listed.next_page_token, "");
    assert_eq!(svc.count("group_members").await, 2, "one row per member");

    let missing = svc.get_group("groups/nope").await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    assert!(missing.message().contains("groups/nope"));
    let malformed = svc.get_group("groups/Network").await.unwrap_err();
    assert_eq!(bad_fields(&malformed), ["name"]);
}

async fn group_lists_page_through_a_filter_and_a_member(db: TestDb) {
    let mut svc = start(&db).await;
    let mut wanted = Vec::new();
    for i in 0..5 {
        let ada = svc
            .create_group(&format!("team-a{i}"), &["ada", "bob"])
            .await;
        wanted.push(ada.name);
        svc.create_group(&format!("team-b{i}"), &["bob"]).await;
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let request = pb::ListGroupsRequest {
            page_size: 2,
            page_token: token,
            member: Some("ada".into()),
            ..Default::default()
        };
        let page = svc.list_groups(request).await.unwrap();
        pages += 1;
        assert!(page.groups.len() <= 2);
        assert!(page.groups.iter().all(|g| g.members == ["ada", "bob"]));
        seen.extend(page.groups.into_iter().map(|g| g.name));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(pages, 3);
    wanted.reverse(); // newest first by default
    assert_eq!(seen, wanted);

    let by_name = pb::ListGroupsRequest {
        order_by: "display_name".into(),
        filter: r#"display_name:"b" AND manager = "grace""#.into(),
        ..Default::default()
    };
    let listed = svc.list_groups(by_name).await.unwrap().groups;
    assert_eq!(
        names(&listed),
        [
            "groups/team-b0",
            "groups/team-b1",
            "groups/team-b2",
            "groups/team-b3",
            "groups/team-b4"
        ]
    );
    let stranger = pb::ListGroupsRequest {
        member: Some("nobody".into()),
        ..Default::default()
    };
    assert!(svc.list_groups(stranger).await.unwrap().groups.is_empty());
    let everyone = svc.list_groups(Default::default()).await.unwrap();
    assert_eq!(everyone.groups.len(), 10, "no member, no restriction");

    let bad_filter = pb::ListGroupsRequest {
        filter: r#"members = "ada""#.into(),
        ..Default::default()
    };
    let status = svc.list_groups(bad_filter).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let empty_member = pb::ListGroupsRequest {
        member: Some(String::new()),
        ..Default::default()
    };
    let status = svc.list_groups(empty_member).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["member"]);
}

async fn an_update_changes_the_masked_fields_under_the_etag(db: TestDb) {
    let mut svc = start(&db).await;
    let created = svc.create_group("network", &["ada", "linus"]).await;
    let change = pb::Group {
        name: created.name.clone(),
        display_name: "Network operations".into(),
        members: vec!["linus".into(), "grace".into()],
        description: "not in the mask: ignored".into(),
        ..Default::default()
    };

    let stale = svc
        .update_group(change.clone(), &["display_name"], "v7")
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted, "{stale:?}");
    let no_etag = svc
        .update_group(change.clone(), &["display_name"], "")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&no_etag), ["etag"]);
    let bad_mask = svc
        .update_group(change.clone(), &["display_name", "name"], &created.etag)
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&bad_mask), ["update_mask.paths[1]"]);
    let no_mask = svc
        .update_group(change.clone(), &[], &created.etag)
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&no_mask), ["update_mask"]);
    let blank = pb::Group {
        display_name: " ".into(),
        ..change.clone()
    };
    let invalid = svc
        .update_group(blank, &["display_name"], &created.etag)
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&invalid), ["group.display_name"]);
    assert_eq!(svc.get_group(&created.name).await.unwrap(), created);

    let updated = svc
        .update_group(change.clone(), &["display_name", "members"], &created.etag)
        .await
        .unwrap();
    assert_eq!(updated.display_name, "Network operations");
    assert_eq!(updated.members, ["grace", "linus"]);
    assert_eq!(updated.description, "for tests", "not in the mask");
    assert_eq!(updated.etag, "v2");
    let micros = |t: Option<prost_types::Timestamp>| {
        let t = t.unwrap();
        t.seconds * 1_000_000 + i64::from(t.nanos / 1_000)
    };
    assert!(micros(updated.update_time) > micros(updated.create_time));
    assert_eq!(svc.get_group(&created.name).await.unwrap(), updated);
    assert!(svc.check("groups/network", "grace").await.unwrap().member);
    assert!(!svc.check("groups/network", "ada").await.unwrap().member);

    // The same values again: nothing to record, no new version.
    let again = svc
        .update_group(change, &["display_name", "members"], &updated.etag)
        .await
        .unwrap();
    assert_eq!(again.etag, "v2");
    assert_eq!(svc.audit_actions(&created.name).await, ["create", "update"]);
}

async fn a_deleted_group_is_gone_with_its_members(db: TestDb) {
    let mut svc = start(&db).await;
    let group = svc.create_group("network", &["ada", "grace"]).await;
    svc.create_group("database", &["ada"]).await;

    let stale = svc.delete_group(&group.name, "v5").await.unwrap_err();
    assert_eq!(stale.code(), Code::Aborted, "{stale:?}");
    svc.delete_group(&group.name, &group.etag).await.unwrap();

    let read = svc.get_group(&group.name).await.unwrap_err();
    assert_eq!(read.code(), Code::NotFound, "{read:?}");
    let again = svc.delete_group(&group.name, "").await.unwrap_err();
    assert_eq!(again.code(), Code::NotFound, "{again:?}");
    let answer = svc.check(&group.name, "ada").await.unwrap();
    assert_eq!((answer.member, answer.group_exists), (false, false));
    assert_eq!(
        svc.count("group_members").await,
        1,
        "only database's member"
    );
    let ada = pb::ListGroupsRequest {
        member: Some("ada".into()),
        ..Default::default()
    };
    let listed = svc.list_groups(ada).await.unwrap().groups;
    assert_eq!(names(&listed), ["groups/database"]);

    // The id is free again, and the new group starts with no members.
    let reborn = svc.create_group("network", &[]).await;
    assert!(reborn.members.is_empty());
    assert!(!svc.check(&group.name, "grace").await.unwrap().member);
}

async fn bad_group_input_names_every_field_and_writes_nothing(db: TestDb) {
    let mut svc = start(&db).await;
    let mut bad = group_for("", &["ada", "bad subject"]);
    bad.email = "nowhere".into();
    let status = svc
        .client
        .create_group(as_(ADMIN, create_group_request("Network!", bad)))
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        [
            "group_id",
            "group.display_name",
            "group.email",
            "group.members[1]"
        ]
    );

    let crowd: Vec<String> = (0..=1000).map(|i| format!("user-{i}")).collect();
    let crowd: Vec<&str> = crowd.iter().map(String::as_str).collect();
    let status = svc
        .client
        .create_group(as_(
            ADMIN,
            create_group_request("crowd", group_for("Crowd", &crowd)),
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["group.members"]);
    assert!(status.message().contains("1000"), "{}", status.message());
    assert_eq!(counts(&svc).await, [0, 0, 0, 0, 0], "{TABLES:?}");

    svc.create_group("network", &["ada"]).await;
    let before = counts(&svc).await;
    let mut duplicate = create_group_request("network", group_for("Other", &["grace"]));
    duplicate.request_id = "5e1f0c2a-9b7d-4e11-8a3c-2d4e6f8a0b1c".into();
    let status = svc
        .client
        .create_group(as_(ADMIN, duplicate))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    assert!(status.message().contains("groups/network"));
    assert_eq!(counts(&svc).await, before, "{TABLES:?}");
    let kept = svc.get_group("groups/network").await.unwrap();
    assert_eq!(
        (kept.display_name.as_str(), kept.members.as_slice()),
        ("network team", ["ada".to_owned()].as_slice())
    );
}

async fn a_retried_group_create_returns_the_first_group(db: TestDb) {
    let mut svc = start(&db).await;
    let mut request = create_group_request("network", group_for("Network", &["ada"]));
    request.request_id = "0b5f3c1e-7d3a-4c59-a1f8-1b1c2d3e4f50".into();
    let first = svc
        .client
        .create_group(as_(ADMIN, request.clone()))
        .await
        .unwrap()
        .into_inner();
    let again = svc
        .client
        .create_group(as_(ADMIN, request.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, first);
    assert_eq!(
        (svc.count("groups").await, svc.count("outbox").await),
        (1, 1)
    );

    request.group.as_mut().unwrap().display_name = "something else".into();
    let reused = svc
        .client
        .create_group(as_(ADMIN, request))
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::AlreadyExists, "{reused:?}");
    assert_eq!(svc.count("groups").await, 1);
}

async fn group_changes_leave_an_audit_entry_and_an_event(db: TestDb) {
    let mut svc = start(&db).await;
    let group = svc.create_group("network", &["ada"]).await;
    let name = group.name.clone();
    let change = pb::Group {
        name: name.clone(),
        manager: "ada".into(),
        ..Default::default()
    };
    svc.update_group(change, &["manager"], &group.etag)
        .await
        .unwrap();
    svc.add_member(&name, "grace", "").await.unwrap();
    svc.remove_member(&name, "ada").await.unwrap();
    svc.delete_group(&name, "").await.unwrap();

    let audit: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT action, actor_subject, changes, request_id FROM audit_log \
         WHERE resource = $1 ORDER BY id",
    )
    .bind(&name)
    .fetch_all(svc.db.pool())
    .await
    .unwrap();
    let actions: Vec<_> = audit.iter().map(|(a, ..)| a.as_str()).collect();
    assert_eq!(
        actions,
        ["create", "update", "add_member", "remove_member", "delete"]
    );
    assert!(audit.iter().all(|(_, actor, ..)| actor == "alice"));
    assert!(
        audit.iter().all(|(.., request_id)| !request_id.is_empty()),
        "x-request-id kept"
    );
    let changes: Vec<&str> = audit.iter().map(|(_, _, c, _)| c.as_str()).collect();
    assert!(changes[0].contains("network team") && changes[0].contains("\"ada\""));
    assert!(changes[1].contains("\"manager\"") && changes[1].contains("\"grace\""));
    assert!(changes[2].contains("\"grace\"") && changes[3].contains("\"ada\""));

    let rows: Vec<(String, String, Vec<u8>)> =
        sqlx::query_as("SELECT stream, event_type, payload FROM outbox ORDER BY id")
            .fetch_all(svc.db.pool())
            .await
            .unwrap();
    let types: Vec<_> = rows
        .iter()
        .map(|(s, t, _)| (s.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        types,
        [
            ("identity", "identity.group.created"),
            ("identity", "identity.group.updated"),
            ("identity", "identity.group.member_added"),
            ("identity", "identity.group.member_removed"),
            ("identity", "identity.group.deleted"),
        ]
    );
    let mut payloads = Vec::new();
    for (i, (_, _, payload)) in rows.iter().enumerate() {
        let event = itsm_proto::itsm::events::v1::Event::decode(payload.as_slice()).unwrap();
        assert_eq!(
            (event.subject.as_str(), event.source.as_str()),
            (name.as_str(), "itsm.identity")
        );
        assert_eq!(
            event.sequence,
            i as u64 + 1,
            "the group's versions, in order"
        );
        assert_eq!(event.actor.unwrap().subject, "alice");
        let any = event.payload.unwrap();
        assert_eq!(
            any.type_url,
            "type.googleapis.com/itsm.identity.v1.GroupEvent"
        );
        payloads.push(pb::GroupEvent::decode(any.value.as_slice()).unwrap());
    }
    let members: Vec<_> = payloads.iter().map(|p| p.member.as_str()).collect();
    assert_eq!(members, ["", "", "grace", "ada", ""]);
    let after: Vec<_> = payloads
        .iter()
        .map(|p| p.group.as_ref().unwrap().members.clone())
        .collect();
    assert_eq!(after[2], ["ada", "grace"]);
    assert_eq!(after[3], ["grace"]);
    assert_eq!(after[4], ["grace"], "the group as it was when deleted");
    let manager = &payloads[1].changes[0];
    assert_eq!(
        (
            manager.field.as_str(),
            manager.old_value.as_str(),
            manager.new_value.as_str()
        ),
        ("manager", "grace", "ada")
    );

    // Reads write nothing.
    let before = svc.count("audit_log").await;
    svc.check(&name, "grace").await.unwrap();
    svc.list_groups(Default::default()).await.unwrap();
    let _ = svc
        .client
        .get_group(as_(AGENT, pb::GetGroupRequest { name }))
        .await;
    assert_eq!(svc.count("audit_log").await, before);
}
