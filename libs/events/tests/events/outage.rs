//! Redis dies and comes back: the bus fails fast, the cache degrades to
//! misses, and both recover without being rebuilt.

use std::time::{Duration, Instant};

use itsm_events::{Cache, EventBus, RedisBus, RedisBusConfig, RedisCache, RedisCacheConfig};

use crate::support::{RedisServer, eventually, free_port, message};

#[tokio::test]
async fn redis_outage_fails_fast_and_recovers() {
    let mut server = RedisServer::start(free_port());
    let url = server.url();
    let bus = RedisBus::open(
        &url,
        RedisBusConfig {
            claim_timeout: Duration::from_millis(200),
            ..RedisBusConfig::default()
        },
    )
    .await
    .unwrap();
    let cache = RedisCache::open(&url, RedisCacheConfig::default())
        .await
        .unwrap();

    bus.ping().await.unwrap();
    bus.ensure_group("incidents", "g").await.unwrap();
    bus.publish(&[message("incidents", 1)]).await.unwrap();
    cache.set("k", b"v", Duration::from_secs(60)).await;
    assert_eq!(cache.get("k").await.as_deref(), Some(&b"v"[..]));

    server.kill();

    let started = Instant::now();
    let error = bus.publish(&[message("incidents", 2)]).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "publish took {:?}",
        started.elapsed()
    );
    assert!(error.is_unavailable(), "{error}");
    assert!(
        error
            .to_string()
            .contains(&format!("127.0.0.1:{}", server.port)),
        "{error}"
    );

    let started = Instant::now();
    let error = bus
        .receive("incidents", "g", "a", 10, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "receive took {:?}",
        started.elapsed()
    );
    assert!(error.is_unavailable(), "{error}");

    let started = Instant::now();
    assert_eq!(cache.get("k").await, None);
    cache.set("k", b"w", Duration::from_secs(60)).await;
    cache.delete(&["k"]).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "cache took {:?}",
        started.elapsed()
    );

    // Same port, empty data: the stream and its group are gone.
    let _server = RedisServer::start(server.port);
    let sent = message("incidents", 3);
    eventually(Duration::from_secs(10), "publish after restart", || async {
        bus.publish(std::slice::from_ref(&sent)).await.ok()
    })
    .await;
    bus.ensure_group("incidents", "g").await.unwrap();
    let got = bus
        .receive("incidents", "g", "a", 10, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message, sent);
    // A group nobody recreated is recreated by receive itself.
    let got = bus
        .receive("incidents", "h", "a", 10, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(got[0].message, sent);

    eventually(Duration::from_secs(10), "cache after restart", || async {
        cache.set("k", b"x", Duration::from_secs(60)).await;
        cache.get("k").await
    })
    .await;
}

/// A Redis that accepts connections and never answers (a hung server, or a
/// network that drops packets): calls time out instead of hanging.
#[tokio::test]
async fn silent_redis_times_out_instead_of_hanging() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    let accepting = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let bus = RedisBus::open(&url, RedisBusConfig::default())
        .await
        .unwrap();
    let cache = RedisCache::open(&url, RedisCacheConfig::default())
        .await
        .unwrap();

    let started = Instant::now();
    let error = bus.publish(&[message("incidents", 1)]).await.unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(3500), "publish took {took:?}");
    assert!(error.is_unavailable(), "{error}");

    let started = Instant::now();
    let error = bus
        .receive("incidents", "g", "a", 10, Duration::ZERO)
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(3500), "receive took {took:?}");
    assert!(error.is_unavailable(), "{error}");

    let started = Instant::now();
    assert_eq!(cache.get("k").await, None);
    cache.set("k", b"v", Duration::from_secs(60)).await;
    assert_eq!(cache.get("k").await, None);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "cache took {took:?}");
    accepting.abort();
}
