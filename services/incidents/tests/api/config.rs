//! Configuration as data: the priority matrix (admin-only, all nine cells,
//! etag) deciding new incidents' priority, the transition table, and the
//! settings.

use itsm_proto::itsm::common::v1 as common;
use itsm_proto::itsm::incidents::v1 as pb;
use itsm_testkit::{TestDb, backend_tests};
use prost_types::{Duration, FieldMask};
use tonic::Code;

use crate::support::{ADMIN, AGENT, as_, bad_fields, start};

backend_tests!(
    a_new_matrix_decides_the_priority_of_new_incidents,
    the_transition_table_is_served,
    settings_are_read_and_changed_with_their_etag,
);

async fn a_new_matrix_decides_the_priority_of_new_incidents(db: TestDb) {
    let mut svc = start(&db).await;
    let before = svc.open("Before").await;
    let matrix = svc
        .client
        .get_priority_matrix(as_(AGENT, pb::GetPriorityMatrixRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            matrix.name.as_str(),
            matrix.etag.as_str(),
            matrix.cells.len()
        ),
        ("priorityMatrix", "v1", 9)
    );
    for cell in &matrix.cells {
        assert_eq!(cell.priority, cell.impact + cell.urgency - 1, "{cell:?}");
    }

    // MEDIUM x MEDIUM becomes CRITICAL.
    let mut wanted = matrix.clone();
    for cell in &mut wanted.cells {
        if (cell.impact, cell.urgency) == (2, 2) {
            cell.priority = common::Priority::Critical as i32;
        }
    }
    let request = |m: &common::PriorityMatrix, etag: &str| pb::UpdatePriorityMatrixRequest {
        matrix: Some(m.clone()),
        etag: etag.to_owned(),
    };
    let status = svc
        .client
        .update_priority_matrix(as_(AGENT, request(&wanted, "v1")))
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::PermissionDenied,
        "admins only: {status:?}"
    );
    let mut short = wanted.clone();
    short.cells.pop();
    let status = svc
        .client
        .update_priority_matrix(as_(ADMIN, request(&short, "")))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["matrix.cells", "etag"]);
    let status = svc
        .client
        .update_priority_matrix(as_(ADMIN, request(&wanted, "v7")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted, "{status:?}");

    let updated = svc
        .client
        .update_priority_matrix(as_(ADMIN, request(&wanted, "v1")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.etag, "v2");
    assert_eq!(updated.updated_by.unwrap().subject, "root");

    let after = svc.open("After").await;
    assert_eq!(after.priority, common::Priority::Critical as i32);
    let unchanged = svc.get(AGENT, &before.name).await.unwrap();
    assert_eq!(
        unchanged.priority,
        common::Priority::Moderate as i32,
        "existing incidents keep theirs"
    );

    let audit: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT resource, action, changes FROM audit_log WHERE resource = 'priorityMatrix'",
    )
    .fetch_all(svc.db.pool())
    .await
    .unwrap();
    assert_eq!(audit.len(), 1);
    assert!(
        audit[0]
            .2
            .contains("cells[impact=MEDIUM,urgency=MEDIUM].priority"),
        "{}",
        audit[0].2
    );
    let types: Vec<String> = svc.events().await.into_iter().map(|e| e.r#type).collect();
    assert!(
        types.contains(&"incidents.priority_matrix.updated".to_owned()),
        "{types:?}"
    );
}

async fn the_transition_table_is_served(db: TestDb) {
    let mut svc = start(&db).await;
    let table = svc
        .client
        .list_transitions(as_(AGENT, pb::ListTransitionsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .transitions;
    assert_eq!(table.len(), 15);
    let resolve_on_hold = table
        .iter()
        .find(|t| t.method == "ResolveIncident" && t.from == pb::IncidentState::OnHold as i32)
        .unwrap();
    assert_eq!(resolve_on_hold.to, pb::IncidentState::Resolved as i32);
    assert_eq!(resolve_on_hold.permission, "incidents.incident.resolve");
    assert_eq!(
        resolve_on_hold.required_fields,
        ["resolution_code", "resolution_notes"]
    );
    assert!(
        table
            .iter()
            .all(|t| t.from != pb::IncidentState::Closed as i32)
    );
}

async fn settings_are_read_and_changed_with_their_etag(db: TestDb) {
    let mut svc = start(&db).await;
    let settings = svc
        .client
        .get_incident_settings(as_(AGENT, pb::GetIncidentSettingsRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(settings.auto_close_after.unwrap().seconds, 7 * 24 * 3600);
    assert_eq!((settings.flap_threshold, settings.etag.as_str()), (3, "v1"));

    let request =
        |s: pb::IncidentSettings, paths: &[&str], etag: &str| pb::UpdateIncidentSettingsRequest {
            settings: Some(s),
            update_mask: Some(FieldMask {
                paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            }),
            etag: etag.to_owned(),
        };
    let mut wanted = settings.clone();
    wanted.auto_close_after = Some(Duration {
        seconds: 3 * 24 * 3600,
        nanos: 0,
    });
    wanted.flap_threshold = 0;
    let status = svc
        .client
        .update_incident_settings(as_(
            ADMIN,
            request(
                wanted.clone(),
                &["auto_close_after", "flap_threshold"],
                "v1",
            ),
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["settings.flap_threshold"]);
    let status = svc
        .client
        .update_incident_settings(as_(
            AGENT,
            request(wanted.clone(), &["auto_close_after"], "v1"),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    let updated = svc
        .client
        .update_incident_settings(as_(ADMIN, request(wanted, &["auto_close_after"], "v1")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.auto_close_after.unwrap().seconds, 3 * 24 * 3600);
    assert_eq!((updated.flap_threshold, updated.etag.as_str()), (3, "v2"));
}
