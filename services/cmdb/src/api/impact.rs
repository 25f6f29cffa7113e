//! `AnalyzeImpact`: check the request, answer from the impact cache or walk
//! the graph (see `crate::impact`), filter, order and bound the result.
//!
//! Results are cached under `{prefix}impact:v2:{generation}:{sha256 of the
//! request with its defaults applied}`. The generation is a random token
//! kept in the cache itself; every change that can change a result deletes
//! it after commit ([`CmdbApi::impact_changed`]), so the next reader starts a
//! new generation and old entries are never read again (they expire).

use itsm_platform::{ApiError, ErrorCode, Violations};
use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::StoreError;
use prost::Message as _;
use sha2::{Digest as _, Sha256};

use super::call::Call;
use super::{CACHE_TTL, CmdbApi};
use crate::filter::CiFilter;
use crate::impact::{self, Walk};
use crate::model::{self, Model};
use crate::store::relationships as store;

/// Hops walked when the request and the settings name no depth.
pub const DEFAULT_DEPTH: i32 = 10;
pub const MAX_DEPTH: i32 = 50;
pub const DEFAULT_RESULTS: i32 = 1_000;
pub const MAX_RESULTS: i32 = 10_000;
/// How many CIs one analysis may start from.
pub const MAX_STARTS: usize = 1_000;
/// How long a generation token lives when nothing changes.
const GENERATION_TTL: std::time::Duration = std::time::Duration::from_secs(3_600);

impl CmdbApi {
    /// Makes every cached impact result stale: call after the commit of any
    /// change that can change one (a relationship created or deleted, a CI's
    /// status, class or min_members_up, a relationship type).
    pub(crate) async fn impact_changed(&self) {
        let keys = impact::impact_stale_keys(&self.cache_prefix);
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.cache.delete(&keys).await;
    }

    /// The current impact generation token, a new one when there is none.
    async fn impact_generation(&self) -> String {
        let key = impact::generation_key(&self.cache_prefix);
        if let Some(bytes) = self.cache.get(&key).await
            && let Ok(token) = String::from_utf8(bytes)
            && !token.is_empty()
        {
            return token;
        }
        let token = uuid::Uuid::new_v4().simple().to_string();
        self.cache.set(&key, token.as_bytes(), GENERATION_TTL).await;
        token
    }

    pub(super) async fn analyze_impact(
        &self,
        _call: &Call,
        mut request: pb::AnalyzeImpactRequest,
    ) -> Result<pb::ImpactAnalysis, ApiError> {
        let model = self.model().await?;
        let filter = check(&model, &request)?;
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        if request.max_depth == 0 {
            let settings = crate::store::settings::load(&mut conn).await?;
            request.max_depth = if settings.default_impact_depth > 0 {
                settings.default_impact_depth.min(MAX_DEPTH)
            } else {
                DEFAULT_DEPTH
            };
        }
        if request.max_results == 0 {
            request.max_results = DEFAULT_RESULTS;
        }

        let generation = self.impact_generation().await;
        let digest = Sha256::digest(request.encode_to_vec());
        let hash: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        // v2: paths only for services, `via` for every CI.
        let key = format!("{}impact:v2:{generation}:{hash}", self.cache_prefix);
        if let Some(bytes) = self.cache.get(&key).await
            && let Ok(cached) = pb::ImpactAnalysis::decode(bytes.as_slice())
        {
            return Ok(cached);
        }

        let uids: Vec<&str> = request
            .cis
            .iter()
            .filter_map(|n| crate::ci_uid(n))
            .collect();
        let starts = store::ci_rows_by_uid(&mut conn, &uids).await?;
        if let Some(missing) = request.cis.iter().find(|n| {
            !starts
                .iter()
                .any(|s| Some(s.uid.as_str()) == crate::ci_uid(n))
        }) {
            return Err(ApiError::not_found(missing));
        }
        let walk = Walk {
            direction: request.direction(),
            max_depth: usize::try_from(request.max_depth).unwrap_or_default(),
            types: &request
                .relationship_types
                .iter()
                .filter_map(|t| model::relationship_type_id(t).map(str::to_owned))
                .collect::<Vec<_>>(),
        };
        let outcome = impact::walk(&mut conn, &model, starts, &walk).await?;

        let mut reached: Vec<&impact::Reached> = outcome.reached().collect();
        reached.sort_by(|a, b| {
            a.depth
                .cmp(&b.depth)
                .then_with(|| a.ci.display_name.cmp(&b.ci.display_name))
                .then_with(|| a.ci.uid.cmp(&b.ci.uid))
        });
        let impacted_services = reached
            .iter()
            .filter(|r| r.level != pb::ImpactLevel::Degraded)
            .filter(|r| model.is_a(&r.ci.ci_class, model::BUSINESS_SERVICE))
            .map(|r| format!("cis/{}", r.ci.uid))
            .collect();
        let limit = usize::try_from(request.max_results).unwrap_or_default();
        let mut matched: Vec<&impact::Reached> = Vec::new();
        let mut truncated = false;
        if filter.is_empty() {
            truncated = reached.len() > limit;
            matched.extend(reached.iter().take(limit));
        } else {
            // The filter may name any field: read the documents of the reached CIs, a page at a time.
            for page in reached.chunks(store::MAX_IN_LIST) {
                let ids: Vec<i64> = page.iter().map(|r| r.ci.id).collect();
                let docs = store::ci_docs(&mut conn, &ids).await?;
                for r in page {
                    if docs
                        .get(&r.ci.id)
                        .is_some_and(|ci| filter.matches(&model, ci))
                    {
                        if matched.len() == limit {
                            truncated = true;
                            break;
                        }
                        matched.push(r);
                    }
                }
                if truncated {
                    break;
                }
            }
        }
        let analysis = pb::ImpactAnalysis {
            impacted_cis: matched
                .iter()
                .map(|r| {
                    let service = model.is_a(&r.ci.ci_class, model::BUSINESS_SERVICE);
                    outcome.impacted_ci(&model, r, service)
                })
                .collect(),
            impacted_services,
            truncated,
            depth_limited: outcome.depth_limited,
            compute_time: Some(itsm_store::audit::timestamp(itsm_store::now_micros())),
        };
        self.cache
            .set(&key, &analysis.encode_to_vec(), CACHE_TTL)
            .await;
        Ok(analysis)
    }
}

/// Checks the request; returns its parsed result filter.
fn check(model: &Model, request: &pb::AnalyzeImpactRequest) -> Result<CiFilter, ApiError> {
    let mut violations = Violations::new();
    if request.cis.is_empty() {
        violations.add("cis", "name at least one CI (\"cis/<uuid>\")");
    }
    if request.cis.len() > MAX_STARTS {
        violations.add(
            "cis",
            format!("{} CIs; the limit is {MAX_STARTS}", request.cis.len()),
        );
    }
    for (i, name) in request.cis.iter().enumerate() {
        if crate::ci_uid(name).is_none() {
            violations.add(
                format!("cis[{i}]"),
                format!("\"{name}\" is not a CI name; expected \"cis/<uuid>\""),
            );
        }
    }
    match pb::ImpactDirection::try_from(request.direction) {
        Ok(pb::ImpactDirection::Downstream | pb::ImpactDirection::Upstream) => {}
        _ => violations.add(
            "direction",
            "required: IMPACT_DIRECTION_DOWNSTREAM or IMPACT_DIRECTION_UPSTREAM",
        ),
    }
    if !(0..=MAX_DEPTH).contains(&request.max_depth) {
        violations.add(
            "max_depth",
            format!("must be between 1 and {MAX_DEPTH} (0 for the default)"),
        );
    }
    if !(0..=MAX_RESULTS).contains(&request.max_results) {
        violations.add(
            "max_results",
            format!("must be between 1 and {MAX_RESULTS} (0 for the default)"),
        );
    }
    for (i, name) in request.relationship_types.iter().enumerate() {
        if model::relationship_type_id(name)
            .and_then(|id| model.relationship_type(id))
            .is_none()
        {
            violations.add(
                format!("relationship_types[{i}]"),
                format!("\"{name}\" is not a relationship type"),
            );
        }
    }
    let filter = if request.result_filter.trim().is_empty() {
        CiFilter::default()
    } else {
        match CiFilter::parse(&request.result_filter, "result_filter", model) {
            Ok(filter) => filter,
            Err(e) if e.code() == ErrorCode::InvalidArgument => {
                for v in e.field_violations() {
                    violations.add(v.field.clone(), v.description.clone());
                }
                CiFilter::default()
            }
            Err(e) => return Err(e),
        }
    };
    violations.into_result()?;
    Ok(filter)
}
