//! CIs through the API: create, get (cached), batch get, list, update, retire.
//!
//! Every change goes through [`crate::write`] with the source "manual";
//! after commit the CI's cached copy is forgotten ([`CmdbApi::forget_cis`],
//! which every other writer of CIs calls too).

use std::collections::HashMap;

use itsm_events::cache::get_or_load;
use itsm_platform::{ApiError, ErrorCode, Violations};
use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::idempotency::{self, Claim};
use itsm_store::query::parse_order_by;
use itsm_store::{StoreError, etag};
use prost::Message as _;
use sqlx::AnyConnection;

use super::call::Call;
use super::{CACHE_TTL, CmdbApi};
use crate::filter::CiFilter;
use crate::identify::{Identification, identify};
use crate::model::{Model, class_id};
use crate::store::cis;
use crate::write::{self, Origin, StoredCi};

const CREATE_METHOD: &str = "itsm.cmdb.v1.CmdbService/CreateCi";
/// Longest request_id accepted (a UUID is 36 characters).
const REQUEST_ID_MAX: usize = 128;
const DISPLAY_NAME_MAX: usize = 255;
const BATCH_MAX: usize = 1000;
/// How far up the location chain a time zone is looked for.
const LOCATION_HOPS: usize = 8;
/// The source of edits made through this API.
pub(crate) const MANUAL: &str = "manual";

/// The fields of a Ci a read_mask may name.
const CI_FIELDS: &[&str] = &[
    "name",
    "ci_class",
    "display_name",
    "description",
    "status",
    "owner",
    "support_group",
    "criticality",
    "location",
    "time_zone",
    "attributes",
    "min_members_up",
    "labels",
    "provenance",
    "sightings",
    "last_seen_time",
    "retire_reason",
    "retire_time",
    "created_by",
    "create_time",
    "updated_by",
    "update_time",
    "etag",
    "tenant",
];

/// The fields UpdateCi may change (besides `attributes.<key>`).
const UPDATABLE: &[&str] = &[
    "ci_class",
    "display_name",
    "description",
    "status",
    "owner",
    "support_group",
    "criticality",
    "location",
    "min_members_up",
    "labels",
    "attributes",
];

/// A checked read_mask: the paths to keep, or everything.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReadMask(Option<Vec<String>>);

impl ReadMask {
    /// Checks `mask`'s paths (fields of Ci, or `attributes.<key>`).
    pub(crate) fn parse(mask: Option<prost_types::FieldMask>) -> Result<Self, ApiError> {
        let paths: Vec<String> = mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            return Ok(Self(None));
        }
        let mut violations = Violations::new();
        for path in &paths {
            let known = CI_FIELDS.contains(&path.as_str())
                || path
                    .strip_prefix("attributes.")
                    .is_some_and(|k| !k.is_empty());
            violations.check(
                known,
                "read_mask",
                format!("\"{path}\" is not a field of Ci"),
            );
        }
        violations.into_result()?;
        Ok(Self(Some(paths)))
    }

    fn wants(&self, field: &str) -> bool {
        self.0
            .as_ref()
            .is_none_or(|paths| paths.iter().any(|p| p == field))
    }

    /// `ci` with only the masked fields.
    pub(crate) fn apply(&self, ci: pb::Ci) -> pb::Ci {
        let Some(paths) = &self.0 else {
            return ci;
        };
        let mut out = pb::Ci::default();
        for path in paths {
            match path.as_str() {
                "name" => out.name.clone_from(&ci.name),
                "ci_class" => out.ci_class.clone_from(&ci.ci_class),
                "display_name" => out.display_name.clone_from(&ci.display_name),
                "description" => out.description.clone_from(&ci.description),
                "status" => out.status = ci.status,
                "owner" => out.owner.clone_from(&ci.owner),
                "support_group" => out.support_group.clone_from(&ci.support_group),
                "criticality" => out.criticality = ci.criticality,
                "location" => out.location.clone_from(&ci.location),
                "time_zone" => out.time_zone.clone_from(&ci.time_zone),
                "attributes" => out.attributes.clone_from(&ci.attributes),
                "min_members_up" => out.min_members_up = ci.min_members_up,
                "labels" => out.labels.clone_from(&ci.labels),
                "provenance" => out.provenance.clone_from(&ci.provenance),
                "sightings" => out.sightings.clone_from(&ci.sightings),
                "last_seen_time" => out.last_seen_time = ci.last_seen_time,
                "retire_reason" => out.retire_reason.clone_from(&ci.retire_reason),
                "retire_time" => out.retire_time = ci.retire_time,
                "created_by" => out.created_by.clone_from(&ci.created_by),
                "create_time" => out.create_time = ci.create_time,
                "updated_by" => out.updated_by.clone_from(&ci.updated_by),
                "update_time" => out.update_time = ci.update_time,
                "etag" => out.etag.clone_from(&ci.etag),
                "tenant" => out.tenant.clone_from(&ci.tenant),
                other => {
                    if let Some(key) = other.strip_prefix("attributes.")
                        && let Some(value) = ci.attributes.get(key)
                    {
                        out.attributes.insert(key.to_owned(), value.clone());
                    }
                }
            }
        }
        out
    }
}

/// The `time_zone` attribute of a CI, when it has one.
fn own_time_zone(ci: &pb::Ci) -> Option<String> {
    ci.attributes
        .get("time_zone")
        .and_then(crate::model::value_text)
        .filter(|tz| !tz.is_empty())
}

/// The uid of a CI name, or INVALID_ARGUMENT naming `field`.
fn uid_of<'a>(name: &'a str, field: &str) -> Result<&'a str, ApiError> {
    crate::ci_uid(name).ok_or_else(|| {
        ApiError::invalid_field(
            field,
            format!("\"{name}\" is not a CI name; expected \"cis/<uuid>\""),
        )
    })
}

/// Checks what every CI must satisfy on its own (no database): class,
/// display name, status (not RETIRED), criticality, min_members_up, and the
/// attributes of `keys` (all when `None`) against the class, with required
/// ones present. Violations name `ci.<field>`.
fn check_ci(
    model: &Model,
    ci: &pb::Ci,
    keys: Option<&[String]>,
    check_required: bool,
    violations: &mut Violations,
) {
    model.check_ci_class(&ci.ci_class, "ci.ci_class", violations);
    if ci.display_name.trim().is_empty() {
        violations.add("ci.display_name", "is required");
    } else if ci.display_name.chars().count() > DISPLAY_NAME_MAX {
        violations.add(
            "ci.display_name",
            format!("must be at most {DISPLAY_NAME_MAX} characters"),
        );
    }
    match pb::CiStatus::try_from(ci.status) {
        Ok(pb::CiStatus::Retired) => violations.add(
            "ci.status",
            "RETIRED is set through RetireCi, with a reason",
        ),
        Ok(_) => {}
        Err(_) => violations.add("ci.status", format!("{} is not a CiStatus", ci.status)),
    }
    violations.check(
        pb::Criticality::try_from(ci.criticality).is_ok(),
        "ci.criticality",
        format!("{} is not a Criticality", ci.criticality),
    );
    violations.check(
        ci.min_members_up >= 0,
        "ci.min_members_up",
        "must not be negative",
    );
    let Some(class) = class_id(&ci.ci_class).filter(|id| model.class(id).is_some()) else {
        return;
    };
    let attributes = match keys {
        None => ci.attributes.clone(),
        Some(keys) => ci
            .attributes
            .iter()
            .filter(|(k, _)| keys.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    model.check_attributes(class, &attributes, "ci.attributes", violations);
    if check_required {
        let defaults: Vec<String> = model
            .effective_attributes(class)
            .into_iter()
            .filter(|a| a.default_value.as_ref().is_some_and(|v| v.value.is_some()))
            .map(|a| a.key)
            .collect();
        for key in model.missing_required(class, &ci.attributes) {
            if !defaults.contains(&key) {
                violations.add(
                    format!("ci.attributes.{key}"),
                    format!("is required for class \"{}\"", ci.ci_class),
                );
            }
        }
    }
}

/// The bytes a CreateCi request's idempotency hash is taken over: the
/// request without its request_id (maps are BTreeMaps, so the encoding is
/// the same for the same content).
fn canonical_request(request: &pb::CreateCiRequest) -> Vec<u8> {
    pb::CreateCiRequest {
        request_id: String::new(),
        ..request.clone()
    }
    .encode_to_vec()
}

/// ALREADY_EXISTS for a CI the identification rules found.
fn already_exists(found: Identification) -> Option<ApiError> {
    let message = match found {
        Identification::New => return None,
        Identification::Found { name, rule, .. } => format!(
            "{name} is already this CI (identification rule [{}]); update it instead",
            rule.join(", ")
        ),
        Identification::Ambiguous { candidates, .. } => format!(
            "the identification rules find existing CIs ({}); update one of them instead",
            candidates
                .iter()
                .map(|c| c.ci.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Some(ApiError::new(ErrorCode::AlreadyExists, message))
}

impl CmdbApi {
    /// Forgets the cached copies of these CIs (uids): after every committed
    /// CI write, whoever wrote it.
    pub(crate) async fn forget_cis(&self, uids: &[String]) {
        let keys: Vec<String> = uids
            .iter()
            .flat_map(|uid| write::stale_keys(&self.cache_prefix, uid))
            .collect();
        if keys.is_empty() {
            return;
        }
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.cache.delete(&keys).await;
    }

    /// The stored CI of `uid` (without `time_zone`), from the cache or the
    /// database; NOT_FOUND naming it.
    pub(crate) async fn cached_ci(&self, uid: &str) -> Result<pb::Ci, ApiError> {
        let key = format!("{}ci:{uid}", self.cache_prefix);
        let bytes = get_or_load(&*self.cache, &key, CACHE_TTL, || async {
            let mut conn = self.db.read().await?;
            // A failed statement drops the connection, which then gets sqlx's check.
            let found = cis::select_by_uid(&mut conn, uid, "").await?;
            conn.done();
            match found {
                Some(stored) => Ok::<_, ApiError>(stored.ci.encode_to_vec()),
                None => Err(ApiError::not_found(format!("cis/{uid}"))),
            }
        })
        .await?;
        match pb::Ci::decode(bytes.as_slice()) {
            Ok(ci) => Ok(ci),
            Err(_) => {
                // A value this version cannot read: drop it and read again.
                self.cache.delete(&[key.as_str()]).await;
                let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
                cis::select_by_uid(&mut conn, uid, "")
                    .await?
                    .map(|s| s.ci)
                    .ok_or_else(|| ApiError::not_found(format!("cis/{uid}")))
            }
        }
    }

    /// The time zone of `ci`: its own `time_zone` attribute, else the
    /// nearest location's up the chain (at most 8 hops); "" when none.
    /// `memo` keeps what this call resolved, by location uid.
    async fn time_zone(
        &self,
        ci: &pb::Ci,
        memo: &mut HashMap<String, String>,
    ) -> Result<String, ApiError> {
        if let Some(tz) = own_time_zone(ci) {
            return Ok(tz);
        }
        let mut seen: Vec<String> = Vec::new();
        let mut next = crate::ci_uid(&ci.location).map(str::to_owned);
        let mut zone = String::new();
        while let Some(uid) = next.take() {
            if let Some(tz) = memo.get(&uid) {
                zone.clone_from(tz);
                break;
            }
            if seen.len() >= LOCATION_HOPS || seen.contains(&uid) {
                break;
            }
            seen.push(uid.clone());
            let location = match self.cached_ci(&uid).await {
                Ok(location) => location,
                Err(e) if e.code() == ErrorCode::NotFound => break,
                Err(e) => return Err(e),
            };
            if let Some(tz) = own_time_zone(&location) {
                zone = tz;
                break;
            }
            next = crate::ci_uid(&location.location).map(str::to_owned);
        }
        for uid in seen {
            memo.insert(uid, zone.clone());
        }
        Ok(zone)
    }

    /// `ci` as a read returns it: its time zone (when the mask wants it), masked.
    async fn output(
        &self,
        mut ci: pb::Ci,
        mask: &ReadMask,
        memo: &mut HashMap<String, String>,
    ) -> Result<pb::Ci, ApiError> {
        if mask.wants("time_zone") {
            ci.time_zone = self.time_zone(&ci, memo).await?;
        }
        Ok(mask.apply(ci))
    }

    pub(super) async fn create_ci(
        &self,
        call: &Call,
        request: pb::CreateCiRequest,
    ) -> Result<pb::Ci, ApiError> {
        let model = self.model().await?;
        let Some(ci) = request.ci.clone() else {
            return Err(ApiError::invalid_field("ci", "is required"));
        };
        let mut violations = Violations::new();
        check_ci(&model, &ci, None, true, &mut violations);
        violations.check(
            request.request_id.chars().count() <= REQUEST_ID_MAX,
            "request_id",
            "must be at most 128 characters (a UUID is recommended)",
        );

        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        if !request.validate_only && !request.request_id.is_empty() && violations.is_empty() {
            let hash = idempotency::hash_request(&canonical_request(&request));
            let claim = idempotency::claim(&mut tx, CREATE_METHOD, &request.request_id, &hash);
            if let Claim::Replay { resource } = claim.await? {
                let stored = write::load(&mut tx, &resource, "").await?;
                tx.commit().await.map_err(StoreError::from)?;
                let stored = stored.ok_or_else(|| ApiError::not_found(&resource))?;
                return self
                    .output(stored.ci, &ReadMask::default(), &mut HashMap::new())
                    .await;
            }
        }
        write::check_references(&mut tx, &model, &ci, "ci", &mut violations).await?;
        violations.into_result()?;
        if let Some(error) = already_exists(identify(&mut tx, &model, &ci, None).await?) {
            return Err(error);
        }
        let origin = Origin {
            call,
            source: MANUAL,
            correlation_id: "",
            action: "create",
            now,
        };
        let stored = write::create_ci(&mut tx, &model, ci, &origin).await?;
        if request.validate_only {
            // Everything was checked and written in a transaction never committed.
            drop(tx);
            let mut ci = stored.ci;
            ci.name.clear();
            ci.etag.clear();
            return self
                .output(ci, &ReadMask::default(), &mut HashMap::new())
                .await;
        }
        if !request.request_id.is_empty() {
            idempotency::complete(&mut tx, CREATE_METHOD, &request.request_id, &stored.ci.name)
                .await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(ci = %stored.ci.name, class = %stored.ci.ci_class, "ci created");
        self.output(stored.ci, &ReadMask::default(), &mut HashMap::new())
            .await
    }

    /// The time zone of the CI `name` ("cis/<uuid>") as GetCi's `time_zone`
    /// gives it (its own, else its location chain's), for in-process callers
    /// (the SLA clocks of `itsm dev`). `None` when it has none, or no such CI.
    pub async fn ci_time_zone(&self, name: &str) -> Result<Option<String>, ApiError> {
        let Some(uid) = crate::ci_uid(name) else {
            return Ok(None);
        };
        let ci = match self.cached_ci(uid).await {
            Ok(ci) => ci,
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let zone = self.time_zone(&ci, &mut HashMap::new()).await?;
        Ok((!zone.is_empty()).then_some(zone))
    }

    pub(super) async fn get_ci(
        &self,
        _call: &Call,
        request: pb::GetCiRequest,
    ) -> Result<pb::Ci, ApiError> {
        let uid = uid_of(&request.name, "name")?;
        let mask = ReadMask::parse(request.read_mask)?;
        let ci = self.cached_ci(uid).await?;
        self.output(ci, &mask, &mut HashMap::new()).await
    }

    pub(super) async fn batch_get_cis(
        &self,
        _call: &Call,
        request: pb::BatchGetCisRequest,
    ) -> Result<pb::BatchGetCisResponse, ApiError> {
        let mut violations = Violations::new();
        violations.check(
            request.names.len() <= BATCH_MAX,
            "names",
            format!("at most {BATCH_MAX} names per call"),
        );
        let mut uids = Vec::with_capacity(request.names.len());
        for (i, name) in request.names.iter().enumerate() {
            match crate::ci_uid(name) {
                Some(uid) => uids.push(uid),
                None => violations.add(
                    format!("names[{i}]"),
                    format!("\"{name}\" is not a CI name; expected \"cis/<uuid>\""),
                ),
            }
        }
        let mask = ReadMask::parse(request.read_mask)?;
        violations.into_result()?;
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let found: HashMap<String, pb::Ci> = cis::select_by_uids(&mut conn, &uids)
            .await?
            .into_iter()
            .map(|s| (s.ci.name.clone(), s.ci))
            .collect();
        drop(conn);
        let mut memo = HashMap::new();
        let mut out = Vec::with_capacity(request.names.len());
        for name in &request.names {
            let ci = found
                .get(name)
                .cloned()
                .ok_or_else(|| ApiError::not_found(name))?;
            out.push(self.output(ci, &mask, &mut memo).await?);
        }
        Ok(pb::BatchGetCisResponse { cis: out })
    }

    pub(super) async fn list_cis(
        &self,
        _call: &Call,
        request: pb::ListCisRequest,
    ) -> Result<pb::ListCisResponse, ApiError> {
        let model = self.model().await?;
        let limit = itsm_store::page::page_size(request.page_size)?;
        let filter = CiFilter::parse(&request.filter, "filter", &model)?;
        let mut order = parse_order_by(&request.order_by, &cis::SORT)?;
        if order.is_empty() {
            order = parse_order_by("display_name", &cis::SORT)?;
        }
        let mask = ReadMask::parse(request.read_mask)?;
        let fingerprint = format!(
            "cis\u{0}{}\u{0}{}",
            filter.canonical(),
            order
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        let tokens = self.tokens().await?;
        let after = if request.page_token.is_empty() {
            None
        } else {
            let after = tokens.decode(&request.page_token, &fingerprint)?;
            if after.len() != order.len() + 1 {
                return Err(ApiError::invalid_field(
                    "page_token",
                    "does not match this list's order; start again without a page_token",
                ));
            }
            Some(after)
        };
        let mut predicate = itsm_store::SqlBuilder::default();
        let filtered = filter.compile(&model, &mut predicate)?;
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let mut rows = cis::select_page(
            &mut conn,
            filtered.then_some(&predicate),
            &order,
            after.as_deref(),
            limit,
        )
        .await?;
        drop(conn);
        let mut next_page_token = String::new();
        if rows.len() > limit {
            rows.truncate(limit);
            if let Some((_, key)) = rows.last() {
                next_page_token = tokens.encode(&fingerprint, key);
            }
        }
        let mut memo = HashMap::new();
        let mut out = Vec::with_capacity(rows.len());
        for (stored, _) in rows {
            out.push(self.output(stored.ci, &mask, &mut memo).await?);
        }
        Ok(pb::ListCisResponse {
            cis: out,
            next_page_token,
        })
    }

    pub(super) async fn update_ci(
        &self,
        call: &Call,
        request: pb::UpdateCiRequest,
    ) -> Result<pb::Ci, ApiError> {
        let model = self.model().await?;
        let sent = request.ci.unwrap_or_default();
        let paths: Vec<String> = request.update_mask.map(|m| m.paths).unwrap_or_default();
        let mut violations = Violations::new();
        if crate::ci_uid(&sent.name).is_none() {
            violations.add(
                "ci.name",
                format!(
                    "\"{}\" is not a CI name; expected \"cis/<uuid>\"",
                    sent.name
                ),
            );
        }
        if paths.is_empty() {
            violations.add("update_mask", "is required: name the fields to change");
        }
        for path in &paths {
            let known = UPDATABLE.contains(&path.as_str())
                || path
                    .strip_prefix("attributes.")
                    .is_some_and(|k| !k.is_empty());
            violations.check(
                known,
                "update_mask",
                format!(
                    "\"{path}\" cannot be updated; fields: {}, attributes.<key>",
                    UPDATABLE.join(", ")
                ),
            );
        }
        violations.check(
            !request.etag.is_empty(),
            "etag",
            "is required: the etag of the CI as last read",
        );
        violations.into_result()?;

        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        let lock = self.db.backend().lock_suffix();
        let before = write::load(&mut tx, &sent.name, lock)
            .await?
            .ok_or_else(|| ApiError::not_found(&sent.name))?;
        refuse_retired(&before)?;
        etag::check(&sent.name, &request.etag, before.version, true)?;

        let mut after = before.ci.clone();
        let mut touched: Vec<String> = Vec::new();
        for path in &paths {
            match path.as_str() {
                "ci_class" => after.ci_class.clone_from(&sent.ci_class),
                "display_name" => after.display_name.clone_from(&sent.display_name),
                "description" => after.description.clone_from(&sent.description),
                "status" => after.status = sent.status,
                "owner" => after.owner.clone_from(&sent.owner),
                "support_group" => after.support_group.clone_from(&sent.support_group),
                "criticality" => after.criticality = sent.criticality,
                "location" => after.location.clone_from(&sent.location),
                "min_members_up" => after.min_members_up = sent.min_members_up,
                "labels" => after.labels.clone_from(&sent.labels),
                "attributes" => {
                    touched.extend(after.attributes.keys().cloned());
                    touched.extend(sent.attributes.keys().cloned());
                    after.attributes.clone_from(&sent.attributes);
                }
                other => {
                    if let Some(key) = other.strip_prefix("attributes.") {
                        touched.push(key.to_owned());
                        match sent.attributes.get(key).filter(|v| v.value.is_some()) {
                            Some(value) => {
                                after.attributes.insert(key.to_owned(), value.clone());
                            }
                            None => {
                                after.attributes.remove(key);
                            }
                        }
                    }
                }
            }
        }
        after.attributes.retain(|_, v| v.value.is_some());
        let reclassify = after.ci_class != before.ci.ci_class;
        let mut violations = Violations::new();
        if paths.iter().any(|p| p == "status") && after.status == 0 {
            violations.add("ci.status", "must be PLANNED, INSTALLED or OPERATIONAL");
        }
        // A reclassified CI's attributes must all fit the new class; otherwise
        // only those this update sets (a class changed since is the health
        // report's business, not a reason to refuse an unrelated edit).
        let keys = (!reclassify).then_some(touched.as_slice());
        check_ci(&model, &after, keys, reclassify, &mut violations);
        if !reclassify && let Some(class) = class_id(&after.ci_class) {
            for key in model.missing_required(class, &after.attributes) {
                if touched.contains(&key) {
                    violations.add(
                        format!("ci.attributes.{key}"),
                        format!("is required for class \"{}\"", after.ci_class),
                    );
                }
            }
        }
        if paths.iter().any(|p| p == "location") && after.location == before.ci.name {
            violations.add("ci.location", "a CI cannot be its own location");
        }
        let probe = pb::Ci {
            ci_class: after.ci_class.clone(),
            location: if paths.iter().any(|p| p == "location") {
                after.location.clone()
            } else {
                String::new()
            },
            attributes: after
                .attributes
                .iter()
                .filter(|(k, _)| reclassify || touched.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            ..pb::Ci::default()
        };
        write::check_references(&mut tx, &model, &probe, "ci", &mut violations).await?;
        violations.into_result()?;

        let origin = Origin {
            call,
            source: MANUAL,
            correlation_id: "",
            action: if reclassify { "reclassify" } else { "update" },
            now,
        };
        let (stored, changes) = write::update_ci(&mut tx, &model, &before, after, &origin).await?;
        tx.commit().await.map_err(StoreError::from)?;
        if !changes.is_empty() {
            self.forget_cis(&[before_uid(&before)]).await;
            // Impact results show status, class, names, groups and criticality.
            self.impact_changed().await;
        }
        self.output(stored.ci, &ReadMask::default(), &mut HashMap::new())
            .await
    }

    pub(super) async fn retire_ci(
        &self,
        call: &Call,
        request: pb::RetireCiRequest,
    ) -> Result<pb::Ci, ApiError> {
        let model = self.model().await?;
        let mut violations = Violations::new();
        if crate::ci_uid(&request.name).is_none() {
            violations.add(
                "name",
                format!(
                    "\"{}\" is not a CI name; expected \"cis/<uuid>\"",
                    request.name
                ),
            );
        }
        violations.check(
            !request.reason.trim().is_empty(),
            "reason",
            "is required: why the CI is retired",
        );
        violations.check(
            request.reason.chars().count() <= 1000,
            "reason",
            "must be at most 1000 characters",
        );
        violations.into_result()?;
        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        let lock = self.db.backend().lock_suffix();
        let before = write::load(&mut tx, &request.name, lock)
            .await?
            .ok_or_else(|| ApiError::not_found(&request.name))?;
        refuse_retired(&before)?;
        etag::check(&request.name, &request.etag, before.version, false)?;
        let mut after = before.ci.clone();
        after.status = pb::CiStatus::Retired as i32;
        after.retire_reason = request.reason.trim().to_owned();
        after.retire_time = Some(itsm_store::audit::timestamp(now));
        let origin = Origin {
            call,
            source: MANUAL,
            correlation_id: "",
            action: "retire",
            now,
        };
        let (stored, _) = write::update_ci(&mut tx, &model, &before, after, &origin).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.forget_cis(&[before_uid(&before)]).await;
        // A retired CI is no longer walked through.
        self.impact_changed().await;
        tracing::info!(ci = %stored.ci.name, "ci retired");
        self.output(stored.ci, &ReadMask::default(), &mut HashMap::new())
            .await
    }
}

fn before_uid(stored: &StoredCi) -> String {
    crate::ci_uid(&stored.ci.name)
        .unwrap_or_default()
        .to_owned()
}

/// FAILED_PRECONDITION: a retired CI is read-only.
fn refuse_retired(stored: &StoredCi) -> Result<(), ApiError> {
    if stored.ci.status == pb::CiStatus::Retired as i32 {
        return Err(ApiError::failed_precondition(
            "RETIRED",
            &stored.ci.name,
            format!("{} is retired: a retired CI is read-only", stored.ci.name),
        ));
    }
    Ok(())
}

/// The stored CI named `name` in `conn`, or NOT_FOUND.
pub(crate) async fn load_or_not_found(
    conn: &mut AnyConnection,
    name: &str,
    lock: &str,
) -> Result<StoredCi, ApiError> {
    write::load(conn, name, lock)
        .await?
        .ok_or_else(|| ApiError::not_found(name))
}
