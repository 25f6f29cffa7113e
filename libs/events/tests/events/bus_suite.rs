//! The bus contract, run against RedisBus and MemoryBus alike.

use std::sync::Arc;
use std::time::{Duration, Instant};

use itsm_events::{BusError, Delivery, EventBus, MemoryBus, MemoryBusConfig, Message};

use crate::support::{Backend, TestBus, message};

const LONG: Duration = Duration::from_secs(30);
const SHORT_CLAIM: Duration = Duration::from_millis(200);

/// Runs each listed suite test once per backend.
macro_rules! suite {
    ($($name:ident => $claim:ident),* $(,)?) => {
        mod redis_bus {
            $(#[tokio::test]
            async fn $name() {
                let t = crate::support::Backend::Redis.bus(super::$claim).await;
                super::$name(&t).await;
            })*
        }
        mod memory_bus {
            $(#[tokio::test]
            async fn $name() {
                let t = crate::support::Backend::Memory.bus(super::$claim).await;
                super::$name(&t).await;
            })*
        }
    };
}

suite! {
    each_group_gets_every_message_once_in_order => SHORT_CLAIM,
    unacknowledged_message_goes_to_another_consumer_after_claim_timeout => SHORT_CLAIM,
    dead_letter_keeps_message_and_error_and_stops_redelivery => SHORT_CLAIM,
    receive_waits_and_wakes_on_publish => LONG,
    lag_counts_pending_and_undelivered => LONG,
    receive_creates_a_missing_group_from_the_start => LONG,
    lag_of_unknown_group_is_an_error => LONG,
    acknowledging_for_unknown_groups_is_harmless => LONG,
}

/// Receives until `count` deliveries came or 5 s passed.
async fn receive_n(bus: &dyn EventBus, group: &str, consumer: &str, count: usize) -> Vec<Delivery> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    while got.len() < count && Instant::now() < deadline {
        let wait = Duration::from_millis(500);
        got.extend(
            bus.receive("incidents", group, consumer, count - got.len(), wait)
                .await
                .unwrap(),
        );
    }
    got
}

fn ids(deliveries: &[Delivery]) -> Vec<String> {
    deliveries.iter().map(|d| d.delivery_id.clone()).collect()
}

fn messages(deliveries: &[Delivery]) -> Vec<Message> {
    deliveries.iter().map(|d| d.message.clone()).collect()
}

async fn each_group_gets_every_message_once_in_order(t: &TestBus) {
    let bus = t.bus.as_ref();
    bus.ensure_group("incidents", "notifier").await.unwrap();
    let sent: Vec<Message> = (0..10).map(|n| message("incidents", n)).collect();
    // A batch may span streams; each stream keeps its own order.
    let mut batch = sent[..4].to_vec();
    batch.push(message("changes", 0));
    bus.publish(&batch).await.unwrap();
    bus.publish(&sent[4..]).await.unwrap();
    bus.publish(&[]).await.unwrap();
    // Created after the publish: a new group starts from the beginning.
    bus.ensure_group("incidents", "sla").await.unwrap();
    bus.ensure_group("incidents", "sla").await.unwrap();

    for group in ["notifier", "sla"] {
        let got = receive_n(bus, group, "c1", 10).await;
        assert_eq!(messages(&got), sent, "group {group}");
        assert!(
            got.iter()
                .all(|d| d.attempt == 1 && d.stream == "incidents")
        );
        assert_eq!(bus.lag("incidents", group).await.unwrap(), 10);
        bus.ack("incidents", group, &ids(&got)).await.unwrap();
        bus.ack("incidents", group, &ids(&got)).await.unwrap();
        assert_eq!(bus.lag("incidents", group).await.unwrap(), 0);
    }
    // Well past the claim timeout, nothing acknowledged comes back.
    let again = bus
        .receive("incidents", "notifier", "c2", 10, SHORT_CLAIM * 3)
        .await
        .unwrap();
    assert_eq!(again, vec![]);
}

async fn unacknowledged_message_goes_to_another_consumer_after_claim_timeout(t: &TestBus) {
    let bus = t.bus.as_ref();
    bus.ensure_group("incidents", "g").await.unwrap();
    let sent = message("incidents", 1);
    bus.publish(std::slice::from_ref(&sent)).await.unwrap();

    let first = receive_n(bus, "g", "crashes", 1).await;
    assert_eq!(first[0].attempt, 1);
    // Not yet: it is in flight at the first consumer.
    let none = bus
        .receive("incidents", "g", "b", 10, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(none, vec![]);

    let started = Instant::now();
    let second = bus
        .receive("incidents", "g", "b", 10, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].message, sent);
    assert_eq!(second[0].attempt, 2);
    assert_eq!(second[0].delivery_id, first[0].delivery_id);

    let third = bus
        .receive("incidents", "g", "c", 10, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(third.len(), 1);
    assert_eq!(third[0].attempt, 3);

    bus.ack("incidents", "g", &ids(&third)).await.unwrap();
    // The first consumer waking up and acknowledging late is harmless.
    bus.ack("incidents", "g", &ids(&first)).await.unwrap();
    assert_eq!(bus.lag("incidents", "g").await.unwrap(), 0);
}

async fn dead_letter_keeps_message_and_error_and_stops_redelivery(t: &TestBus) {
    let bus = t.bus.as_ref();
    bus.ensure_group("incidents", "g").await.unwrap();
    bus.ensure_group("incidents", "other").await.unwrap();
    let sent = message("incidents", 7);
    bus.publish(std::slice::from_ref(&sent)).await.unwrap();
    receive_n(bus, "g", "a", 1).await;
    let retried = bus
        .receive("incidents", "g", "b", 1, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(retried[0].attempt, 2);

    let before = now_ms();
    let error = "decode failed: missing field `incident`";
    bus.dead_letter("g", &retried[0], error).await.unwrap();

    let dead = bus.dead_letters("incidents", "g", 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message, sent);
    assert_eq!(dead[0].error, error);
    assert_eq!(dead[0].attempts, 2);
    assert_eq!(dead[0].group, "g");
    assert!((before - 1000..=now_ms() + 1000).contains(&dead[0].time_unix_ms));
    assert_eq!(
        bus.dead_letters("incidents", "other", 10).await.unwrap(),
        vec![]
    );

    // No longer pending: not delivered again, and the lag is gone.
    assert_eq!(bus.lag("incidents", "g").await.unwrap(), 0);
    let again = bus
        .receive("incidents", "g", "c", 10, SHORT_CLAIM * 3)
        .await
        .unwrap();
    assert_eq!(again, vec![]);
    // The other group is unaffected.
    assert_eq!(receive_n(bus, "other", "a", 1).await[0].message, sent);
}

async fn receive_waits_and_wakes_on_publish(t: &TestBus) {
    let bus = t.bus.clone();
    bus.ensure_group("incidents", "g").await.unwrap();

    let started = Instant::now();
    let none = bus
        .receive("incidents", "g", "a", 10, Duration::from_millis(300))
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(none, vec![]);
    assert!(
        waited >= Duration::from_millis(290),
        "returned after {waited:?}"
    );
    assert!(waited < Duration::from_secs(3), "returned after {waited:?}");

    // Two receivers of different groups wait at once; a publish on the same
    // bus is not held up behind their waits, and wakes both.
    bus.ensure_group("incidents", "h").await.unwrap();
    let started = Instant::now();
    let waiting: Vec<_> = ["g", "h"]
        .into_iter()
        .map(|group| {
            let receiver = Arc::clone(&bus);
            tokio::spawn(async move {
                receiver
                    .receive("incidents", group, "a", 10, Duration::from_secs(20))
                    .await
            })
        })
        .collect();
    tokio::task::yield_now().await;
    let sent = message("incidents", 1);
    bus.publish(std::slice::from_ref(&sent)).await.unwrap();
    let published = started.elapsed();
    assert!(
        published < Duration::from_secs(1),
        "publish took {published:?}"
    );
    for receiver in waiting {
        let got = receiver.await.unwrap().unwrap();
        assert_eq!(messages(&got), vec![sent.clone()]);
    }
    let woke = started.elapsed();
    assert!(woke < Duration::from_secs(5), "woke after {woke:?}");
}

async fn lag_counts_pending_and_undelivered(t: &TestBus) {
    let bus = t.bus.as_ref();
    let sent: Vec<Message> = (0..5).map(|n| message("incidents", n)).collect();
    bus.publish(&sent).await.unwrap();
    bus.ensure_group("incidents", "g").await.unwrap();
    assert_eq!(bus.lag("incidents", "g").await.unwrap(), 5);
    let got = bus
        .receive("incidents", "g", "a", 2, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(messages(&got), sent[..2].to_vec());
    assert_eq!(bus.lag("incidents", "g").await.unwrap(), 5);
    bus.ack("incidents", "g", &ids(&got)).await.unwrap();
    assert_eq!(bus.lag("incidents", "g").await.unwrap(), 3);
}

async fn receive_creates_a_missing_group_from_the_start(t: &TestBus) {
    let bus = t.bus.as_ref();
    let sent: Vec<Message> = (0..3).map(|n| message("incidents", n)).collect();
    bus.publish(&sent).await.unwrap();
    let got = receive_n(bus, "never-ensured", "a", 3).await;
    assert_eq!(messages(&got), sent);
    // Nothing published to a stream yet: an empty answer, not an error.
    let none = bus
        .receive("problems", "g", "a", 10, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(none, vec![]);
}

async fn acknowledging_for_unknown_groups_is_harmless(t: &TestBus) {
    let bus = t.bus.as_ref();
    bus.publish(&[message("incidents", 1)]).await.unwrap();
    let got = bus
        .receive("incidents", "g", "a", 1, Duration::ZERO)
        .await
        .unwrap();
    // As after Redis lost its data: the group or stream is gone, the ack is moot.
    bus.ack("incidents", "other", &ids(&got)).await.unwrap();
    bus.ack("nothing-here", "g", &ids(&got)).await.unwrap();
    bus.ack("incidents", "g", &[]).await.unwrap();
    assert_eq!(bus.lag("incidents", "g").await.unwrap(), 1);
}

async fn lag_of_unknown_group_is_an_error(t: &TestBus) {
    let bus = t.bus.as_ref();
    let missing_stream = bus.lag("nothing-here", "g").await.unwrap_err();
    assert!(
        matches!(missing_stream, BusError::NoGroup { .. }),
        "{missing_stream}"
    );
    bus.ensure_group("incidents", "g").await.unwrap();
    let missing_group = bus.lag("incidents", "h").await.unwrap_err();
    assert!(
        matches!(missing_group, BusError::NoGroup { .. }),
        "{missing_group}"
    );
    assert_eq!(
        missing_group.to_string(),
        r#"consumer group "h" does not exist on stream "incidents""#
    );
}

fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(now.as_millis()).unwrap()
}

#[tokio::test]
async fn memory_bus_drops_what_every_group_acknowledged() {
    let bus = MemoryBus::new(MemoryBusConfig::default());
    bus.ensure_group("incidents", "a").await.unwrap();
    bus.ensure_group("incidents", "b").await.unwrap();
    let sent: Vec<Message> = (0..100).map(|n| message("incidents", n)).collect();
    bus.publish(&sent).await.unwrap();
    for group in ["a", "b"] {
        assert_eq!(
            bus.retained("incidents"),
            100,
            "before {group} acknowledged"
        );
        let got = bus
            .receive("incidents", group, "c", 100, Duration::ZERO)
            .await
            .unwrap();
        bus.ack("incidents", group, &ids(&got)).await.unwrap();
    }
    assert_eq!(bus.retained("incidents"), 0);
}

#[tokio::test]
async fn memory_bus_keeps_at_most_max_len_messages_per_stream() {
    let bus = MemoryBus::new(MemoryBusConfig {
        max_len: 10,
        ..MemoryBusConfig::default()
    });
    let sent: Vec<Message> = (0..25).map(|n| message("incidents", n)).collect();
    bus.publish(&sent).await.unwrap();
    assert_eq!(bus.retained("incidents"), 10);
    let got = bus
        .receive("incidents", "late", "c", 100, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(messages(&got), sent[15..].to_vec());
}

#[tokio::test]
async fn redis_bus_keeps_keys_under_its_prefix() {
    let t = Backend::Redis.bus(SHORT_CLAIM).await;
    let bus = t.bus.as_ref();
    bus.publish(&[message("incidents", 1)]).await.unwrap();
    let got = bus
        .receive("incidents", "g", "a", 1, Duration::from_secs(1))
        .await
        .unwrap();
    bus.dead_letter("g", &got[0], "boom").await.unwrap();

    let client = redis::Client::open(crate::support::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", t.prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    keys.sort();
    let p = &t.prefix;
    assert_eq!(
        keys,
        vec![
            format!("{p}dead:incidents:g"),
            format!("{p}stream:incidents")
        ]
    );
}
