//! The one way a CI changes, whoever changes it (the API, reconciliation, a
//! parked match resolved): the row, the attribute index, the version snapshot,
//! the sighting, the history entry and the event, in the caller's transaction.
//!
//! PLACEHOLDER BODIES: the signatures are the contract other modules code
//! against; the CI helper implements them.

use itsm_platform::{ApiError, ErrorCode};
use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::audit::FieldChange;
use sqlx::AnyConnection;

use crate::api::call::Call;
use crate::model::Model;

/// A CI as stored: its internal id (what relationships and history
/// reference) and the message (`name` "cis/<uid>", `etag` "v<version>").
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCi {
    pub id: i64,
    pub version: i64,
    pub ci: pb::Ci,
}

/// Where a change comes from.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub call: &'a Call,
    /// The discovery source id: "sccm", or "manual" for edits through the API.
    pub source: &'a str,
    /// The source's key for the CI, "" for manual edits.
    pub correlation_id: &'a str,
    /// The history action: "create", "update", "reconcile", "reclassify", "retire".
    pub action: &'a str,
    pub now: i64,
}

/// Stores `ci` as a new CI (version 1) and returns it as stored: a new uid,
/// status PLANNED when unspecified, attribute defaults of the class applied,
/// provenance of every set field from `origin`, a sighting of
/// (source, correlation_id), the attribute index, the version snapshot, a
/// "create" history entry listing every set field, and a `cmdb.ci.created`
/// event. The caller has validated `ci` (class, attributes, references).
pub async fn create_ci(
    _conn: &mut AnyConnection,
    _model: &Model,
    _ci: pb::Ci,
    _origin: &Origin<'_>,
) -> Result<StoredCi, ApiError> {
    Err(ApiError::new(ErrorCode::Unimplemented, "create_ci"))
}

/// Stores `after` as the next version of `before` when a field differs
/// (see [`diff`]): provenance of each changed field set from `origin`, the
/// row and the changed attribute index rows, the old version closed and the
/// new snapshot stored, one history entry with every field change, and the
/// event (`cmdb.ci.retired`, `.reclassified`, `.status_changed` or
/// `.updated`, by what changed). Returns the CI as stored and the changes
/// (none: nothing was written, `before` is returned).
pub async fn update_ci(
    _conn: &mut AnyConnection,
    _model: &Model,
    _before: &StoredCi,
    _after: pb::Ci,
    _origin: &Origin<'_>,
) -> Result<(StoredCi, Vec<FieldChange>), ApiError> {
    Err(ApiError::new(ErrorCode::Unimplemented, "update_ci"))
}

/// Rewrites the stored message of `ci` without a new version, history entry
/// or event: for what is not a change of the CI (a sighting, provenance's
/// `last_reported_time`, `last_seen_time`). The caller sets those fields.
pub async fn save_unversioned(
    _conn: &mut AnyConnection,
    _ci: &StoredCi,
    _now: i64,
) -> Result<(), ApiError> {
    Err(ApiError::new(ErrorCode::Unimplemented, "save_unversioned"))
}

/// Records that `origin.source` saw the CI now under `origin.correlation_id`
/// (inserting or moving the sighting row), and moves the CI's
/// `last_seen_time` and its `sightings` in `ci` (the caller saves `ci`).
pub async fn sight(
    _conn: &mut AnyConnection,
    _ci: &mut StoredCi,
    _origin: &Origin<'_>,
) -> Result<(), ApiError> {
    Err(ApiError::new(ErrorCode::Unimplemented, "sight"))
}

/// A "relate" or "unrelate" history entry on the CI with internal id
/// `ci_id` for `relationship` ("relationships/<uuid>"); no new CI version.
pub async fn record_relationship(
    _conn: &mut AnyConnection,
    _ci_id: i64,
    _action: &str,
    _relationship: &str,
    _origin: &Origin<'_>,
) -> Result<(), ApiError> {
    Err(ApiError::new(ErrorCode::Unimplemented, "record_relationship"))
}

/// The field changes from `before` to `after`: core fields by name
/// ("support_group", "status", "ci_class", ...), attributes as
/// "attributes.<key>", labels as "labels"; values as text. Output-only
/// fields (provenance, sightings, times, etag) are not compared.
pub fn diff(_before: &pb::Ci, _after: &pb::Ci) -> Vec<FieldChange> {
    Vec::new()
}

/// Checks what needs the database: references (`location` and REFERENCE
/// attributes) name existing CIs of the right class. Violations name
/// `"{prefix}.location"`, `"{prefix}.attributes.<key>"`.
pub async fn check_references(
    _conn: &mut AnyConnection,
    _model: &Model,
    _ci: &pb::Ci,
    _prefix: &str,
    _violations: &mut itsm_platform::Violations,
) -> Result<(), ApiError> {
    Ok(())
}

/// The CI named `name` ("cis/<uuid>"), locked with `lock` (the backend's
/// `lock_suffix()` in a write transaction, "" otherwise). `None` when no
/// such CI exists (or `name` is malformed).
pub async fn load(
    _conn: &mut AnyConnection,
    _name: &str,
    _lock: &str,
) -> Result<Option<StoredCi>, ApiError> {
    Ok(None)
}

/// The CIs with these internal ids (those that exist), in no order.
pub async fn load_by_ids(
    _conn: &mut AnyConnection,
    _ids: &[i64],
) -> Result<Vec<StoredCi>, ApiError> {
    Ok(Vec::new())
}

/// The cache keys a change of the CI with uid `uid` makes stale.
pub fn stale_keys(prefix: &str, uid: &str) -> Vec<String> {
    vec![format!("{prefix}ci:{uid}")]
}
