//! The connection pool, for PostgreSQL or SQLite, chosen by the URL.

use std::sync::Arc;
use std::time::Duration;

use itsm_query::{SqlBuilder, SqlValue};
use sqlx::any::{AnyArguments, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor};

use crate::error::StoreError;
use crate::read::{ReadConn, Readers};

/// Which database is behind a [`Db`]. Code outside this crate rarely needs to
/// know: the few dialect differences are handled here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    /// What to append to a `SELECT` that reads a row the transaction will
    /// update: `FOR UPDATE` on PostgreSQL; nothing on SQLite, where the
    /// transaction holds the database's write lock from its first statement.
    pub fn lock_suffix(self) -> &'static str {
        match self {
            Self::Postgres => " FOR UPDATE",
            Self::Sqlite => "",
        }
    }
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Connections in all: a quarter of them (at least one) serve
    /// [`Db::read`], the rest the pool (at least one).
    pub max_connections: u32,
    /// How long a call waits for a free connection before failing UNAVAILABLE.
    pub acquire_timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// A database pool. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    readers: Arc<Readers>,
    backend: Backend,
}

/// A transaction; commit it or it rolls back when dropped.
pub type Tx = sqlx::Transaction<'static, Any>;

impl Db {
    /// Connects with default options.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, DbOptions::default()).await
    }

    /// Connects to `postgres://...`, `postgresql://...` or `sqlite:...`. A SQLite
    /// file is created when missing and runs in WAL mode with a busy timeout, so
    /// readers never block the writer and writers queue instead of failing.
    pub async fn connect_with(url: &str, options: DbOptions) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let separator = if url.contains('?') { '&' } else { '?' };
                format!("{url}{separator}mode=rwc")
            }
            _ => url.to_owned(),
        };
        let readers = (options.max_connections / 4).max(1);
        let mut pool = AnyPoolOptions::new()
            .max_connections(options.max_connections.saturating_sub(readers).max(1))
            .acquire_timeout(options.acquire_timeout)
            // sqlx pings a connection before every checkout by default: one
            // more round trip per call. A broken connection fails its first
            // statement instead, and the pool drops it.
            .test_before_acquire(false);
        if backend == Backend::Postgres {
            // Services run short statements; PostgreSQL's JIT compiles a plan
            // whose cost estimate is high (a long IN list) and can spend more
            // time compiling (hundreds of ms) than the statement runs.
            pool = pool.after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("SET jit = off").await?;
                    Ok(())
                })
            });
        }
        if backend == Backend::Sqlite {
            pool = pool.after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
                         PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
                    )
                    .await?;
                    Ok(())
                })
            });
        }
        let pool = pool
            .connect(&url)
            .await
            .map_err(|source| StoreError::Connect { backend, source })?;
        let readers = Readers::new(pool.clone(), readers, options.acquire_timeout);
        Ok(Self {
            pool,
            readers,
            backend,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for reads outside a transaction.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A connection for short reads on the hot path (get by key, a page):
    /// cheaper than [`Db::pool`]'s, which costs a round trip when returned
    /// (see [`crate::read`]). Call [`ReadConn::done`] when the reads are over.
    /// Not for transactions.
    pub async fn read(&self) -> Result<ReadConn, StoreError> {
        self.readers.get().await
    }

    /// Read connections: (the most there may be, parked, in use).
    pub fn read_connections(&self) -> (u32, u32, u32) {
        let (parked, in_use) = self.readers.counts();
        (self.readers.capacity(), parked, in_use)
    }

    /// Begins a read-write transaction. On SQLite it takes the write lock up
    /// front (`BEGIN IMMEDIATE`): a deferred transaction that later writes can
    /// fail with SQLITE_BUSY instead of waiting its turn.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let tx = match self.backend {
            Backend::Postgres => self.pool.begin().await?,
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
        };
        Ok(tx)
    }

    /// Closes every connection; waits for those in use to be returned.
    pub async fn close(&self) {
        self.readers.close().await;
        self.pool.close().await;
    }
}

/// A statement from a [`SqlBuilder`], with its values bound, ready to run.
pub fn query(sql: &SqlBuilder) -> sqlx::query::Query<'_, Any, AnyArguments> {
    // Safe to assert: a SqlBuilder's text is made of this workspace's SQL
    // fragments and whitelisted column names; every value is a bound parameter.
    let text = sqlx::AssertSqlSafe(sql.sql().to_owned());
    bind_all(sqlx::query(text), sql.params())
}

/// Binds values in order to a statement written with `$1, $2, ...`.
pub fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, Any, AnyArguments>,
    params: &'q [SqlValue],
) -> sqlx::query::Query<'q, Any, AnyArguments> {
    for param in params {
        query = match param {
            SqlValue::Null => query.bind(None::<String>),
            SqlValue::Bool(v) => query.bind(*v),
            SqlValue::Int(v) => query.bind(*v),
            SqlValue::Float(v) => query.bind(*v),
            SqlValue::Text(v) => query.bind(v.as_str()),
            SqlValue::Bytes(v) => query.bind(v.as_slice()),
        };
    }
    query
}
