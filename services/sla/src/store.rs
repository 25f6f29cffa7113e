//! The SLA service's tables. Functions take a connection or transaction; the
//! use case owns the transaction. Resources are stored as their protobuf
//! message (`doc`) with copies of the columns queries filter, sort or join on.
//!
//! - [`calendars`]: calendars and their versions.
//! - [`definitions`]: SLA definitions and their versions.

use itsm_store::StoreError;
use prost::Message;

/// Decodes a stored protobuf `doc`; a row that does not decode is a bug or a
/// corrupted row, reported as a store error naming the table.
pub fn decode<M: Message + Default>(table: &str, doc: &[u8]) -> Result<M, StoreError> {
    M::decode(doc).map_err(|e| {
        let message = format!("{table}.doc does not decode: {e}");
        StoreError::Database(sqlx::Error::Decode(message.into()))
    })
}
