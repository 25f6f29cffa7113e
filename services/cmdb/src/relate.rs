//! Creating a relationship, whoever creates it (the API or a discovery
//! report): checks, the edge row, history on both CIs, the event.
//!
//! PLACEHOLDER BODY: the signature is the contract other modules code
//! against; the graph helper implements it.

use itsm_platform::{ApiError, ErrorCode};
use itsm_proto::itsm::cmdb::v1 as pb;
use sqlx::AnyConnection;

use crate::model::Model;
use crate::write::{Origin, StoredCi};

/// Relates `source` to `target` by the relationship type `type_id`
/// ("runs_on") with `description`. Checks the type exists, the classes fit
/// it, neither CI is retired, no self-relationship, and for acyclic types
/// that no cycle forms (FAILED_PRECONDITION); errors name fields under
/// `field` ("relationship"). An identical relationship (either direction for
/// a symmetric type) is not created again: `Ok((existing, false))` with its
/// `last_seen_time` moved when `origin.source` is not "manual"; callers that
/// must refuse duplicates answer ALREADY_EXISTS themselves.
pub async fn relate(
    _conn: &mut AnyConnection,
    _model: &Model,
    _source: &StoredCi,
    _type_id: &str,
    _target: &StoredCi,
    _description: &str,
    _field: &str,
    _origin: &Origin<'_>,
) -> Result<(pb::Relationship, bool), ApiError> {
    Err(ApiError::new(ErrorCode::Unimplemented, "relate"))
}
