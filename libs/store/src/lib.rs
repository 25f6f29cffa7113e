//! Storage for every ITSM service: the system-of-record rules written once.
//!
//! - [`Db`]: a PostgreSQL (production) or SQLite (`itsm dev`) pool chosen by URL,
//!   one code path for both: statements use `$N` placeholders and the portable
//!   types (integers, floats, text, bytes; times as microseconds since the epoch).
//! - [`migrate`]: each service's migrations, embedded, merged with the platform
//!   tables below; concurrent migrators are serialized (PostgreSQL advisory lock).
//! - [`page`]: keyset pagination with opaque, tamper-evident page tokens.
//! - [`etag`], [`idempotency`], [`audit`], [`outbox`], [`counter`], [`lease`]:
//!   the pieces of a write, all inside the caller's transaction.
//!
//! The filter and `order_by` language lives in `itsm-query`, re-exported as [`query`].
//! Storage functions take a connection or transaction; the use case owns the transaction.

pub mod audit;
pub mod change;
pub mod counter;
pub mod db;
pub mod error;
pub mod etag;
pub mod idempotency;
pub mod lease;
pub mod list;
pub mod metrics;
pub mod migrate;
pub mod outbox;
pub mod page;
pub mod read;

pub use db::{Backend, Db, DbOptions, Tx};
pub use error::StoreError;
pub use itsm_query as query;
pub use itsm_query::{SqlBuilder, SqlValue};

/// Now, in microseconds since the Unix epoch: how every table stores time.
pub fn now_micros() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_micros()).unwrap_or(i64::MAX)
}
