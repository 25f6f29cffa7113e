//! Relationship types: the seeded ones, create/read/list/update/delete, the
//! acyclic check over existing relationships.

use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_testkit::{TestDb, backend_tests};
use tonic::Code;

use crate::support::{AGENT, CMDB_ADMIN, Harness, as_, bad_fields, precondition, start};
use crate::{audit_actions, insert_ci, insert_edge, mask};

backend_tests!(
    the_seeded_types_are_there,
    a_custom_type_lives_and_dies,
    bad_types_are_named,
    a_type_turns_acyclic_only_without_cycles,
);

async fn get(svc: &mut Harness, name: &str) -> Result<pb::RelationshipType, tonic::Status> {
    let request = pb::GetRelationshipTypeRequest { name: name.into() };
    svc.client
        .get_relationship_type(as_(AGENT, request))
        .await
        .map(tonic::Response::into_inner)
}

async fn list(svc: &mut Harness, filter: &str) -> Vec<String> {
    let request = pb::ListRelationshipTypesRequest {
        page_size: 0,
        page_token: String::new(),
        filter: filter.into(),
        order_by: String::new(),
    };
    svc.client
        .list_relationship_types(as_(AGENT, request))
        .await
        .unwrap()
        .into_inner()
        .relationship_types
        .into_iter()
        .map(|t| t.name)
        .collect()
}

async fn update(
    svc: &mut Harness,
    t: pb::RelationshipType,
    paths: &[&str],
) -> Result<pb::RelationshipType, tonic::Status> {
    let etag = t.etag.clone();
    let request = pb::UpdateRelationshipTypeRequest {
        relationship_type: Some(t),
        update_mask: mask(paths),
        etag,
    };
    svc.client
        .update_relationship_type(as_(CMDB_ADMIN, request))
        .await
        .map(tonic::Response::into_inner)
}

fn replicates_to() -> pb::CreateRelationshipTypeRequest {
    pb::CreateRelationshipTypeRequest {
        relationship_type: Some(pb::RelationshipType {
            forward_label: "replicates to".into(),
            reverse_label: "replica of".into(),
            allowed_source_classes: vec!["classes/database".into()],
            allowed_target_classes: vec!["classes/database".into()],
            impact_propagation: pb::ImpactPropagation::None as i32,
            ..pb::RelationshipType::default()
        }),
        relationship_type_id: "replicates_to".into(),
        request_id: String::new(),
    }
}

async fn the_seeded_types_are_there(db: TestDb) {
    let mut svc = start(&db).await;
    assert_eq!(
        list(&mut svc, "").await,
        [
            "relationshipTypes/connects_to",
            "relationshipTypes/contains",
            "relationshipTypes/depends_on",
            "relationshipTypes/has_member",
            "relationshipTypes/runs_on",
        ]
    );
    let depends = get(&mut svc, "relationshipTypes/depends_on").await.unwrap();
    assert_eq!(
        (
            depends.forward_label.as_str(),
            depends.reverse_label.as_str()
        ),
        ("depends on", "used by")
    );
    assert_eq!(
        depends.impact_propagation,
        pb::ImpactPropagation::TargetToSource as i32
    );
    assert!(depends.system && !depends.acyclic && !depends.symmetric);
    let connects = get(&mut svc, "relationshipTypes/connects_to")
        .await
        .unwrap();
    assert!(connects.symmetric);
    assert_eq!(
        connects.impact_propagation,
        pb::ImpactPropagation::Both as i32
    );
    let contains = get(&mut svc, "relationshipTypes/contains").await.unwrap();
    assert!(contains.acyclic);
    assert_eq!(
        contains.impact_propagation,
        pb::ImpactPropagation::SourceToTarget as i32
    );
    let member = get(&mut svc, "relationshipTypes/has_member").await.unwrap();
    assert!(member.membership);
    assert_eq!(
        list(&mut svc, "acyclic = true").await,
        ["relationshipTypes/contains"]
    );
    assert_eq!(
        list(&mut svc, "membership = true OR symmetric = true").await,
        [
            "relationshipTypes/connects_to",
            "relationshipTypes/has_member"
        ]
    );
    assert_eq!(
        get(&mut svc, "relationshipTypes/nope")
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
}

async fn a_custom_type_lives_and_dies(db: TestDb) {
    let mut svc = start(&db).await;
    let created = svc
        .client
        .create_relationship_type(as_(CMDB_ADMIN, replicates_to()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.name, "relationshipTypes/replicates_to");
    assert!(!created.system);
    assert_eq!(created.etag, "v1");
    assert_eq!(get(&mut svc, &created.name).await.unwrap(), created);
    assert_eq!(
        list(&mut svc, "system = false").await,
        [created.name.as_str()]
    );
    assert_eq!(
        list(&mut svc, r#"allowed_source_classes:"classes/database""#).await,
        [created.name.as_str()]
    );
    let again = svc
        .client
        .create_relationship_type(as_(CMDB_ADMIN, replicates_to()))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    let denied = svc
        .client
        .create_relationship_type(as_(AGENT, replicates_to()))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    let mut changed = created.clone();
    changed.reverse_label = "replicated from".into();
    changed.forward_label = "ignored: not in the mask".into();
    let updated = update(&mut svc, changed, &["reverse_label"]).await.unwrap();
    assert_eq!(updated.reverse_label, "replicated from");
    assert_eq!(updated.forward_label, "replicates to");
    assert_eq!(updated.etag, "v2");
    let stale = update(&mut svc, created.clone(), &["description"])
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    let mut bad = updated.clone();
    bad.allowed_target_classes = vec!["classes/nope".into()];
    let status = update(&mut svc, bad, &["allowed_target_classes", "symmetric"])
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["update_mask.paths[1]"]);

    // In use: not deleted; unused: deleted.
    let a = insert_ci(&svc, "database", &[]).await;
    let b = insert_ci(&svc, "database", &[]).await;
    insert_edge(&svc, "replicates_to", a, b).await;
    let request = pb::DeleteRelationshipTypeRequest {
        name: created.name.clone(),
        etag: String::new(),
    };
    let status = svc
        .client
        .delete_relationship_type(as_(CMDB_ADMIN, request.clone()))
        .await
        .unwrap_err();
    assert_eq!(precondition(&status).0, "RELATIONSHIP_TYPE_IN_USE");
    sqlx::query("DELETE FROM relationships")
        .execute(svc.db.pool())
        .await
        .unwrap();
    svc.client
        .delete_relationship_type(as_(CMDB_ADMIN, request))
        .await
        .unwrap();
    assert_eq!(
        get(&mut svc, &created.name).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        svc.event_names(&created.name).await,
        [
            "cmdb.relationship_type.created",
            "cmdb.relationship_type.updated",
            "cmdb.relationship_type.deleted",
        ]
    );
    assert_eq!(
        audit_actions(&mut svc, &created.name).await,
        ["create", "update", "delete"]
    );

    let request = pb::DeleteRelationshipTypeRequest {
        name: "relationshipTypes/depends_on".into(),
        etag: String::new(),
    };
    let status = svc
        .client
        .delete_relationship_type(as_(CMDB_ADMIN, request))
        .await
        .unwrap_err();
    assert_eq!(precondition(&status).0, "SYSTEM_RELATIONSHIP_TYPE");
}

async fn bad_types_are_named(db: TestDb) {
    let mut svc = start(&db).await;
    let request = pb::CreateRelationshipTypeRequest {
        relationship_type: Some(pb::RelationshipType {
            forward_label: " ".into(),
            reverse_label: String::new(),
            allowed_source_classes: vec!["classes/server".into(), "classes/nope".into()],
            allowed_target_classes: vec!["servers".into()],
            symmetric: true,
            membership: true,
            ..pb::RelationshipType::default()
        }),
        relationship_type_id: "9lives".into(),
        request_id: String::new(),
    };
    let status = svc
        .client
        .create_relationship_type(as_(CMDB_ADMIN, request))
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        [
            "relationship_type_id",
            "relationship_type.forward_label",
            "relationship_type.reverse_label",
            "relationship_type.allowed_source_classes[1]",
            "relationship_type.allowed_target_classes[0]",
            "relationship_type.impact_propagation",
            "relationship_type.membership",
        ]
    );
    assert_eq!(svc.count("relationship_types").await, 5);
    assert_eq!(svc.count("outbox").await, 0);
}

async fn a_type_turns_acyclic_only_without_cycles(db: TestDb) {
    let mut svc = start(&db).await;
    let depends = get(&mut svc, "relationshipTypes/depends_on").await.unwrap();
    let a = insert_ci(&svc, "application", &[]).await;
    let b = insert_ci(&svc, "application", &[]).await;
    let c = insert_ci(&svc, "application", &[]).await;
    insert_edge(&svc, "depends_on", a, b).await;
    insert_edge(&svc, "depends_on", b, c).await;
    insert_edge(&svc, "depends_on", a, c).await;
    insert_edge(&svc, "runs_on", c, a).await; // another type: not part of the walk
    insert_edge(&svc, "depends_on", c, a).await;

    let mut acyclic = depends.clone();
    acyclic.acyclic = true;
    let status = update(&mut svc, acyclic.clone(), &["acyclic"])
        .await
        .unwrap_err();
    let (kind, subject, _) = precondition(&status);
    assert_eq!(
        (kind.as_str(), subject.as_str()),
        ("RELATIONSHIP_CYCLE", "relationshipTypes/depends_on")
    );
    assert!(!get(&mut svc, &depends.name).await.unwrap().acyclic);

    // Break the cycle: now it may become acyclic.
    sqlx::query(
        "DELETE FROM relationships WHERE type = 'depends_on' AND source_id = $1 AND target_id = $2",
    )
    .bind(c)
    .bind(a)
    .execute(svc.db.pool())
    .await
    .unwrap();
    let updated = update(&mut svc, acyclic, &["acyclic"]).await.unwrap();
    assert!(updated.acyclic);
    assert_eq!(
        audit_actions(&mut svc, "relationshipTypes/depends_on").await,
        ["update"]
    );
}
