//! Connections for short reads, returned without sqlx's release ping.
//!
//! sqlx hands every pooled connection back through a spawned task that first
//! pings the database (a `Sync` and its `ReadyForQuery` on PostgreSQL): its
//! guard against a future dropped halfway through a statement. For a
//! primary-key read that is a second round trip, and a second wakeup of the
//! server process, for every call; on a busy 2-core machine it cost GetIncident
//! about a third of its rate.
//!
//! A [`ReadConn`] that is [`done`](ReadConn::done) ran its statements to their
//! end (a caller only gets there after every `.await` returned), so it is
//! parked as it is. One dropped without `done` (an error returned early, a
//! cancelled call) takes sqlx's path: pinged in the background, parked when
//! it answers, closed otherwise. A connection parked for a while is pinged
//! before it is handed out again, and one older than [`MAX_LIFETIME`] is
//! replaced, as the pool does with its own.
//!
//! Read connections are opened by the pool (so its `after_connect` settings
//! apply) and detached from it; a semaphore bounds how many exist.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::{AnyConnection, AnyPool, Connection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::StoreError;

/// A read connection is replaced once it is this old.
pub const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// A read connection parked this long is pinged before it is handed out.
pub const CHECK_AFTER_IDLE: Duration = Duration::from_secs(30);
/// How long the background ping of a connection dropped mid-use may take.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// The read connections of a [`Db`](crate::Db).
#[derive(Debug)]
pub(crate) struct Readers {
    /// Opens connections (then detached from it).
    pool: AnyPool,
    parked: Mutex<Vec<Parked>>,
    /// One permit per read connection that may exist.
    permits: Arc<Semaphore>,
    capacity: u32,
    acquire_timeout: Duration,
}

#[derive(Debug)]
struct Parked {
    conn: AnyConnection,
    opened: Instant,
    used: Instant,
}

impl Readers {
    pub(crate) fn new(pool: AnyPool, capacity: u32, acquire_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            pool,
            parked: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
            acquire_timeout,
        })
    }

    pub(crate) fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Read connections open: (parked, in use).
    pub(crate) fn counts(&self) -> (u32, u32) {
        let parked = u32::try_from(self.lock().len()).unwrap_or(u32::MAX);
        let available = u32::try_from(self.permits.available_permits()).unwrap_or(u32::MAX);
        let in_use = self.capacity.saturating_sub(available);
        (parked, in_use)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Parked>> {
        self.parked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) async fn get(self: &Arc<Self>) -> Result<ReadConn, StoreError> {
        let permit = tokio::time::timeout(
            self.acquire_timeout,
            Arc::clone(&self.permits).acquire_owned(),
        )
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)?
        .map_err(|_| sqlx::Error::PoolClosed)?;
        loop {
            let next = self.lock().pop();
            let Some(mut parked) = next else { break };
            if parked.opened.elapsed() >= MAX_LIFETIME {
                close_later(parked.conn);
                continue;
            }
            if parked.used.elapsed() >= CHECK_AFTER_IDLE && parked.conn.ping().await.is_err() {
                continue;
            }
            return Ok(self.hand_out(parked, permit));
        }
        let conn = tokio::time::timeout(self.acquire_timeout, self.pool.acquire())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??
            .detach();
        let now = Instant::now();
        let parked = Parked {
            conn,
            opened: now,
            used: now,
        };
        Ok(self.hand_out(parked, permit))
    }

    fn hand_out(self: &Arc<Self>, parked: Parked, permit: OwnedSemaphorePermit) -> ReadConn {
        ReadConn {
            parked: Some(parked),
            readers: Arc::clone(self),
            permit: Some(permit),
        }
    }

    fn park(&self, mut parked: Parked) {
        if self.permits.is_closed() {
            close_later(parked.conn);
            return;
        }
        parked.used = Instant::now();
        self.lock().push(parked);
    }

    /// Refuses new reads and closes the parked connections.
    pub(crate) async fn close(&self) {
        self.permits.close();
        let parked = std::mem::take(&mut *self.lock());
        for parked in parked {
            let _ = parked.conn.close().await;
        }
    }
}

fn close_later(conn: AnyConnection) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let _ = conn.close().await;
        });
    }
}

/// A connection for reads outside a transaction, from [`Db::read`](crate::Db::read).
/// Call [`done`](Self::done) when its statements have run; dropping it instead
/// is safe and costs a background ping.
#[derive(Debug)]
pub struct ReadConn {
    parked: Option<Parked>,
    readers: Arc<Readers>,
    /// Released once the connection is parked or closed.
    permit: Option<OwnedSemaphorePermit>,
}

impl ReadConn {
    /// Returns the connection for the next read, as it is.
    pub fn done(mut self) {
        if let Some(parked) = self.parked.take() {
            self.readers.park(parked);
        }
    }
}

impl Deref for ReadConn {
    type Target = AnyConnection;

    #[allow(clippy::expect_used)] // present until `done` or drop consumes it
    fn deref(&self) -> &AnyConnection {
        &self.parked.as_ref().expect("read connection present").conn
    }
}

impl DerefMut for ReadConn {
    #[allow(clippy::expect_used)] // present until `done` or drop consumes it
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.parked.as_mut().expect("read connection present").conn
    }
}

impl Drop for ReadConn {
    fn drop(&mut self) {
        let Some(mut parked) = self.parked.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let readers = Arc::clone(&self.readers);
        let permit = self.permit.take();
        runtime.spawn(async move {
            match tokio::time::timeout(PING_TIMEOUT, parked.conn.ping()).await {
                Ok(Ok(())) => readers.park(parked),
                _ => drop(parked),
            }
            drop(permit);
        });
    }
}
