//! Assignment through the directory: the assignee must belong to the
//! group, a new group alone leaves the incident unassigned, and changing an
//! existing assignment counts against first-contact resolution.

use itsm_testkit::{TestDb, backend_tests};
use tonic::Code;

use crate::support::{AGENT, bad_fields, start};

backend_tests!(
    assignees_must_belong_to_the_group,
    reassignment_and_reopen_spoil_first_contact_resolution,
    an_identity_outage_makes_assignment_unavailable_not_wrong,
);

async fn assignees_must_belong_to_the_group(db: TestDb) {
    let mut svc = start(&db).await;
    let name = svc.open("Wifi").await.name;
    let status = svc.assign(&name, "nope", "carl").await.unwrap_err();
    assert_eq!(bad_fields(&status), ["assignment_group"]);
    let status = svc.assign(&name, "nope", "").await.unwrap_err();
    assert_eq!(
        bad_fields(&status),
        ["assignment_group"],
        "a group alone must exist too"
    );
    let status = svc.assign(&name, "network", "carl").await.unwrap_err();
    assert_eq!(bad_fields(&status), ["assignee"]);
    assert!(
        status.message().contains("not a member"),
        "{}",
        status.message()
    );
    // Names identity cannot parse are no group, and no member.
    let status = svc.assign(&name, "Bad_Group", "").await.unwrap_err();
    assert_eq!(bad_fields(&status), ["assignment_group"]);
    let status = svc.assign(&name, "desk", "carl,dora").await.unwrap_err();
    assert_eq!(bad_fields(&status), ["assignee"]);
    assert_eq!(
        svc.get(AGENT, &name).await.unwrap().etag,
        "v1",
        "nothing written"
    );

    svc.assign(&name, "network", "nina").await.unwrap();
    // Keeping the group, the new assignee is checked against it.
    let status = svc.assign(&name, "", "carl").await.unwrap_err();
    assert_eq!(bad_fields(&status), ["assignee"]);
    // A new group alone leaves the incident unassigned within it.
    let moved = svc.assign(&name, "groups/desk", "").await.unwrap();
    assert_eq!(
        (moved.assignment_group.as_str(), moved.assignee.as_str()),
        ("desk", "")
    );
}

async fn reassignment_and_reopen_spoil_first_contact_resolution(db: TestDb) {
    let mut svc = start(&db).await;
    let first = svc.open("Password reset").await.name;
    svc.assign(&first, "desk", "carl").await.unwrap();
    assert!(svc.resolve(&first).await.unwrap().first_contact_resolution);

    let second = svc.open("Laptop slow").await.name;
    svc.assign(&second, "desk", "carl").await.unwrap();
    svc.assign(&second, "desk", "dora").await.unwrap();
    assert!(!svc.resolve(&second).await.unwrap().first_contact_resolution);

    svc.reopen(AGENT, &first, "forgot it again").await.unwrap();
    assert!(!svc.resolve(&first).await.unwrap().first_contact_resolution);
}

async fn an_identity_outage_makes_assignment_unavailable_not_wrong(db: TestDb) {
    let mut svc = start(&db).await;
    let name = svc.open("Wifi").await.name;
    svc.stop_identity().await;
    let status = svc.assign(&name, "desk", "carl").await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("identity service"),
        "{}",
        status.message()
    );
    assert_eq!(
        svc.get(AGENT, &name).await.unwrap().etag,
        "v1",
        "nothing written"
    );
    // Work that needs no directory goes on.
    svc.resolve(&name).await.unwrap();
}
