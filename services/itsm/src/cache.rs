//! The cache a served practice keeps its hot reads in.

use std::sync::Arc;

use itsm_events::cache::{Cache, MemoryCache, RedisCache, RedisCacheConfig};
use itsm_platform::config::Config;

use crate::cli::CliError;

/// Redis at `ITSM_REDIS_URL` (keys under `<ITSM_REDIS_PREFIX>cache:`), shared
/// by every replica (a write invalidates it for all of them); without one, an in-process cache, which is only right
/// for a single replica (a warning says so).
pub async fn for_serve(config: &Config) -> Result<Arc<dyn Cache>, CliError> {
    match &config.redis_url {
        Some(url) => {
            let cache = RedisCacheConfig {
                key_prefix: format!("{}cache:", config.redis_prefix),
                ..RedisCacheConfig::default()
            };
            Ok(Arc::new(RedisCache::open(url.expose(), cache).await?))
        }
        None => {
            tracing::warn!(
                "ITSM_REDIS_URL is not set: caching in-process, which is only consistent with one replica"
            );
            Ok(Arc::new(MemoryCache::new(100_000)))
        }
    }
}
