//! The outbox relay and idempotent consumers together, on a real database
//! (PostgreSQL and SQLite) and a real bus: order, exactly-once effects,
//! crashes mid-handler, dead letters, and a Redis that dies and comes back empty.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use itsm_events::{
    Consumer, ConsumerConfig, EventBus, Handler, HandlerError, Message, OutboxRelay, Outcome,
    RedisBus, RedisBusConfig, RelayConfig,
};
use itsm_proto::itsm::events::v1::Event;
use itsm_store::audit::Actor;
use itsm_store::outbox::{self, NewEvent};
use itsm_store::{Db, Tx};
use itsm_testkit::{TestDb, backend_tests};
use tokio_util::sync::CancellationToken;

use crate::support::{Backend, RedisServer, eventually, free_port};

const WITHIN: Duration = Duration::from_secs(20);

async fn database(db: &TestDb) -> Db {
    let store = Db::connect(db.url()).await.unwrap();
    store.migrate(None).await.unwrap();
    sqlx::query("CREATE TABLE effects (event_id TEXT PRIMARY KEY, subject TEXT NOT NULL, seq BIGINT NOT NULL)")
        .execute(store.pool())
        .await
        .unwrap();
    store
}

/// Commits one change's event, as a service's write path does.
async fn produce(db: &Db, subject: &str, sequence: u64) -> String {
    let actor = Actor::system("test");
    let mut tx = db.begin().await.unwrap();
    let id = outbox::insert(
        &mut tx,
        &NewEvent {
            stream: "incidents",
            source: "itsm.incidents",
            event_type: "incidents.incident.updated",
            subject,
            sequence,
            payload: prost_types::Any::default(),
            actor: &actor,
            request_id: "",
            traceparent: "",
            tracestate: "",
            time: itsm_store::now_micros(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

async fn effects(db: &Db) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM effects")
        .fetch_one(db.pool())
        .await
        .unwrap()
}

/// Records each event in `effects`: a second application would violate the key.
#[derive(Default)]
struct Record {
    calls: AtomicU32,
    /// Fail this many first calls with a retryable error.
    fail_first: u32,
    /// Hang (as a crashing process would, never committing) on the first call.
    hang_first: bool,
}

#[async_trait]
impl Handler for Record {
    async fn handle(&self, tx: &mut Tx, event: &Event) -> Result<(), HandlerError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        sqlx::query("INSERT INTO effects (event_id, subject, seq) VALUES ($1, $2, $3)")
            .bind(&event.id)
            .bind(&event.subject)
            .bind(i64::try_from(event.sequence).unwrap())
            .execute(&mut **tx)
            .await
            .map_err(|e| HandlerError::Permanent(format!("applied twice? {e}")))?;
        if call < self.fail_first {
            return Err(HandlerError::Retryable("dependency down".into()));
        }
        if self.hang_first && call == 0 {
            std::future::pending::<()>().await;
        }
        if event.subject == "incidents/POISON" {
            return Err(HandlerError::Permanent("cannot apply this event".into()));
        }
        Ok(())
    }
}

fn consumer(db: &Db, bus: &Arc<dyn EventBus>, handler: Arc<Record>) -> Consumer {
    let mut config = ConsumerConfig::new("test.effects", &["incidents"]);
    config.wait = Duration::from_millis(50);
    config.backoff = Duration::from_millis(10);
    config.max_attempts = 3;
    Consumer::new(db.clone(), Arc::clone(bus), handler, config)
}

backend_tests!(
    the_relay_publishes_in_commit_order_and_marks_rows_sent,
    each_event_takes_effect_once_however_often_it_is_delivered,
    a_consumer_that_dies_mid_handler_leaves_nothing_and_the_event_comes_back,
    failing_handlers_retry_then_dead_letter,
    events_survive_redis_dying_and_coming_back_empty,
);

async fn the_relay_publishes_in_commit_order_and_marks_rows_sent(db: TestDb) {
    let store = database(&db).await;
    let test_bus = Backend::Memory.bus(Duration::from_secs(30)).await;
    let relay = OutboxRelay::new(
        store.clone(),
        Arc::clone(&test_bus.bus),
        RelayConfig::default(),
    );
    let mut produced = Vec::new();
    for i in 0..30_u64 {
        produced.push(produce(&store, &format!("incidents/INC{}", i % 3), i / 3 + 1).await);
    }
    assert_eq!(relay.relay_once().await.unwrap(), 30);
    assert_eq!(relay.relay_once().await.unwrap(), 0, "marked sent");

    test_bus.bus.ensure_group("incidents", "g").await.unwrap();
    let deliveries = test_bus
        .bus
        .receive("incidents", "g", "c", 100, Duration::from_millis(10))
        .await
        .unwrap();
    let ids: Vec<_> = deliveries.iter().map(|d| d.message.id.clone()).collect();
    assert_eq!(ids, produced, "published in commit order");
    assert_eq!(deliveries[4].message.key, "incidents/INC1");

    // Housekeeping deletes published rows past retention, never unsent ones.
    produce(&store, "incidents/INC9", 11).await;
    let expired = OutboxRelay::new(
        store.clone(),
        Arc::clone(&test_bus.bus),
        RelayConfig {
            retention: Duration::ZERO,
            ..RelayConfig::default()
        },
    );
    expired.housekeeping().await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(left, 1, "only the unsent row is left");
}

async fn each_event_takes_effect_once_however_often_it_is_delivered(db: TestDb) {
    let store = database(&db).await;
    let test_bus = Backend::Memory.bus(Duration::from_secs(30)).await;
    produce(&store, "incidents/INC1", 1).await;
    let relay = OutboxRelay::new(
        store.clone(),
        Arc::clone(&test_bus.bus),
        RelayConfig::default(),
    );
    relay.relay_once().await.unwrap();
    // The relay died before marking the row sent, and published it again.
    let mut conn = store.pool().acquire().await.unwrap();
    outbox::requeue_sent_since(&mut conn, 0).await.unwrap();
    drop(conn);
    relay.relay_once().await.unwrap();

    let handler = Arc::new(Record::default());
    let consumer = consumer(&store, &test_bus.bus, Arc::clone(&handler));
    let outcomes = consumer.poll_once(Duration::from_millis(10)).await.unwrap();
    assert_eq!(outcomes, [Outcome::Applied, Outcome::Duplicate]);
    assert_eq!(effects(&store).await, 1);
    assert_eq!(
        test_bus.bus.lag("incidents", "test.effects").await.unwrap(),
        0,
        "both acknowledged"
    );
}

async fn a_consumer_that_dies_mid_handler_leaves_nothing_and_the_event_comes_back(db: TestDb) {
    let store = database(&db).await;
    let test_bus = Backend::Memory.bus(Duration::from_millis(200)).await;
    produce(&store, "incidents/INC7", 1).await;
    OutboxRelay::new(
        store.clone(),
        Arc::clone(&test_bus.bus),
        RelayConfig::default(),
    )
    .relay_once()
    .await
    .unwrap();

    let hanging = Arc::new(Record {
        hang_first: true,
        ..Record::default()
    });
    let doomed = consumer(&store, &test_bus.bus, Arc::clone(&hanging));
    let task = tokio::spawn(async move { doomed.poll_once(Duration::from_millis(10)).await });
    eventually(WITHIN, "the first handler call", || async {
        (hanging.calls.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    task.abort(); // the process dies: no commit, no ack
    let _ = task.await;
    assert_eq!(
        effects(&store).await,
        0,
        "nothing of the dead attempt remains"
    );

    let handler = Arc::new(Record::default());
    let survivor = consumer(&store, &test_bus.bus, Arc::clone(&handler));
    let outcomes = eventually(WITHIN, "redelivery after the claim timeout", || async {
        let outcomes = survivor.poll_once(Duration::from_millis(50)).await.unwrap();
        (!outcomes.is_empty()).then_some(outcomes)
    })
    .await;
    assert_eq!(outcomes, [Outcome::Applied]);
    assert_eq!(effects(&store).await, 1);
}

async fn failing_handlers_retry_then_dead_letter(db: TestDb) {
    let store = database(&db).await;
    let test_bus = Backend::Memory.bus(Duration::from_secs(30)).await;
    produce(&store, "incidents/FLAKY", 1).await;
    produce(&store, "incidents/POISON", 1).await;
    OutboxRelay::new(
        store.clone(),
        Arc::clone(&test_bus.bus),
        RelayConfig::default(),
    )
    .relay_once()
    .await
    .unwrap();
    test_bus
        .bus
        .publish(&[Message {
            id: "not-an-event".into(),
            stream: "incidents".into(),
            key: "incidents/GARBAGE".into(),
            payload: vec![0xff, 0xff, 0xff],
        }])
        .await
        .unwrap();

    let handler = Arc::new(Record {
        fail_first: 2,
        ..Record::default()
    });
    let consumer = consumer(&store, &test_bus.bus, Arc::clone(&handler));
    let outcomes = consumer.poll_once(Duration::from_millis(10)).await.unwrap();
    assert_eq!(
        outcomes,
        [
            Outcome::Applied,
            Outcome::DeadLettered,
            Outcome::DeadLettered
        ]
    );
    assert_eq!(
        effects(&store).await,
        1,
        "only the flaky one, once, after two retries"
    );

    let dead = test_bus
        .bus
        .dead_letters("incidents", "test.effects", 10)
        .await
        .unwrap();
    let mut reasons: Vec<_> = dead
        .iter()
        .map(|d| (d.message.key.clone(), d.error.clone()))
        .collect();
    reasons.sort();
    assert_eq!(reasons[0].0, "incidents/GARBAGE");
    assert!(
        reasons[0].1.starts_with("not an itsm.events.v1.Event"),
        "{}",
        reasons[0].1
    );
    assert_eq!(
        reasons[1],
        ("incidents/POISON".into(), "cannot apply this event".into())
    );
    assert_eq!(
        test_bus.bus.lag("incidents", "test.effects").await.unwrap(),
        0
    );
}

async fn events_survive_redis_dying_and_coming_back_empty(db: TestDb) {
    let store = database(&db).await;
    let port = free_port();
    let mut redis = RedisServer::start(port);
    let config = RedisBusConfig {
        key_prefix: "itsm:".into(),
        claim_timeout: Duration::from_millis(500),
        ..RedisBusConfig::default()
    };
    let bus: Arc<dyn EventBus> = Arc::new(RedisBus::open(&redis.url(), config).await.unwrap());
    let cancel = CancellationToken::new();
    let relay_config = RelayConfig {
        poll_interval: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        ..RelayConfig::default()
    };
    let relay = OutboxRelay::new(store.clone(), Arc::clone(&bus), relay_config);
    let waker = relay.waker();
    let relaying = tokio::spawn(relay.run(cancel.clone()));
    let consuming =
        tokio::spawn(consumer(&store, &bus, Arc::new(Record::default())).run(cancel.clone()));

    for i in 1..=25 {
        produce(&store, &format!("incidents/INC{i}"), 1).await;
        waker.notify_one();
    }
    eventually(WITHIN, "the first 25 effects", || async {
        (effects(&store).await == 25).then_some(())
    })
    .await;

    redis.kill();
    for i in 26..=50 {
        // Writes go on while the bus is down: nothing here touches Redis.
        produce(&store, &format!("incidents/INC{i}"), 1).await;
        waker.notify_one();
    }
    let mut conn = store.pool().acquire().await.unwrap();
    let (waiting, _) = outbox::backlog(&mut conn).await.unwrap();
    drop(conn);
    assert!(waiting > 0, "events wait in the outbox while Redis is down");

    let _redis = RedisServer::start(port); // back, and empty
    eventually(WITHIN, "all 50 effects after Redis returned", || async {
        (effects(&store).await == 50).then_some(())
    })
    .await;
    // Give redeliveries a moment to show up if they were going to double-apply.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        effects(&store).await,
        50,
        "every event took effect exactly once"
    );
    let subjects: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT subject) FROM effects")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(subjects, 50);
    cancel.cancel();
    relaying.await.unwrap();
    consuming.await.unwrap();
}

backend_tests!(cache_entries_are_invalidated_by_the_owners_events);

async fn cache_entries_are_invalidated_by_the_owners_events(db: TestDb) {
    use itsm_events::{Cache, InvalidateOnEvents, MemoryCache};
    let store = database(&db).await;
    let test_bus = Backend::Memory.bus(Duration::from_secs(30)).await;
    let cache: Arc<dyn Cache> = Arc::new(MemoryCache::new(100));
    cache.set("cis/7", b"stale", Duration::from_secs(60)).await;
    cache.set("cis/8", b"fresh", Duration::from_secs(60)).await;

    produce(&store, "cis/7", 2).await;
    OutboxRelay::new(
        store.clone(),
        Arc::clone(&test_bus.bus),
        RelayConfig::default(),
    )
    .relay_once()
    .await
    .unwrap();
    let handler = InvalidateOnEvents::new(Arc::clone(&cache), |event| vec![event.subject.clone()]);
    let mut config = ConsumerConfig::new("cache.invalidation", &["incidents"]);
    config.wait = Duration::from_millis(10);
    let consumer = Consumer::new(
        store.clone(),
        Arc::clone(&test_bus.bus),
        Arc::new(handler),
        config,
    );
    assert_eq!(
        consumer.poll_once(Duration::from_millis(10)).await.unwrap(),
        [Outcome::Applied]
    );
    assert_eq!(cache.get("cis/7").await, None, "the changed entry is gone");
    assert_eq!(
        cache.get("cis/8").await.as_deref(),
        Some(&b"fresh"[..]),
        "others stay"
    );
}
