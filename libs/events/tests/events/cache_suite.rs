//! The cache contract, run against RedisCache and MemoryCache alike.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use itsm_events::{Cache, MemoryCache, RedisCache, RedisCacheConfig, get_or_load};

use crate::support::{Cleanup, eventually, redis_url, unique_prefix};

const MINUTE: Duration = Duration::from_secs(60);

/// Runs each listed suite test once per cache.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod redis_cache {
            $(#[tokio::test]
            async fn $name() {
                let (cache, _cleanup) = super::redis_cache().await;
                super::$name(&cache).await;
            })*
        }
        mod memory_cache {
            $(#[tokio::test]
            async fn $name() {
                super::$name(&itsm_events::MemoryCache::new(1000)).await;
            })*
        }
    };
}

suite! {
    set_then_get_then_delete,
    entries_expire_after_their_ttl,
    get_or_load_loads_once_and_not_on_failure,
}

async fn redis_cache() -> (RedisCache, Cleanup) {
    let prefix = unique_prefix();
    let config = RedisCacheConfig {
        key_prefix: prefix.clone(),
        ..RedisCacheConfig::default()
    };
    (
        RedisCache::open(&redis_url(), config).await.unwrap(),
        Cleanup(prefix),
    )
}

async fn set_then_get_then_delete(cache: &dyn Cache) {
    assert_eq!(cache.get("cmdb:ci:1").await, None);
    cache.set("cmdb:ci:1", b"server-1", MINUTE).await;
    cache.set("cmdb:ci:2", b"server-2", MINUTE).await;
    cache.set("cmdb:ci:3", b"server-3", MINUTE).await;
    assert_eq!(
        cache.get("cmdb:ci:1").await.as_deref(),
        Some(&b"server-1"[..])
    );
    cache.set("cmdb:ci:1", b"server-1b", MINUTE).await;
    assert_eq!(
        cache.get("cmdb:ci:1").await.as_deref(),
        Some(&b"server-1b"[..])
    );

    cache
        .delete(&["cmdb:ci:1", "cmdb:ci:2", "cmdb:ci:missing"])
        .await;
    cache.delete(&[]).await;
    assert_eq!(cache.get("cmdb:ci:1").await, None);
    assert_eq!(cache.get("cmdb:ci:2").await, None);
    assert_eq!(
        cache.get("cmdb:ci:3").await.as_deref(),
        Some(&b"server-3"[..])
    );

    // A zero TTL stores nothing.
    cache.set("cmdb:ci:4", b"x", Duration::ZERO).await;
    assert_eq!(cache.get("cmdb:ci:4").await, None);
}

async fn entries_expire_after_their_ttl(cache: &dyn Cache) {
    cache
        .set("sla:status:1", b"short", Duration::from_millis(100))
        .await;
    cache.set("sla:status:2", b"long", MINUTE).await;
    eventually(Duration::from_secs(5), "expiry", || async {
        cache.get("sla:status:1").await.is_none().then_some(())
    })
    .await;
    assert_eq!(
        cache.get("sla:status:2").await.as_deref(),
        Some(&b"long"[..])
    );
}

async fn get_or_load_loads_once_and_not_on_failure(cache: &dyn Cache) {
    let loads = Arc::new(AtomicUsize::new(0));
    for _ in 0..3 {
        let loads = Arc::clone(&loads);
        let value = get_or_load(cache, "auth:key:1", MINUTE, || async move {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>(b"key-1".to_vec())
        })
        .await
        .unwrap();
        assert_eq!(value, b"key-1");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);

    let failed = get_or_load(cache, "auth:key:2", MINUTE, || async {
        Err::<Vec<u8>, _>("database down".to_owned())
    })
    .await;
    assert_eq!(failed, Err("database down".to_owned()));
    assert_eq!(cache.get("auth:key:2").await, None);
}

#[tokio::test]
async fn memory_cache_stays_within_its_bound_and_keeps_recent_entries() {
    let cache = MemoryCache::new(10);
    for n in 0..100 {
        cache.set(&format!("k{n}"), b"v", MINUTE).await;
        // Keep k0 in use: it is never the least recently used.
        assert!(cache.get("k0").await.is_some(), "k0 evicted at {n}");
        assert!(cache.len() <= 10, "{} entries after {n}", cache.len());
    }
    assert!(cache.get("k99").await.is_some());
    assert!(cache.get("k1").await.is_none());
}
