//! Identification: which existing CI a reported or created CI is, by the
//! ordered identification rules of its class.
//!
//! PLACEHOLDER BODY: the signature is the contract other modules code
//! against; the reconciliation helper implements it.

use itsm_platform::ApiError;
use itsm_proto::itsm::cmdb::v1 as pb;
use sqlx::AnyConnection;

use crate::model::Model;

/// What the identification rules found for one CI.
#[derive(Debug, Clone, PartialEq)]
pub enum Identification {
    /// No rule that applies found a CI.
    New,
    /// One CI, found by the rule with these attribute keys (empty when the
    /// (source, correlation id) mapping found it).
    Found { ci_id: i64, name: String, rule: Vec<String> },
    /// Ambiguous: the candidates and why.
    Ambiguous {
        reason: pb::ParkReason,
        candidates: Vec<pb::ParkedCandidate>,
    },
}

/// Identifies `ci` (of a concrete class in `model`): first by the
/// (source, correlation id) mapping when `correlation` is given, then by the
/// rules in force for its class, in order; the first rule whose attributes
/// all have values in `ci` and that finds anything decides.
pub async fn identify(
    _conn: &mut AnyConnection,
    _model: &Model,
    _ci: &pb::Ci,
    _correlation: Option<(&str, &str)>,
) -> Result<Identification, ApiError> {
    Ok(Identification::New)
}
