//! The auto-close job: resolved incidents older than the settings'
//! auto_close_after close, each once, audited as the system's change with
//! its event; nothing else is touched; concurrent runners share the work.

use std::time::{Duration, Instant};

use itsm_incidents::jobs::{auto_close_round, run_auto_close};
use itsm_proto::itsm::incidents::v1 as pb;
use itsm_testkit::{TestDb, backend_tests};
use tokio_util::sync::CancellationToken;

use crate::helpers::incident;
use crate::support::{AGENT, Harness, start};

backend_tests!(
    only_incidents_resolved_long_enough_ago_close,
    concurrent_runners_close_each_incident_once,
    the_job_runs_under_its_lease_until_cancelled,
);

const HOUR: i64 = 3_600 * 1_000_000;

/// Opens and resolves an incident, its resolution moved `hours_ago` into the past.
async fn resolved(svc: &mut Harness, title: &str, hours_ago: i64) -> String {
    let name = svc.open_incident(incident(title, "")).await.name;
    svc.resolve(&name).await.unwrap();
    let at = itsm_store::now_micros() - hours_ago * HOUR;
    let number = name.trim_start_matches("incidents/");
    svc.execute(
        "UPDATE incidents SET resolved_at = $1 WHERE number = $2",
        &[at],
        number,
    )
    .await;
    name
}

fn state(incident: &pb::Incident) -> pb::IncidentState {
    pb::IncidentState::try_from(incident.state).unwrap()
}

async fn only_incidents_resolved_long_enough_ago_close(db: TestDb) {
    let mut svc = start(&db).await;
    svc.auto_close_after(3_600).await;
    let old = resolved(&mut svc, "Old", 2).await;
    let recent = resolved(&mut svc, "Recent", 0).await;
    let open = svc.open_incident(incident("Still open", "")).await.name;

    assert_eq!(
        auto_close_round(&svc.db, itsm_store::now_micros())
            .await
            .unwrap(),
        1
    );
    let closed = svc.get(AGENT, &old).await.unwrap();
    assert_eq!(state(&closed), pb::IncidentState::Closed);
    assert!(closed.close_time.is_some());
    assert_eq!(
        state(&svc.get(AGENT, &recent).await.unwrap()),
        pb::IncidentState::Resolved
    );
    assert_eq!(
        state(&svc.get(AGENT, &open).await.unwrap()),
        pb::IncidentState::New
    );

    let audit = svc.audit(&old).await;
    let last = audit.last().unwrap();
    assert_eq!(
        (last.0.as_str(), last.1.as_str()),
        ("close", "system:auto-close")
    );
    assert_eq!(
        svc.event_names(&old).await.last().map(String::as_str),
        Some("incidents.incident.closed")
    );
    let closed_event = svc
        .events()
        .await
        .into_iter()
        .rfind(|e| e.subject == old)
        .unwrap();
    assert_eq!(closed_event.actor.unwrap().subject, "system:auto-close");
    assert_eq!(closed_event.sequence, 3, "created, resolved, closed");

    // Idempotent: a second round finds nothing to do.
    let events = svc.events().await.len();
    assert_eq!(
        auto_close_round(&svc.db, itsm_store::now_micros())
            .await
            .unwrap(),
        0
    );
    assert_eq!(svc.events().await.len(), events);
}

async fn concurrent_runners_close_each_incident_once(db: TestDb) {
    let mut svc = start(&db).await;
    svc.auto_close_after(3_600).await;
    let mut names = Vec::new();
    for n in 0..8 {
        names.push(resolved(&mut svc, &format!("Old {n}"), 3).await);
    }
    let other = itsm_store::Db::connect(db.url()).await.unwrap();
    let now = itsm_store::now_micros();
    let (a, b) = tokio::join!(
        auto_close_round(&svc.db, now),
        auto_close_round(&other, now)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 8);
    for name in &names {
        assert_eq!(
            state(&svc.get(AGENT, name).await.unwrap()),
            pb::IncidentState::Closed
        );
        let closes = svc
            .event_names(name)
            .await
            .into_iter()
            .filter(|t| t == "incidents.incident.closed")
            .count();
        assert_eq!(closes, 1, "{name}");
    }
}

async fn the_job_runs_under_its_lease_until_cancelled(db: TestDb) {
    let mut svc = start(&db).await;
    svc.auto_close_after(3_600).await;
    let old = resolved(&mut svc, "Old", 2).await;
    let cancel = CancellationToken::new();
    let job = tokio::spawn(run_auto_close(
        svc.db.clone(),
        cancel.clone(),
        Duration::from_millis(50),
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    while state(&svc.get(AGENT, &old).await.unwrap()) != pb::IncidentState::Closed {
        assert!(Instant::now() < deadline, "the job never closed {old}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let holder: String = sqlx::query_scalar("SELECT holder FROM leases WHERE name = $1")
        .bind("incidents.auto-close")
        .fetch_one(svc.db.pool())
        .await
        .unwrap();
    assert!(holder.starts_with("auto-close-"), "{holder}");
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), job)
        .await
        .expect("the job stops when cancelled")
        .unwrap();
    let leases: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM leases WHERE name = $1")
        .bind("incidents.auto-close")
        .fetch_one(svc.db.pool())
        .await
        .unwrap();
    assert_eq!(leases, 0, "released for another replica");
}
