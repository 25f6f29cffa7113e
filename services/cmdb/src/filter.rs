//! The CI filter language: the shared AIP-160 subset (`itsm_store::query`)
//! over the CI's core fields, `ci_class` matching the class and its
//! subclasses, and `attributes.<key>` over the attribute index. One parsed
//! filter can be compiled to SQL (lists) or evaluated in memory (baselines
//! at a past instant, impact results, diffs).
//!
//! PLACEHOLDER BODIES: the signatures are the contract other modules code
//! against; the CI helper implements them.

use itsm_platform::{ApiError, ErrorCode};
use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::SqlBuilder;

use crate::model::Model;

/// A parsed CI filter, its fields checked against the CI schema.
#[derive(Debug, Clone, Default)]
pub struct CiFilter {
    expr: Option<itsm_store::query::Expr>,
}

impl CiFilter {
    /// Parses `input` (errors name the request field `field`, e.g. "filter").
    /// Empty input matches every CI.
    pub fn parse(_input: &str, _field: &'static str, _model: &Model) -> Result<Self, ApiError> {
        Err(ApiError::new(ErrorCode::Unimplemented, "CiFilter::parse"))
    }

    /// Whether the filter is empty (matches everything).
    pub fn is_empty(&self) -> bool {
        self.expr.is_none()
    }

    /// Whether `ci` matches, evaluated in memory.
    pub fn matches(&self, _model: &Model, _ci: &pb::Ci) -> bool {
        true
    }

    /// Appends the predicate over the `cis` table aliased `c` to `out`;
    /// `false` (nothing appended) for an empty filter.
    pub fn compile(&self, _model: &Model, _out: &mut SqlBuilder) -> Result<bool, ApiError> {
        Ok(false)
    }
}
