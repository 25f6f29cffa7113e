//! The in-process cache for `itsm dev` and tests: a bounded map with expiry.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::Cache;
use crate::metrics;

/// An in-process [`Cache`] holding at most `capacity` entries. When full, it
/// drops expired entries, then about the least recently used eighth, so an
/// insert costs O(1) amortized.
#[derive(Debug)]
pub struct MemoryCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// A use counter: larger is more recent.
    clock: u64,
}

#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    expires: Instant,
    used: u64,
}

impl MemoryCache {
    /// An empty cache that holds at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::default(),
        }
    }

    /// Entries held, expired ones not yet dropped included.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Nothing panics while holding it; a poisoned map is still a valid map.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    fn make_room(&mut self, capacity: usize, now: Instant) {
        self.entries.retain(|_, e| e.expires > now);
        if self.entries.len() < capacity {
            return;
        }
        let mut used: Vec<u64> = self.entries.values().map(|e| e.used).collect();
        let evict = (used.len() / 8).max(1);
        let (_, cutoff, _) = used.select_nth_unstable(evict - 1);
        let cutoff = *cutoff;
        self.entries.retain(|_, e| e.used > cutoff);
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Option<Vec<u8>> {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.clock += 1;
        let clock = inner.clock;
        let value = match inner.entries.get_mut(key) {
            Some(entry) if entry.expires > now => {
                entry.used = clock;
                Some(entry.value.clone())
            }
            Some(_) => {
                inner.entries.remove(key);
                None
            }
            None => None,
        };
        drop(inner);
        if value.is_some() {
            metrics::cache_hit();
        } else {
            metrics::cache_miss();
        }
        value
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) {
        let now = Instant::now();
        let mut inner = self.lock();
        if ttl.is_zero() {
            inner.entries.remove(key);
            return;
        }
        if !inner.entries.contains_key(key) && inner.entries.len() >= self.capacity {
            inner.make_room(self.capacity, now);
        }
        inner.clock += 1;
        let entry = Entry {
            value: value.to_vec(),
            // Capped so the addition cannot overflow; a year is forever here.
            expires: now + ttl.min(Duration::from_secs(86_400 * 365)),
            used: inner.clock,
        };
        inner.entries.insert(key.to_owned(), entry);
    }

    async fn delete(&self, keys: &[&str]) {
        let mut inner = self.lock();
        for key in keys {
            inner.entries.remove(*key);
        }
    }
}
