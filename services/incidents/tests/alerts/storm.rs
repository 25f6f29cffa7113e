//! Alert storms: identical alerts from concurrent callers open exactly one
//! incident and are all counted; many groups at once, from callers sending
//! them in different orders, are all kept apart, without deadlocks.
//! Both print their rate (a debug build: a floor, not a benchmark).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use itsm_proto::itsm::incidents::v1 as pb;
use itsm_proto::itsm::incidents::v1::AlertOutcome::{Deduplicated, Opened};
use itsm_testkit::{TestDb, backend_tests};
use tokio::task::JoinSet;

use crate::helpers::{MONITORING, firing, group, group_events, outcomes};
use crate::support::{Harness, as_, start};

backend_tests!(
    a_storm_of_identical_alerts_opens_one_incident,
    many_groups_from_many_callers_stay_apart,
);

const CALLERS: usize = 20;
const BATCH: usize = 500;

/// Sends `batches` (one list of batches per caller) from concurrent callers,
/// each on a connection of its own; every result, and how long it took.
async fn send(
    svc: &Harness,
    batches: Vec<Vec<Vec<pb::Alert>>>,
) -> (Vec<pb::AlertResult>, Duration) {
    let mut clients = Vec::new();
    for _ in 0..batches.len() {
        clients.push(svc.client().await);
    }
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for (mut client, theirs) in clients.into_iter().zip(batches) {
        tasks.spawn(async move {
            let mut results = Vec::new();
            for alerts in theirs {
                let request = as_(MONITORING, pb::IngestAlertsRequest { alerts });
                let reply = client.ingest_alerts(request).await.unwrap();
                results.extend(reply.into_inner().results);
            }
            results
        });
    }
    let mut results = Vec::new();
    while let Some(done) = tasks.join_next().await {
        results.extend(done.unwrap());
    }
    (results, started.elapsed())
}

fn report(db: &TestDb, what: &str, alerts: usize, took: Duration) {
    let rate = alerts as f64 / took.as_secs_f64();
    eprintln!(
        "{} {what}: {alerts} alerts in {took:.2?}, {rate:.0} alerts/s",
        db.backend()
    );
}

async fn a_storm_of_identical_alerts_opens_one_incident(db: TestDb) {
    let svc = start(&db).await;
    let fp = "storm-0001";
    let batches = (0..CALLERS)
        .map(|_| vec![vec![firing(fp, "api latency above 2s"); BATCH]])
        .collect();
    let (results, took) = send(&svc, batches).await;
    report(&db, "storm", CALLERS * BATCH, took);

    assert_eq!(results.len(), 10_000);
    let seen = outcomes(&results);
    assert_eq!(seen.iter().filter(|o| **o == Opened).count(), 1);
    assert_eq!(seen.iter().filter(|o| **o == Deduplicated).count(), 9_999);
    let incidents: HashSet<_> = results.iter().map(|r| r.incident.as_str()).collect();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(svc.count("incidents").await, 1);
    assert_eq!(svc.count("alert_groups").await, 1);

    let mut svc = svc;
    let g = group(&mut svc, fp).await;
    assert_eq!(g.occurrence_count, 10_000);
    assert_eq!(g.flap_count, 0);
    // One `opened`, and `deduplicated` only at powers of ten (10 and 100 may
    // share a call): a handful of events, not ten thousand.
    let events = group_events(&svc, fp).await;
    assert_eq!(events[0], "incidents.alert_group.opened");
    assert!(
        (3..=5).contains(&events.len())
            && events[1..]
                .iter()
                .all(|t| t == "incidents.alert_group.deduplicated"),
        "{events:?}"
    );
    let created = svc.event_types(incidents.iter().next().unwrap()).await;
    assert_eq!(created.len(), 1, "one incident event: its creation");
}

async fn many_groups_from_many_callers_stay_apart(db: TestDb) {
    let svc = start(&db).await;
    const GROUPS: usize = 100;
    const CALLS: usize = 5;
    let callers = 10;
    // Every batch holds every group 5 times, interleaved, each caller's in
    // another order: transactions that lock several groups must still never
    // deadlock (they lock in fingerprint order whatever the call's order).
    let batches = (0..callers)
        .map(|caller| {
            let batch: Vec<pb::Alert> = (0..BATCH)
                .map(|i| {
                    let n = (i * (caller * 2 + 1) + caller * 37) % GROUPS;
                    firing(&format!("group-{n:03}"), "queue depth high")
                })
                .collect();
            vec![batch; CALLS]
        })
        .collect();
    let (results, took) = send(&svc, batches).await;
    let total = callers * CALLS * BATCH;
    report(&db, "100 groups", total, took);

    assert_eq!(results.len(), total);
    let opened = outcomes(&results).iter().filter(|o| **o == Opened).count();
    assert_eq!(opened, GROUPS);
    assert_eq!(svc.count("incidents").await, GROUPS as i64);
    let counted: i64 =
        sqlx::query_scalar("SELECT CAST(SUM(occurrence_count) AS BIGINT) FROM alert_groups")
            .fetch_one(svc.db.pool())
            .await
            .unwrap();
    assert_eq!(counted, total as i64);
}
