//! Parent/child links and propagation: attach, count and detach; cycles
//! refused naming the cycle; a parent's hold, resume and resolution passed
//! down the tree as the propagation table says (children not in an
//! applicable state are skipped, never failing the parent); closing a parent
//! leaves its children alone.

use itsm_proto::itsm::incidents::v1 as pb;
use itsm_proto::itsm::incidents::v1::IncidentState as S;
use itsm_testkit::{TestDb, backend_tests};
use tonic::Code;

use crate::calls::{audit, set_parent, working};
use crate::support::{AGENT, Harness, as_, bad_fields, payload, precondition, start};

backend_tests!(
    children_are_attached_counted_and_detached,
    a_parent_descending_from_the_child_is_refused_naming_the_cycle,
    a_hold_awaiting_change_holds_open_children_and_a_resume_resumes_them,
    resolving_a_parent_resolves_its_children_with_its_notes_and_closing_does_not_close_them,
    a_refused_parent_change_changes_no_child,
);

fn state(incident: &pb::Incident) -> S {
    S::try_from(incident.state).unwrap()
}

async fn read(svc: &mut Harness, name: &str) -> pb::Incident {
    svc.get(AGENT, name).await.unwrap()
}

async fn children_are_attached_counted_and_detached(db: TestDb) {
    let mut svc = start(&db).await;
    let parent = svc.open("Core switch down").await.name;
    let one = svc.open("No network on floor 2").await.name;
    let two = svc.open("No network on floor 3").await.name;

    let child = set_parent(&mut svc, &one, &parent).await.unwrap();
    assert_eq!(child.parent, parent);
    set_parent(&mut svc, &two, &parent).await.unwrap();
    assert_eq!(read(&mut svc, &parent).await.child_count, 2);
    let again = set_parent(&mut svc, &two, &parent).await.unwrap();
    assert_eq!(again.etag, "v2", "setting the same parent changes nothing");

    let detached = set_parent(&mut svc, &two, "").await.unwrap();
    assert_eq!(detached.parent, "");
    let counted = read(&mut svc, &parent).await;
    assert_eq!((counted.child_count, counted.etag.as_str()), (1, "v4"));
    let trail = audit(&mut svc, &parent).await;
    let actions: Vec<_> = trail.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["create", "add_child", "add_child", "remove_child"]
    );
    let types = svc.event_names(&one).await;
    assert_eq!(
        types,
        ["incidents.incident.created", "incidents.incident.updated"]
    );

    let status = set_parent(&mut svc, &one, &one).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["parent"]);
    let status = set_parent(&mut svc, &one, "incidents/INC0000099")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    svc.resolve(&two).await.unwrap();
    let status = set_parent(&mut svc, &one, &two).await.unwrap_err();
    let (kind, subject, _) = precondition(&status);
    assert_eq!((kind.as_str(), subject.as_str()), ("STATE", two.as_str()));
    let request = pb::SetParentIncidentRequest {
        name: one.clone(),
        parent: String::new(),
        etag: "v1".into(),
    };
    let stale = svc
        .client
        .set_parent_incident(as_(AGENT, request))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted, "{stale:?}");
}

async fn a_parent_descending_from_the_child_is_refused_naming_the_cycle(db: TestDb) {
    let mut svc = start(&db).await;
    let top = svc.open("Data centre power").await.name; // INC0000001
    let middle = svc.open("Rack 7 down").await.name; // INC0000002
    let bottom = svc.open("Host 7-3 down").await.name; // INC0000003
    set_parent(&mut svc, &middle, &top).await.unwrap();
    set_parent(&mut svc, &bottom, &middle).await.unwrap();

    let status = set_parent(&mut svc, &top, &bottom).await.unwrap_err();
    let (kind, subject, description) = precondition(&status);
    assert_eq!((kind.as_str(), subject.as_str()), ("CYCLE", top.as_str()));
    assert!(
        description.contains("INC0000001 -> INC0000003 -> INC0000002 -> INC0000001"),
        "{description}"
    );
    let status = set_parent(&mut svc, &top, &middle).await.unwrap_err();
    assert!(
        precondition(&status)
            .2
            .contains("INC0000001 -> INC0000002 -> INC0000001")
    );
    assert_eq!(read(&mut svc, &top).await.parent, "", "nothing changed");
    // Moving a subtree elsewhere stays acyclic and is fine.
    let other = svc.open("Other site").await.name;
    set_parent(&mut svc, &middle, &other).await.unwrap();
    assert_eq!(read(&mut svc, &top).await.child_count, 0);
    assert_eq!(read(&mut svc, &other).await.child_count, 1);
}

async fn hold(svc: &mut Harness, name: &str, reason: pb::HoldReason) -> pb::Incident {
    svc.hold(name, reason).await.unwrap()
}

async fn a_hold_awaiting_change_holds_open_children_and_a_resume_resumes_them(db: TestDb) {
    let mut svc = start(&db).await;
    let parent = working(&mut svc, "Firewall rule missing").await;
    let fresh = svc.open("App A unreachable").await.name; // NEW
    let busy = working(&mut svc, "App B unreachable").await; // IN_PROGRESS
    let vendor = working(&mut svc, "App C unreachable").await; // ON_HOLD awaiting vendor
    let grandchild = working(&mut svc, "App B batch failed").await;
    for child in [&fresh, &busy, &vendor] {
        set_parent(&mut svc, child, &parent).await.unwrap();
    }
    set_parent(&mut svc, &grandchild, &busy).await.unwrap();
    hold(&mut svc, &vendor, pb::HoldReason::AwaitingVendor).await;
    let vendor_etag = read(&mut svc, &vendor).await.etag;

    let held = hold(&mut svc, &parent, pb::HoldReason::AwaitingChange).await;
    assert_eq!(state(&held), S::OnHold);
    for child in [&fresh, &busy, &grandchild] {
        let read = read(&mut svc, child).await;
        assert_eq!(state(&read), S::OnHold, "{child}");
        assert_eq!(
            read.hold_reason,
            pb::HoldReason::AwaitingChange as i32,
            "{child}"
        );
    }
    let skipped = read(&mut svc, &vendor).await;
    assert_eq!(
        (skipped.hold_reason, skipped.etag),
        (pb::HoldReason::AwaitingVendor as i32, vendor_etag)
    );

    let trail = audit(&mut svc, &fresh).await;
    let last = trail.last().unwrap();
    assert_eq!(last.action, format!("hold propagated from {parent}"));
    assert_eq!(last.actor.as_ref().unwrap().subject, "bob");
    let trail = audit(&mut svc, &grandchild).await;
    assert_eq!(
        trail.last().unwrap().action,
        format!("hold propagated from {busy}")
    );
    let events = svc.events().await;
    let event = events.iter().rev().find(|e| e.subject == fresh).unwrap();
    assert_eq!(event.r#type, "incidents.incident.state_changed");
    assert_eq!(payload(event).incident.unwrap().state, S::OnHold as i32);

    svc.resume(&parent).await.unwrap();
    for child in [&fresh, &busy, &grandchild] {
        let read = read(&mut svc, child).await;
        assert_eq!(
            (state(&read), read.hold_reason),
            (S::InProgress, 0),
            "{child}"
        );
    }
    let still = read(&mut svc, &vendor).await;
    assert_eq!(
        state(&still),
        S::OnHold,
        "held for another reason: not resumed"
    );

    // Awaiting the caller is the parent's own business.
    hold(&mut svc, &parent, pb::HoldReason::AwaitingCaller).await;
    assert_eq!(state(&read(&mut svc, &fresh).await), S::InProgress);
}

async fn resolving_a_parent_resolves_its_children_with_its_notes_and_closing_does_not_close_them(
    db: TestDb,
) {
    let mut svc = start(&db).await;
    let parent = working(&mut svc, "Storage array failed").await;
    let one = svc.open("Share X slow").await.name;
    let two = working(&mut svc, "Share Y slow").await;
    let canceled = svc.open("Share Z slow").await.name;
    for child in [&one, &two, &canceled] {
        set_parent(&mut svc, child, &parent).await.unwrap();
    }
    svc.cancel(&canceled, "duplicate").await.unwrap();

    let resolved = svc.resolve(&parent).await.unwrap();
    for child in [&one, &two] {
        let read = read(&mut svc, child).await;
        assert_eq!(state(&read), S::Resolved, "{child}");
        assert_eq!(
            read.resolution_code,
            pb::ResolutionCode::ResolvedByParent as i32
        );
        assert_eq!(read.resolution_notes, resolved.resolution_notes);
        let types = svc.event_types(child).await;
        assert_eq!(types.last().unwrap().0, "incidents.incident.resolved");
    }
    assert_eq!(state(&read(&mut svc, &canceled).await), S::Canceled);

    let closed = svc.close(&parent).await.unwrap();
    assert_eq!(state(&closed), S::Closed);
    for child in [&one, &two] {
        assert_eq!(
            state(&read(&mut svc, child).await),
            S::Resolved,
            "closing is not propagated"
        );
    }
}

async fn a_refused_parent_change_changes_no_child(db: TestDb) {
    let mut svc = start(&db).await;
    let parent = svc.open("Parent still NEW").await.name;
    let child = working(&mut svc, "Child").await;
    set_parent(&mut svc, &child, &parent).await.unwrap();
    let before = read(&mut svc, &child).await;

    let status = svc
        .hold(&parent, pb::HoldReason::AwaitingChange)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let request = pb::ResolveIncidentRequest {
        name: parent.clone(),
        resolution_code: pb::ResolutionCode::SolvedPermanently as i32,
        resolution_notes: "done".into(),
        etag: "v1".into(),
    };
    let stale = svc
        .client
        .resolve_incident(as_(AGENT, request))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    assert_eq!(read(&mut svc, &child).await, before);
}
