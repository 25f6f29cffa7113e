//! Cache invalidation driven by events: the owner of cached data publishes
//! an event for every change; a consumer of those events deletes the keys
//! the change made stale. With a shared (Redis) cache one consumer group per
//! service is enough, however many replicas it runs: no cache to clear on
//! every node.

use std::sync::Arc;

use async_trait::async_trait;
use itsm_proto::itsm::events::v1::Event;
use itsm_store::Tx;

use crate::cache::Cache;
use crate::consumer::{Handler, HandlerError};

/// Which cache keys an event makes stale, e.g. `cmdb:ci:<id>` and the impact
/// results that include it.
pub type StaleKeys = dyn Fn(&Event) -> Vec<String> + Send + Sync;

/// A [`Handler`] that deletes the keys an event makes stale.
pub struct InvalidateOnEvents {
    cache: Arc<dyn Cache>,
    stale_keys: Box<StaleKeys>,
}

impl std::fmt::Debug for InvalidateOnEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvalidateOnEvents")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl InvalidateOnEvents {
    pub fn new(
        cache: Arc<dyn Cache>,
        stale_keys: impl Fn(&Event) -> Vec<String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            cache,
            stale_keys: Box::new(stale_keys),
        }
    }
}

#[async_trait]
impl Handler for InvalidateOnEvents {
    async fn handle(&self, _tx: &mut Tx, event: &Event) -> Result<(), HandlerError> {
        let keys = (self.stale_keys)(event);
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        // A failed delete is logged by the cache; the entry's TTL bounds the staleness.
        self.cache.delete(&keys).await;
        Ok(())
    }
}
