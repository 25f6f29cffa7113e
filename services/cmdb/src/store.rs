//! The CMDB's tables. Functions take a connection or transaction; the use
//! case owns the transaction. Most resources are stored as their protobuf
//! message (`doc`) with copies of the columns queries filter, sort or walk on.
//!
//! - [`classes`], [`relationship_types`], [`settings`]: the model and settings.
//! - [`cis`]: CI rows, attribute index, sightings, versions; [`history`]: CI history.
//! - [`relationships`]: the edge table.
//! - [`discovery`]: sources and precedence rules; [`parked`]: parked matches.
//! - [`baselines`], [`health`]: baselines and health findings.

pub mod baselines;
pub mod cis;
pub mod classes;
pub mod discovery;
pub mod health;
pub mod history;
pub mod parked;
pub mod relationship_types;
pub mod relationships;
pub mod settings;

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
