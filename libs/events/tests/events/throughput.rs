//! How fast the relay can push into Redis Streams: batches of 500 in a row.
//! Run with `cargo test -p itsm-events -- --ignored --nocapture throughput`.

use std::time::{Duration, Instant};

use itsm_events::{EventBus, Message, RedisBus, RedisBusConfig};

use crate::support::{Cleanup, redis_url, unique_prefix};

#[tokio::test]
#[ignore = "a measurement, not a check; run it by hand"]
async fn publish_throughput() {
    let prefix = unique_prefix();
    let _cleanup = Cleanup(prefix.clone());
    let config = RedisBusConfig {
        key_prefix: prefix,
        ..RedisBusConfig::default()
    };
    let bus = RedisBus::open(&redis_url(), config).await.unwrap();
    bus.ensure_group("incidents", "g").await.unwrap();
    // About the size of an encoded envelope with an incident in it.
    let payload = vec![b'x'; 400];
    let batches: Vec<Vec<Message>> = (0..200)
        .map(|b| {
            (0..500)
                .map(|n| Message {
                    id: uuid::Uuid::new_v4().to_string(),
                    stream: "incidents".into(),
                    key: format!("incidents/INC{:07}", b * 500 + n),
                    payload: payload.clone(),
                })
                .collect()
        })
        .collect();
    let started = Instant::now();
    for batch in &batches {
        bus.publish(batch).await.unwrap();
    }
    let elapsed = started.elapsed();
    let total = batches.len() * 500;
    let rate = total as f64 / elapsed.as_secs_f64();
    println!("published {total} events in {elapsed:?}: {rate:.0} events/s");
    assert!(elapsed < Duration::from_secs(60));
    assert_eq!(bus.lag("incidents", "g").await.unwrap(), total as u64);
}
