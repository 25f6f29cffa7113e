//! Group membership over the real server, on both backends: members added
//! once and removed once, the 1000-member limit, and CheckMembership
//! answered the way practices ask it before accepting an assignee.

use itsm_proto::itsm::identity::v1 as pb;
use itsm_testkit::{TestDb, backend_tests};
use tonic::Code;

use super::support::{bad_fields, start};

backend_tests!(
    members_are_added_once_and_removed_once,
    a_full_group_takes_no_one_else,
    check_membership_answers_members_strangers_and_unknown_groups,
);

async fn members_are_added_once_and_removed_once(db: TestDb) {
    let mut svc = start(&db).await;
    let group = svc.create_group("service-desk", &["ada"]).await;
    let name = group.name.clone();

    let stale = svc.add_member(&name, "grace", "v9").await.unwrap_err();
    assert_eq!(stale.code(), Code::Aborted, "{stale:?}");
    let added = svc.add_member(&name, "grace", &group.etag).await.unwrap();
    assert_eq!(added.members, ["ada", "grace"]);
    assert_eq!(added.etag, "v2");
    // A retry, even with the etag it was sent with, is harmless.
    let twice = svc.add_member(&name, "grace", &group.etag).await.unwrap();
    assert_eq!(twice, added);
    let unconditional = svc.add_member(&name, "grace", "").await.unwrap();
    assert_eq!(unconditional.etag, "v2");
    assert_eq!(
        svc.audit_actions(&name).await,
        ["create", "add_member"],
        "no second entry"
    );
    assert_eq!(svc.count("group_members").await, 2);
    assert_eq!(svc.count("outbox").await, 2, "no second event either");

    let stranger = svc.remove_member(&name, "linus").await.unwrap_err();
    assert_eq!(stranger.code(), Code::NotFound, "{stranger:?}");
    assert!(
        stranger.message().contains("\"linus\"") && stranger.message().contains(&name),
        "{}",
        stranger.message()
    );
    let removed = svc.remove_member(&name, "ada").await.unwrap();
    assert_eq!(removed.members, ["grace"]);
    assert_eq!(removed.etag, "v3");
    let gone = svc.remove_member(&name, "ada").await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    assert_eq!(
        svc.audit_actions(&name).await,
        ["create", "add_member", "remove_member"]
    );

    let unknown = svc.add_member("groups/nope", "ada", "").await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    let blank = svc.add_member(&name, " ", "").await.unwrap_err();
    assert_eq!(bad_fields(&blank), ["member"]);
    let malformed = svc.remove_member("network", "ada").await.unwrap_err();
    assert_eq!(bad_fields(&malformed), ["group"]);
}

async fn a_full_group_takes_no_one_else(db: TestDb) {
    let mut svc = start(&db).await;
    let crowd: Vec<String> = (0..1000).map(|i| format!("user-{i:04}")).collect();
    let crowd: Vec<&str> = crowd.iter().map(String::as_str).collect();
    let full = svc.create_group("everyone", &crowd).await;
    assert_eq!(full.members.len(), 1000);
    assert_eq!(svc.count("group_members").await, 1000);
    assert_eq!(svc.get_group(&full.name).await.unwrap().members, crowd);

    let status = svc
        .add_member(&full.name, "one-more", "")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("1000"), "{}", status.message());
    assert!(svc.add_member(&full.name, "user-0042", "").await.is_ok());
    svc.remove_member(&full.name, "user-0042").await.unwrap();
    let added = svc.add_member(&full.name, "one-more", "").await.unwrap();
    assert_eq!(added.members.len(), 1000);
}

async fn check_membership_answers_members_strangers_and_unknown_groups(db: TestDb) {
    let mut svc = start(&db).await;
    svc.create_group("network", &["ada", "svc-monitoring"])
        .await;
    svc.create_group("database", &["grace"]).await;

    let answer = |r: pb::CheckMembershipResponse| (r.member, r.group_exists);
    let member = svc.check("groups/network", "ada").await.unwrap();
    assert_eq!(answer(member), (true, true));
    let machine = svc.check("groups/network", "svc-monitoring").await.unwrap();
    assert_eq!(answer(machine), (true, true));
    let elsewhere = svc.check("groups/network", "grace").await.unwrap();
    assert_eq!(
        answer(elsewhere),
        (false, true),
        "a member of another group"
    );
    let case = svc.check("groups/network", "Ada").await.unwrap();
    assert_eq!(answer(case), (false, true), "subjects are exact");
    let unknown = svc.check("groups/nope", "ada").await.unwrap();
    assert_eq!(answer(unknown), (false, false));

    let malformed = svc.check("network", "").await.unwrap_err();
    assert_eq!(bad_fields(&malformed), ["group"]);
    let no_member = svc.check("groups/network", "").await.unwrap_err();
    assert_eq!(bad_fields(&no_member), ["member"]);
}
