//! The storage building blocks against real PostgreSQL and SQLite: every test
//! runs on both (`<name>::postgres`, `<name>::sqlite`), each on a fresh database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::Duration;

use itsm_store::audit::{self, Actor, AuditRecord, FieldChange};
use itsm_store::idempotency::{self, Claim};
use itsm_store::outbox::{self, NewEvent};
use itsm_store::page::{self, PageTokens, SortColumn};
use itsm_store::{Db, SqlBuilder, SqlValue, StoreError, counter, etag, lease};
use itsm_testkit::{TestDb, backend_tests};
use sqlx::Row;

async fn migrated(db: &TestDb) -> Db {
    let store = Db::connect(db.url()).await.unwrap();
    store.migrate(None).await.unwrap();
    store
}

backend_tests!(
    migrations_are_idempotent_and_safe_to_run_concurrently,
    counters_are_unique_and_gap_free_under_concurrency,
    a_retried_create_replays_and_a_reused_request_id_is_refused,
    concurrent_duplicate_creates_make_one_resource,
    audit_entries_are_append_only,
    outbox_rows_exist_only_when_their_transaction_commits,
    a_lease_has_one_holder_until_it_expires,
    a_stale_etag_loses_and_no_update_is_lost,
    keyset_pages_return_every_row_once_in_order,
);

async fn migrations_are_idempotent_and_safe_to_run_concurrently(db: TestDb) {
    let store = Db::connect(db.url()).await.unwrap();
    let runs = (0..4).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.migrate(None).await })
    });
    for run in runs {
        run.await.unwrap().unwrap();
    }
    store.migrate(None).await.unwrap();
    let tables: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(tables, 0);
}

async fn counters_are_unique_and_gap_free_under_concurrency(db: TestDb) {
    let store = migrated(&db).await;
    let tasks = (0..24).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut tx = store.begin().await.unwrap();
            let n = counter::next(&mut tx, "incidents").await.unwrap();
            // Every third create fails after taking its number: it must give it back.
            if i % 3 == 0 {
                tx.rollback().await.unwrap();
                None
            } else {
                tx.commit().await.unwrap();
                Some(n)
            }
        })
    });
    let mut committed = Vec::new();
    for task in tasks {
        if let Some(n) = task.await.unwrap() {
            committed.push(n);
        }
    }
    committed.sort_unstable();
    let expected: Vec<i64> = (1..=16).collect();
    assert_eq!(committed, expected, "{}", db.backend());
    assert_eq!(counter::format_number("INC", committed[0]), "INC0000001");
}

async fn a_retried_create_replays_and_a_reused_request_id_is_refused(db: TestDb) {
    let store = migrated(&db).await;
    let hash = idempotency::hash_request(b"create incident: disk full");
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        idempotency::claim(&mut tx, "CreateIncident", "req-1", &hash)
            .await
            .unwrap(),
        Claim::New
    );
    idempotency::complete(&mut tx, "CreateIncident", "req-1", "incidents/INC0000001")
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        idempotency::claim(&mut tx, "CreateIncident", "req-1", &hash)
            .await
            .unwrap(),
        Claim::Replay {
            resource: "incidents/INC0000001".into()
        }
    );
    let other = idempotency::hash_request(b"create incident: printer jam");
    let reused = idempotency::claim(&mut tx, "CreateIncident", "req-1", &other).await;
    assert!(
        matches!(reused, Err(StoreError::RequestIdReused { .. })),
        "{reused:?}"
    );
    // The same id for another method is another request.
    assert_eq!(
        idempotency::claim(&mut tx, "CreateProblem", "req-1", &hash)
            .await
            .unwrap(),
        Claim::New
    );
}

async fn concurrent_duplicate_creates_make_one_resource(db: TestDb) {
    let store = migrated(&db).await;
    let hash = idempotency::hash_request(b"same request");
    let attempts = (0..6).map(|_| {
        let store = store.clone();
        let hash = hash.clone();
        tokio::spawn(async move {
            let mut tx = store.begin().await.unwrap();
            match idempotency::claim(&mut tx, "CreateIncident", "retry-storm", &hash)
                .await
                .unwrap()
            {
                Claim::Replay { resource } => resource,
                Claim::New => {
                    let n = counter::next(&mut tx, "incidents").await.unwrap();
                    let name = format!("incidents/{}", counter::format_number("INC", n));
                    // Hold the claim a moment so the others pile up behind it.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    idempotency::complete(&mut tx, "CreateIncident", "retry-storm", &name)
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                    name
                }
            }
        })
    });
    let mut names = BTreeSet::new();
    for attempt in attempts {
        names.insert(attempt.await.unwrap());
    }
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["incidents/INC0000001"]
    );
}

async fn audit_entries_are_append_only(db: TestDb) {
    let store = migrated(&db).await;
    let record = AuditRecord {
        resource: "incidents/INC0000001".into(),
        action: "update".into(),
        actor: Actor {
            subject: "u-42".into(),
            display_name: "Ada".into(),
            kind: 1,
        },
        time: 1_700_000_000_000_000,
        changes: vec![FieldChange::new("title", "Disk full", "Disk full on db-01")],
        request_id: "req-9".into(),
    };
    let mut tx = store.begin().await.unwrap();
    let id = audit::insert(&mut tx, &record).await.unwrap();
    tx.commit().await.unwrap();

    let mut conn = store.pool().acquire().await.unwrap();
    let entries = audit::select_for_resource(&mut conn, "incidents/INC0000001", 0, 10)
        .await
        .unwrap();
    assert_eq!(entries, vec![(id, record.clone())]);
    let proto = record.to_proto(id);
    assert_eq!(proto.name, format!("incidents/INC0000001/audit/{id}"));
    assert_eq!(proto.changes[0].old_value, "Disk full");

    let update = sqlx::query("UPDATE audit_log SET action = 'forged'")
        .execute(&mut *conn)
        .await;
    assert!(update.is_err(), "updates refused");
    let delete = sqlx::query("DELETE FROM audit_log")
        .execute(&mut *conn)
        .await;
    assert!(delete.is_err(), "deletes refused");
}

fn event<'a>(subject: &'a str, sequence: u64, actor: &'a Actor) -> NewEvent<'a> {
    NewEvent {
        stream: "incidents",
        source: "itsm.incidents",
        event_type: "incidents.incident.created",
        subject,
        sequence,
        payload: prost_types::Any {
            type_url: "type.googleapis.com/itsm.incidents.v1.IncidentEvent".into(),
            value: vec![1, 2, 3],
        },
        actor,
        request_id: "req",
        traceparent: "",
        tracestate: "",
        time: itsm_store::now_micros(),
    }
}

async fn outbox_rows_exist_only_when_their_transaction_commits(db: TestDb) {
    use prost::Message;
    let store = migrated(&db).await;
    let actor = Actor::system("test");

    let mut tx = store.begin().await.unwrap();
    let first = outbox::insert(&mut tx, &event("incidents/INC1", 1, &actor))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    outbox::insert(&mut tx, &event("incidents/INC2", 1, &actor))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let third = outbox::insert(&mut tx, &event("incidents/INC1", 2, &actor))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut conn = store.pool().acquire().await.unwrap();
    let unsent = outbox::select_unsent(&mut conn, 10).await.unwrap();
    let ids: Vec<_> = unsent.iter().map(|r| r.event_id.clone()).collect();
    assert_eq!(ids, [first.clone(), third.clone()]);
    let envelope =
        itsm_proto::itsm::events::v1::Event::decode(unsent[1].payload.as_slice()).unwrap();
    assert_eq!(envelope.id, third);
    assert_eq!(envelope.subject, "incidents/INC1");
    assert_eq!(envelope.sequence, 2);
    assert_eq!(envelope.actor.unwrap().subject, "system:test");

    outbox::mark_sent(&mut conn, &[unsent[0].id], itsm_store::now_micros())
        .await
        .unwrap();
    let (waiting, oldest) = outbox::backlog(&mut conn).await.unwrap();
    assert_eq!(waiting, 1);
    assert_eq!(oldest, Some(unsent[1].created_at));
    let left = outbox::select_unsent(&mut conn, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].event_id, third);
}

async fn a_lease_has_one_holder_until_it_expires(db: TestDb) {
    let store = migrated(&db).await;
    let mut conn = store.pool().acquire().await.unwrap();
    let long = Duration::from_secs(30);
    assert!(
        lease::try_acquire(&mut conn, "relay", "a", long)
            .await
            .unwrap()
    );
    assert!(
        !lease::try_acquire(&mut conn, "relay", "b", long)
            .await
            .unwrap()
    );
    assert!(
        lease::try_acquire(&mut conn, "relay", "a", long)
            .await
            .unwrap(),
        "renewal"
    );
    lease::release(&mut conn, "relay", "a").await.unwrap();
    assert!(
        lease::try_acquire(&mut conn, "relay", "b", Duration::from_millis(1))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(
        lease::try_acquire(&mut conn, "relay", "a", long)
            .await
            .unwrap(),
        "expired lease taken over"
    );
}

async fn a_stale_etag_loses_and_no_update_is_lost(db: TestDb) {
    let store = migrated(&db).await;
    sqlx::query(
        "CREATE TABLE items (id BIGINT PRIMARY KEY, version BIGINT NOT NULL, hits BIGINT NOT NULL)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query("INSERT INTO items VALUES (1, 1, 0)")
        .execute(store.pool())
        .await
        .unwrap();
    let read_etag = etag::from_version(1);

    // Eight writers all read version 1: exactly one may win.
    let writers = (0..8).map(|_| {
        let store = store.clone();
        let read_etag = read_etag.clone();
        tokio::spawn(async move {
            let mut tx = store.begin().await?;
            let select = format!(
                "SELECT version FROM items WHERE id = 1{}",
                store.backend().lock_suffix()
            );
            let version: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(select))
                .fetch_one(&mut *tx)
                .await?;
            etag::check("items/1", &read_etag, version, true)?;
            sqlx::query("UPDATE items SET version = version + 1, hits = hits + 1 WHERE id = 1")
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        })
    });
    let mut won = 0;
    for writer in writers {
        match writer.await.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::StaleEtag(_)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, 1);
    let row = sqlx::query("SELECT version, hits FROM items WHERE id = 1")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(
        (row.get::<i64, _>("version"), row.get::<i64, _>("hits")),
        (2, 1)
    );
}

async fn keyset_pages_return_every_row_once_in_order(db: TestDb) {
    let store = migrated(&db).await;
    sqlx::query("CREATE TABLE tickets (id BIGINT PRIMARY KEY, priority BIGINT NOT NULL, title TEXT NOT NULL)")
        .execute(store.pool())
        .await
        .unwrap();
    for id in 1..=257_i64 {
        sqlx::query("INSERT INTO tickets VALUES ($1, $2, $3)")
            .bind(id)
            .bind(id % 5)
            .bind(format!("ticket {id}"))
            .execute(store.pool())
            .await
            .unwrap();
    }
    let tokens = PageTokens::new(b"test secret");
    let key = [
        SortColumn {
            column: "priority",
            descending: true,
        },
        SortColumn {
            column: "id",
            descending: false,
        },
    ];
    let query = "tickets||priority desc";
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let mut sql = SqlBuilder::new("SELECT id, priority FROM tickets WHERE priority >= ");
        sql.push_bind(0_i64);
        if !token.is_empty() {
            let after = tokens.decode(&token, query).unwrap();
            sql.push(" AND ");
            page::push_after(&mut sql, &key, &after);
        }
        page::push_order_by(&mut sql, &key);
        sql.push(" LIMIT ").push_bind(51_i64);
        let mut rows = itsm_store::db::query(&sql)
            .fetch_all(store.pool())
            .await
            .unwrap();
        let more = rows.len() > 50;
        rows.truncate(50);
        for row in &rows {
            seen.push((row.get::<i64, _>("priority"), row.get::<i64, _>("id")));
        }
        if !more {
            break;
        }
        let (priority, id) = *seen.last().unwrap();
        token = tokens.encode(query, &[SqlValue::Int(priority), SqlValue::Int(id)]);
        // Rows inserted while paging land where they belong, never repeating a row.
        let new_id = 1000 + i64::try_from(seen.len()).unwrap();
        sqlx::query("INSERT INTO tickets VALUES ($1, 0, 'late')")
            .bind(new_id)
            .execute(store.pool())
            .await
            .unwrap();
    }
    let mut expected = seen.clone();
    expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    assert_eq!(seen, expected, "in order");
    let unique: BTreeSet<_> = seen.iter().map(|(_, id)| *id).collect();
    assert_eq!(unique.len(), seen.len(), "no row twice");
    assert!(
        (1..=257).all(|id| unique.contains(&id)),
        "every original row"
    );
}
