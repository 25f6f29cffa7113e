//! CreateRelationship, GetRelationship, ListRelationships, DeleteRelationship.

use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_testkit::{TestDb, backend_tests};
use tonic::Code;

use super::{add, history, relationship, relationship_events, retire, try_relate};
use crate::support::{AGENT, CMDB_ADMIN, as_, bad_fields, precondition, start};

backend_tests!(
    a_relationship_is_created_read_listed_and_deleted_with_history_and_events,
    a_retried_create_returns_the_first_relationship,
    bad_relationships_are_refused_and_nothing_is_written,
    duplicates_are_refused_both_ways_for_symmetric_types,
    an_acyclic_type_refuses_the_relationship_that_closes_a_cycle,
    classes_must_fit_the_type,
    lists_filter_by_either_end_type_and_source_and_page,
);

async fn a_relationship_is_created_read_listed_and_deleted_with_history_and_events(db: TestDb) {
    let mut h = start(&db).await;
    let app = add(&mut h, "application", "billing").await;
    let server = add(&mut h, "linux_server", "srv-01").await;
    let mut request = relationship(&app, "runs_on", &server);
    request.relationship.as_mut().unwrap().description = "primary host".into();
    let created = h
        .client
        .create_relationship(as_(CMDB_ADMIN, request))
        .await
        .unwrap()
        .into_inner();
    assert!(created.name.starts_with("relationships/"), "{created:?}");
    assert_eq!(created.r#type, "relationshipTypes/runs_on");
    assert_eq!(
        (created.source_ci.as_str(), created.target_ci.as_str()),
        (app.as_str(), server.as_str())
    );
    assert_eq!(created.description, "primary host");
    assert_eq!(created.discovery_source, "discoverySources/manual");
    assert_eq!(created.created_by.as_ref().unwrap().subject, "carla");
    assert!(created.create_time.is_some());

    let got = h
        .client
        .get_relationship(as_(
            AGENT,
            pb::GetRelationshipRequest {
                name: created.name.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, created);

    let relate = ("relate".to_owned(), created.name.clone());
    assert!(history(&h, &app).await.contains(&relate));
    assert!(history(&h, &server).await.contains(&relate));
    let events = relationship_events(&h, &created.name, "cmdb.relationship.created").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].relationship.as_ref(), Some(&created));
    assert_eq!(events[0].discovery_source, "discoverySources/manual");

    let delete = pb::DeleteRelationshipRequest {
        name: created.name.clone(),
    };
    let refused = h
        .client
        .delete_relationship(as_(AGENT, delete.clone()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    h.client
        .delete_relationship(as_(CMDB_ADMIN, delete.clone()))
        .await
        .unwrap();
    let gone = h
        .client
        .get_relationship(as_(
            AGENT,
            pb::GetRelationshipRequest {
                name: created.name.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    assert_eq!(h.count("relationships").await, 0);
    assert_eq!(h.count("relationships_deleted").await, 1);
    let unrelate = ("unrelate".to_owned(), created.name.clone());
    assert_eq!(history(&h, &app).await.last(), Some(&unrelate));
    assert_eq!(history(&h, &server).await.last(), Some(&unrelate));
    let deleted = relationship_events(&h, &created.name, "cmdb.relationship.deleted").await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].relationship.as_ref(), Some(&created));

    let again = h
        .client
        .delete_relationship(as_(CMDB_ADMIN, delete))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::NotFound);
    let malformed = h
        .client
        .get_relationship(as_(
            AGENT,
            pb::GetRelationshipRequest {
                name: "relationships/42".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&malformed), ["name"]);

    // Deleted, the same relationship can be created again.
    try_relate(&mut h, &app, "runs_on", &server).await.unwrap();
}

async fn a_retried_create_returns_the_first_relationship(db: TestDb) {
    let mut h = start(&db).await;
    let app = add(&mut h, "application", "billing").await;
    let server = add(&mut h, "linux_server", "srv-01").await;
    let mut request = relationship(&app, "runs_on", &server);
    request.request_id = "6d1f3c8e-8f0a-4c55-9c55-0b2a4f1e9d11".into();
    let first = h
        .client
        .create_relationship(as_(CMDB_ADMIN, request.clone()))
        .await
        .unwrap()
        .into_inner();
    let retry = h
        .client
        .create_relationship(as_(CMDB_ADMIN, request.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retry, first);
    assert_eq!(h.count("relationships").await, 1);
    // The same id with other content is refused.
    request.relationship.as_mut().unwrap().description = "other".into();
    let reused = h
        .client
        .create_relationship(as_(CMDB_ADMIN, request))
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::AlreadyExists);
}

async fn bad_relationships_are_refused_and_nothing_is_written(db: TestDb) {
    let mut h = start(&db).await;
    let app = add(&mut h, "application", "billing").await;
    let server = add(&mut h, "linux_server", "srv-01").await;
    let old = add(&mut h, "linux_server", "srv-old").await;
    retire(&mut h, &old).await;
    let events = h.count("outbox").await;

    let unknown = try_relate(&mut h, &app, "powers", &server)
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&unknown), ["relationship.type"]);

    let empty = pb::CreateRelationshipRequest {
        relationship: Some(pb::Relationship {
            source_ci: "servers/1".into(),
            ..pb::Relationship::default()
        }),
        request_id: String::new(),
    };
    let status = h
        .client
        .create_relationship(as_(CMDB_ADMIN, empty))
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        [
            "relationship.type",
            "relationship.source_ci",
            "relationship.target_ci"
        ]
    );

    let nobody = format!("cis/{}", uuid::Uuid::new_v4());
    let missing = try_relate(&mut h, &app, "runs_on", &nobody)
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&missing), ["relationship.target_ci"]);
    assert!(missing.message().contains(&nobody), "{missing:?}");

    let self_loop = try_relate(&mut h, &app, "depends_on", &app)
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&self_loop), ["relationship.target_ci"]);

    let retired = try_relate(&mut h, &app, "runs_on", &old).await.unwrap_err();
    let (kind, subject, _) = precondition(&retired);
    assert_eq!(
        (kind.as_str(), subject.as_str()),
        ("CI_RETIRED", old.as_str())
    );

    let refused = h
        .client
        .create_relationship(as_(AGENT, relationship(&app, "runs_on", &server)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    assert_eq!(h.count("relationships").await, 0);
    assert_eq!(h.count("outbox").await, events);
    assert!(
        history(&h, &app)
            .await
            .iter()
            .all(|(action, _)| action != "relate")
    );
}

async fn duplicates_are_refused_both_ways_for_symmetric_types(db: TestDb) {
    let mut h = start(&db).await;
    let a = add(&mut h, "network_device", "sw-a").await;
    let b = add(&mut h, "network_device", "sw-b").await;
    let app = add(&mut h, "application", "billing").await;
    let first = try_relate(&mut h, &a, "connects_to", &b).await.unwrap();
    let same = try_relate(&mut h, &a, "connects_to", &b).await.unwrap_err();
    assert_eq!(same.code(), Code::AlreadyExists);
    assert!(same.message().contains(&first.name), "{same:?}");
    let reversed = try_relate(&mut h, &b, "connects_to", &a).await.unwrap_err();
    assert_eq!(reversed.code(), Code::AlreadyExists);
    // Not symmetric: both directions are distinct relationships.
    try_relate(&mut h, &app, "depends_on", &a).await.unwrap();
    try_relate(&mut h, &a, "depends_on", &app).await.unwrap();
    // Another type between the same pair is another relationship.
    try_relate(&mut h, &a, "depends_on", &b).await.unwrap();
    assert_eq!(h.count("relationships").await, 4);
}

async fn an_acyclic_type_refuses_the_relationship_that_closes_a_cycle(db: TestDb) {
    let mut h = start(&db).await;
    let site = add(&mut h, "location", "Paris").await;
    let room = add(&mut h, "location", "Room 1").await;
    let rack = add(&mut h, "location", "Rack 7").await;
    try_relate(&mut h, &site, "contains", &room).await.unwrap();
    try_relate(&mut h, &room, "contains", &rack).await.unwrap();
    let events = h.count("outbox").await;
    let cycle = try_relate(&mut h, &rack, "contains", &site)
        .await
        .unwrap_err();
    let (kind, subject, description) = precondition(&cycle);
    assert_eq!(kind, "RELATIONSHIP_CYCLE");
    assert_eq!(subject, "relationshipTypes/contains");
    // The cycle is named, CI by CI.
    let expected = format!("{rack} -> {site} -> {room} -> {rack}");
    assert!(description.contains(&expected), "{description}");
    assert_eq!(h.count("relationships").await, 2);
    assert_eq!(h.count("outbox").await, events);
    // A cycle of a type that allows them is fine (depends_on is not acyclic).
    try_relate(&mut h, &rack, "depends_on", &site)
        .await
        .unwrap();
    try_relate(&mut h, &site, "depends_on", &rack)
        .await
        .unwrap();
}

async fn classes_must_fit_the_type(db: TestDb) {
    let mut h = start(&db).await;
    let kind = pb::RelationshipType {
        forward_label: "backs up to".into(),
        reverse_label: "backup of".into(),
        allowed_source_classes: vec!["classes/server".into()],
        allowed_target_classes: vec!["classes/storage".into()],
        impact_propagation: pb::ImpactPropagation::None as i32,
        ..pb::RelationshipType::default()
    };
    let request = pb::CreateRelationshipTypeRequest {
        relationship_type: Some(kind),
        relationship_type_id: "backs_up_to".into(),
        request_id: String::new(),
    };
    h.client
        .create_relationship_type(as_(CMDB_ADMIN, request))
        .await
        .unwrap();
    // Subclasses fit: a linux_server is a server.
    let server = add(&mut h, "linux_server", "srv-01").await;
    let nas = add(&mut h, "storage", "nas-01").await;
    let app = add(&mut h, "application", "billing").await;
    try_relate(&mut h, &server, "backs_up_to", &nas)
        .await
        .unwrap();
    let wrong = try_relate(&mut h, &app, "backs_up_to", &server)
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&wrong),
        ["relationship.source_ci", "relationship.target_ci"]
    );
    assert_eq!(h.count("relationships").await, 1);
}

async fn lists_filter_by_either_end_type_and_source_and_page(db: TestDb) {
    let mut h = start(&db).await;
    let app = add(&mut h, "application", "billing").await;
    let db_ = add(&mut h, "database", "billing-db").await;
    let server = add(&mut h, "linux_server", "srv-01").await;
    let runs = try_relate(&mut h, &app, "runs_on", &server).await.unwrap();
    let depends = try_relate(&mut h, &app, "depends_on", &db_).await.unwrap();
    let hosts_db = try_relate(&mut h, &db_, "runs_on", &server).await.unwrap();

    let mut list = async |filter: &str, page_size: i32, page_token: &str| {
        let request = pb::ListRelationshipsRequest {
            page_size,
            page_token: page_token.to_owned(),
            filter: filter.to_owned(),
            order_by: String::new(),
        };
        h.client
            .list_relationships(as_(AGENT, request))
            .await
            .map(tonic::Response::into_inner)
    };
    let names = |r: &pb::ListRelationshipsResponse| {
        r.relationships
            .iter()
            .map(|r| r.name.clone())
            .collect::<Vec<_>>()
    };
    let all = list("", 0, "").await.unwrap();
    assert_eq!(
        names(&all),
        [
            runs.name.as_str(),
            depends.name.as_str(),
            hosts_db.name.as_str()
        ]
    );
    let from_app = list(&format!("source_ci = \"{app}\""), 0, "")
        .await
        .unwrap();
    assert_eq!(
        names(&from_app),
        [runs.name.as_str(), depends.name.as_str()]
    );
    let to_server = list(&format!("target_ci = \"{server}\""), 0, "")
        .await
        .unwrap();
    assert_eq!(
        names(&to_server),
        [runs.name.as_str(), hosts_db.name.as_str()]
    );
    let at_db = list(&format!("ci = \"{db_}\""), 0, "").await.unwrap();
    assert_eq!(
        names(&at_db),
        [depends.name.as_str(), hosts_db.name.as_str()]
    );
    let runs_from_app = list(
        &format!("ci = \"{app}\" AND type = \"relationshipTypes/runs_on\""),
        0,
        "",
    )
    .await
    .unwrap();
    assert_eq!(names(&runs_from_app), [runs.name.as_str()]);
    let manual = list("discovery_source = \"discoverySources/manual\"", 0, "")
        .await
        .unwrap();
    assert_eq!(manual.relationships.len(), 3);
    let nobody = format!("ci = \"cis/{}\"", uuid::Uuid::new_v4());
    assert!(list(&nobody, 0, "").await.unwrap().relationships.is_empty());

    let page1 = list(&format!("target_ci = \"{server}\""), 1, "")
        .await
        .unwrap();
    assert_eq!(names(&page1), [runs.name.as_str()]);
    assert!(!page1.next_page_token.is_empty());
    let page2 = list(
        &format!("target_ci = \"{server}\""),
        1,
        &page1.next_page_token,
    )
    .await
    .unwrap();
    assert_eq!(names(&page2), [hosts_db.name.as_str()]);
    assert!(page2.next_page_token.is_empty());
    // A token is bound to its filter.
    let other = list(&format!("source_ci = \"{app}\""), 1, &page1.next_page_token)
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&other), ["page_token"]);

    for bad in [
        "owner = \"x\"",
        "source_ci = \"srv-01\"",
        "source_ci > \"cis/x\"",
        "source_id = 1",
    ] {
        let status = list(bad, 0, "").await.unwrap_err();
        assert_eq!(bad_fields(&status), ["filter"], "{bad}");
    }
}
