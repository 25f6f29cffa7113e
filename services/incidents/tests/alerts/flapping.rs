//! Flapping: `flap_threshold` refires within `flap_window` mark the group,
//! which then keeps one open incident whatever the alert does.

use itsm_proto::itsm::incidents::v1 as pb;
use itsm_proto::itsm::incidents::v1::AlertOutcome::{Deduplicated, Opened, Reopened, Resolved};
use itsm_testkit::{TestDb, backend_tests};
use prost_types::FieldMask;

use crate::helpers::{firing, group, group_events, ingest, last_group_event, outcomes, resolved};
use crate::support::{ADMIN, AGENT, as_};

backend_tests!(
    a_group_that_refires_too_often_flaps_into_one_incident,
    the_threshold_comes_from_the_settings,
);

const FP: &str = "flappy";

async fn a_group_that_refires_too_often_flaps_into_one_incident(db: TestDb) {
    let mut svc = crate::support::start(&db).await;
    // Seeded settings: 3 refires within an hour flap.
    let mut seen = Vec::new();
    seen.extend(outcomes(
        &ingest(&mut svc, vec![firing(FP, "link flaps")]).await,
    ));
    for _ in 0..3 {
        seen.extend(outcomes(
            &ingest(&mut svc, vec![resolved(FP, "link flaps")]).await,
        ));
        seen.extend(outcomes(
            &ingest(&mut svc, vec![firing(FP, "link flaps")]).await,
        ));
    }
    assert_eq!(
        seen,
        [
            Opened, Resolved, Reopened, Resolved, Reopened, Resolved, Reopened
        ]
    );
    let g = group(&mut svc, FP).await;
    assert!(g.flapping);
    assert_eq!((g.flap_count, g.occurrence_count), (3, 7));
    assert_eq!(
        group_events(&svc, FP).await.last().map(String::as_str),
        Some("incidents.alert_group.flapping")
    );
    assert!(last_group_event(&svc, FP).await.flapping);

    // While flapping, clears and refires are deduplicated into the open incident.
    let etag = svc.get(AGENT, &g.incident).await.unwrap().etag;
    let batch = vec![
        resolved(FP, "link flaps"),
        firing(FP, "link flaps"),
        resolved(FP, "link flaps"),
    ];
    let results = ingest(&mut svc, batch).await;
    assert_eq!(outcomes(&results), [Deduplicated; 3]);
    assert!(results.iter().all(|r| r.incident == g.incident));
    let incident = svc.get(AGENT, &g.incident).await.unwrap();
    assert_eq!(incident.etag, etag, "the incident does not churn");
    assert_eq!(incident.state, pb::IncidentState::InProgress as i32);
    assert_eq!(incident.reopen_count, 3);
    let g = group(&mut svc, FP).await;
    assert!(g.flapping);
    assert_eq!(g.status, pb::AlertStatus::Resolved as i32);
    assert_eq!((g.flap_count, g.occurrence_count), (4, 10));
    let flapping_events = group_events(&svc, FP)
        .await
        .into_iter()
        .filter(|t| t == "incidents.alert_group.flapping")
        .count();
    assert_eq!(flapping_events, 1, "marked once");
    assert_eq!(svc.count("incidents").await, 1);
}

async fn the_threshold_comes_from_the_settings(db: TestDb) {
    let mut svc = crate::support::start(&db).await;
    let settings = pb::IncidentSettings {
        flap_threshold: 1,
        ..pb::IncidentSettings::default()
    };
    let request = pb::UpdateIncidentSettingsRequest {
        settings: Some(settings),
        update_mask: Some(FieldMask {
            paths: vec!["flap_threshold".into()],
        }),
        etag: "v1".into(),
    };
    svc.client
        .update_incident_settings(as_(ADMIN, request))
        .await
        .unwrap();
    let batch = vec![
        firing(FP, "x"),
        resolved(FP, "x"),
        firing(FP, "x"),
        resolved(FP, "x"),
    ];
    let results = ingest(&mut svc, batch).await;
    assert_eq!(
        outcomes(&results),
        [Opened, Resolved, Reopened, Deduplicated]
    );
    let g = group(&mut svc, FP).await;
    assert!(g.flapping);
    let incident = svc.get(AGENT, &g.incident).await.unwrap();
    assert_eq!(incident.state, pb::IncidentState::InProgress as i32);
}
