//! `ReportCis` and parked matches: the discovery intake.
//!
//! A batch is checked as a whole first (source known, enabled and allowed
//! for the caller, sizes); then each item on its own, in its own
//! transaction, several at a time (results keep the request's order):
//! checked (a bad item is REJECTED, the others go on), identified (the
//! (source, correlation id) mapping, then the class's rules), and created,
//! reconciled field by field by source precedence ([`crate::reconcile`]) or
//! parked when identification is ambiguous. Relationships follow, each in
//! its own transaction, their endpoints being batch items (by correlation
//! id) or existing CIs.
//!
//! No duplicates under concurrency: an item that identification did not
//! find takes transaction-scoped locks on its identity (its correlation id
//! and the values of the first applicable identification rule; PostgreSQL
//! advisory locks, SQLite's write lock being one already) and is identified
//! again under them before it creates: two items of one batch, or two
//! batches, reporting one CI end as one CI. A CI found is locked before it
//! is reconciled.
//!
//! `validate_only` runs the same code in one transaction that is rolled
//! back: the outcomes are those a real run would have had, nothing is kept.
//! A `request_id` stores the whole response with the key; a retry returns it.

use std::collections::{BTreeMap, HashMap};

use futures_util::StreamExt as _;
use itsm_platform::{ApiError, ErrorCode, Violations};
use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::audit::timestamp;
use itsm_store::change::Change;
use itsm_store::idempotency::{self, Claim};
use itsm_store::list::ListRequest;
use itsm_store::{Backend, StoreError, Tx, etag};
use prost::Message as _;
use sqlx::AnyConnection;

use super::CmdbApi;
use super::call::{self, Call};
use super::discovery::source_id_of;
use crate::identify::batch::{self, Predicted};
use crate::identify::{self, Identification};
use crate::model::{self, Model};
use crate::reconcile::{self, CLEARABLE_FIELDS, Context, Rule};
use crate::store::cis;
use crate::store::discovery as sources;
use crate::store::parked;
use crate::write::{self, Origin, StoredCi};

const REPORT_METHOD: &str = "ReportCis";
/// Most items in one report.
const MAX_ITEMS: usize = 1_000;
/// Most relationships in one report.
const MAX_RELATIONSHIPS: usize = 5_000;
/// Chunks of items reconciled at a time (each chunk in its own transaction).
const CONCURRENCY: usize = 8;
/// Items per transaction.
const CHUNK: usize = 16;
/// Longest correlation id.
const CORRELATION_MAX: usize = 255;
/// Longest display name.
const DISPLAY_NAME_MAX: usize = 255;

const PARKED_CREATED: &str = "cmdb.parked_match.created";
const PARKED_RESOLVED: &str = "cmdb.parked_match.resolved";
const PARKED_DISCARDED: &str = "cmdb.parked_match.discarded";

/// The precedence rules and the sources' staleness windows.
#[derive(Debug, Default)]
struct Precedence {
    rules: Vec<Rule>,
    stale_after: HashMap<String, i64>,
}

async fn load_precedence(conn: &mut AnyConnection) -> Result<Precedence, ApiError> {
    let rules = sources::select_all_rules(&mut *conn)
        .await?
        .iter()
        .filter_map(Rule::of)
        .collect();
    let stale_after = sources::select_all_sources(&mut *conn)
        .await?
        .iter()
        .map(|s| {
            let window = s
                .stale_after
                .as_ref()
                .map(reconcile::duration_micros)
                .unwrap_or(0);
            (reconcile::source_id(&s.name).to_owned(), window)
        })
        .collect();
    Ok(Precedence { rules, stale_after })
}

/// One report being processed.
struct Batch<'a> {
    call: &'a Call,
    model: &'a Model,
    backend: Backend,
    source: &'a pb::DiscoverySource,
    source_id: &'a str,
    precedence: &'a Precedence,
    now: i64,
}

/// What became of one item.
#[derive(Debug, Default)]
struct Done {
    result: pb::ReportCiResult,
    /// The CI it is (created, updated or unchanged), for relationships and
    /// the cache.
    ci: Option<StoredCi>,
}

/// How a found CI took a report.
struct Applied {
    stored: StoredCi,
    applied: Vec<String>,
    overruled: Vec<String>,
    changed: bool,
}

fn parked_uid_of<'a>(name: &'a str, field: &str) -> Result<&'a str, ApiError> {
    name.strip_prefix("parkedMatches/")
        .filter(|uid| uuid::Uuid::try_parse(uid).is_ok())
        .ok_or_else(|| {
            ApiError::invalid_field(
                field,
                format!("\"{name}\" is not a parked match name; expected \"parkedMatches/<uuid>\""),
            )
        })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Whether `subject` is one of `allowed` (entries may be bare subjects or
/// names ending in "/<subject>").
fn principal_allowed(allowed: &[String], subject: &str) -> bool {
    allowed
        .iter()
        .any(|a| a == subject || a.rsplit('/').next() == Some(subject))
}

/// Checks what needs no database: the item's shape, class, values and
/// cleared fields. Violations name `items[i].…`.
fn check_item(
    model: &Model,
    source: &pb::DiscoverySource,
    prefix: &str,
    item: &pb::ReportedCi,
    v: &mut Violations,
) {
    let count = item.correlation_id.chars().count();
    if item.correlation_id.trim().is_empty() {
        v.add(
            format!("{prefix}.correlation_id"),
            "is required: the source's own stable key for the CI",
        );
    } else if count > CORRELATION_MAX {
        v.add(
            format!("{prefix}.correlation_id"),
            format!("must be at most {CORRELATION_MAX} characters"),
        );
    }
    let Some(ci) = item.ci.as_ref() else {
        v.add(format!("{prefix}.ci"), "is required");
        return;
    };
    let class_field = format!("{prefix}.ci.ci_class");
    if ci.ci_class.is_empty() {
        v.add(class_field, "is required, e.g. \"classes/linux_server\"");
        return;
    }
    model.check_ci_class(&ci.ci_class, &class_field, v);
    let Some(class) = model::class_id(&ci.ci_class).filter(|id| model.class(id).is_some()) else {
        return;
    };
    if !source.allowed_classes.is_empty()
        && !source
            .allowed_classes
            .iter()
            .filter_map(|c| model::class_id(c))
            .any(|allowed| model.is_a(class, allowed))
    {
        v.add(
            class_field,
            format!(
                "{} may not report CIs of \"{}\"; it may report {}",
                source.name,
                ci.ci_class,
                source.allowed_classes.join(", ")
            ),
        );
    }
    v.check(
        ci.display_name.chars().count() <= DISPLAY_NAME_MAX,
        format!("{prefix}.ci.display_name"),
        format!("must be at most {DISPLAY_NAME_MAX} characters"),
    );
    match pb::CiStatus::try_from(ci.status) {
        Ok(pb::CiStatus::Retired) => v.add(
            format!("{prefix}.ci.status"),
            "a report cannot retire a CI (RetireCi does)",
        ),
        Ok(_) => {}
        Err(_) => v.add(
            format!("{prefix}.ci.status"),
            format!("{} is not a CiStatus", ci.status),
        ),
    }
    v.check(
        pb::Criticality::try_from(ci.criticality).is_ok(),
        format!("{prefix}.ci.criticality"),
        format!("{} is not a Criticality", ci.criticality),
    );
    v.check(
        ci.min_members_up >= 0,
        format!("{prefix}.ci.min_members_up"),
        "must not be negative",
    );
    model.check_attributes(class, &ci.attributes, &format!("{prefix}.ci.attributes"), v);
    let reported = reconcile::reported_fields(ci, &[]);
    for (j, field) in item.cleared_fields.iter().enumerate() {
        let known = CLEARABLE_FIELDS.contains(&field.as_str())
            || field
                .strip_prefix("attributes.")
                .is_some_and(|key| model.attribute(class, key).is_some());
        let path = format!("{prefix}.cleared_fields[{j}]");
        if !known {
            v.add(
                path,
                format!(
                    "\"{field}\" cannot be cleared: one of {} or \"attributes.<key>\" of the class",
                    CLEARABLE_FIELDS.join(", ")
                ),
            );
        } else if reported.contains(field) {
            v.add(path, format!("\"{field}\" is both reported and cleared"));
        }
    }
}

/// A REJECTED result from violations (an INVALID_ARGUMENT error).
fn rejected(mut result: pb::ReportCiResult, error: &ApiError) -> Done {
    result.outcome = pb::ReportOutcome::Rejected as i32;
    result.error = error.message().to_owned();
    result.violations = error
        .field_violations()
        .iter()
        .map(|f| pb::FieldViolation {
            field: f.field.clone(),
            description: f.description.clone(),
        })
        .collect();
    Done { result, ci: None }
}

/// A reported CI as a new CI: output-only fields dropped, cleared fields ignored.
fn new_ci(reported: &pb::Ci) -> pb::Ci {
    pb::Ci {
        name: String::new(),
        provenance: BTreeMap::new(),
        sightings: Vec::new(),
        last_seen_time: None,
        retire_reason: String::new(),
        retire_time: None,
        created_by: None,
        create_time: None,
        updated_by: None,
        update_time: None,
        etag: String::new(),
        tenant: String::new(),
        time_zone: String::new(),
        ..reported.clone()
    }
}

/// Applies `reported` (with `cleared`) to `stored` by precedence, records
/// the sighting, and writes: a new version when a field changed, the
/// message only otherwise. `stored` is locked by the caller.
async fn apply_to(
    conn: &mut AnyConnection,
    model: &Model,
    precedence: &Precedence,
    stored: StoredCi,
    reported: &pb::Ci,
    cleared: &[String],
    origin: &Origin<'_>,
) -> Result<Applied, ApiError> {
    let class = model::class_id(&stored.ci.ci_class)
        .unwrap_or_default()
        .to_owned();
    // Attributes the CI's own class does not have (a report of a subclass)
    // are not reconciled.
    let fields: Vec<String> = reconcile::reported_fields(reported, cleared)
        .into_iter()
        .filter(|f| {
            f.strip_prefix("attributes.")
                .is_none_or(|key| model.attribute(&class, key).is_some())
        })
        .collect();
    let mut classes = model.ancestors(&class);
    classes.push(&class);
    classes.reverse();
    let context = Context {
        source: origin.source,
        classes,
        rules: &precedence.rules,
        source_stale_after: &precedence.stale_after,
        now: origin.now,
    };
    let outcome = reconcile::reconcile(&stored.ci, reported, &fields, &context);
    let mut next = StoredCi {
        id: stored.id,
        version: stored.version,
        ci: outcome.after,
    };
    write::sight(&mut *conn, &mut next, origin).await?;
    if outcome.applied.is_empty() {
        write::save_unversioned(&mut *conn, &next, origin.now).await?;
        return Ok(Applied {
            stored: next,
            applied: Vec::new(),
            overruled: outcome.overruled,
            changed: false,
        });
    }
    let (written, _) = write::update_ci(&mut *conn, model, &stored, next.ci, origin).await?;
    Ok(Applied {
        stored: written,
        applied: outcome.applied,
        overruled: outcome.overruled,
        changed: true,
    })
}

/// Takes the transaction-scoped identity locks of `ci` (PostgreSQL; SQLite's
/// write transaction is one lock already).
async fn lock_identity(
    conn: &mut AnyConnection,
    backend: Backend,
    model: &Model,
    ci: &pb::Ci,
    correlation: Option<(&str, &str)>,
) -> Result<(), ApiError> {
    if backend != Backend::Postgres {
        return Ok(());
    }
    for key in identify::identity_locks(model, ci, correlation) {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(key)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from)?;
    }
    Ok(())
}

fn parked_payload(parked: &pb::ParkedMatch) -> prost_types::Any {
    prost_types::Any {
        type_url: "type.googleapis.com/itsm.cmdb.v1.ParkedMatchEvent".to_owned(),
        value: pb::ParkedMatchEvent {
            parked_match: Some(parked.clone()),
        }
        .encode_to_vec(),
    }
}

/// Parks `item`: a new OPEN match (and its event), or the open one of the
/// same (source, correlation id) updated with this report. Returns its name.
async fn park(
    tx: &mut Tx,
    batch: &Batch<'_>,
    item: &pb::ReportedCi,
    reason: pb::ParkReason,
    candidates: Vec<pb::ParkedCandidate>,
) -> Result<String, ApiError> {
    let now = Some(timestamp(batch.now));
    let lock = batch.backend.lock_suffix();
    let open =
        parked::select_open(&mut *tx, &batch.source.name, &item.correlation_id, lock).await?;
    if let Some(mut found) = open {
        let m = &mut found.parked;
        m.reported = Some(item.clone());
        m.reason = reason as i32;
        m.candidates = candidates;
        m.occurrence_count = m.occurrence_count.saturating_add(1);
        m.last_report_time = now;
        let version = found.version + 1;
        m.etag = etag::from_version(version);
        if !parked::update(&mut *tx, found.id, m, version, found.version).await? {
            return Err(ApiError::stale_etag(&m.name));
        }
        return Ok(m.name.clone());
    }
    let uid = uuid::Uuid::new_v4().to_string();
    let name = format!("parkedMatches/{uid}");
    let m = pb::ParkedMatch {
        name: name.clone(),
        discovery_source: batch.source.name.clone(),
        reported: Some(item.clone()),
        reason: reason as i32,
        candidates,
        state: pb::ParkedMatchState::Open as i32,
        occurrence_count: 1,
        first_report_time: now,
        last_report_time: now,
        etag: etag::from_version(1),
        ..pb::ParkedMatch::default()
    };
    parked::insert(&mut *tx, &uid, &m).await?;
    let change = Change {
        resource: &name,
        version: 1,
        action: "park",
        event_type: PARKED_CREATED,
        changes: Vec::new(),
        payload: parked_payload(&m),
    };
    call::record(tx, batch.call, change, batch.now).await?;
    Ok(name)
}

/// The CI `predicted` names, locked, when it still is what identification
/// would find for `ci`: not retired, of a related class, and matching the
/// predicting rule. `None` sends the item through `identify`.
async fn confirm(
    conn: &mut AnyConnection,
    model: &Model,
    ci: &pb::Ci,
    predicted: &Predicted,
    lock: &str,
) -> Result<Option<StoredCi>, ApiError> {
    let Some(stored) = cis::select_by_id(conn, predicted.ci_id, lock).await? else {
        return Ok(None);
    };
    let class = model::class_id(&ci.ci_class).unwrap_or_default();
    let found = model::class_id(&stored.ci.ci_class).unwrap_or_default();
    let related = found == class || model.is_a(found, class) || model.is_a(class, found);
    let confirmed = related
        && stored.ci.status != pb::CiStatus::Retired as i32
        && batch::still_matches(&predicted.rule, &stored.ci, ci);
    Ok(confirmed.then_some(stored))
}

/// Identifies, then creates, reconciles or parks one checked item, in `tx`.
/// `predicted`: what the batched identification found for it, confirmed
/// here under the CI's row lock instead of identifying the item again.
async fn process_item(
    tx: &mut Tx,
    batch: &Batch<'_>,
    index: usize,
    item: &pb::ReportedCi,
    predicted: Option<&Predicted>,
) -> Result<Done, ApiError> {
    let prefix = format!("items[{index}]");
    let mut result = pb::ReportCiResult {
        correlation_id: item.correlation_id.clone(),
        ..pb::ReportCiResult::default()
    };
    let mut v = Violations::new();
    check_item(batch.model, batch.source, &prefix, item, &mut v);
    let Some(ci) = item.ci.as_ref().filter(|_| v.is_empty()) else {
        return Ok(match v.into_result() {
            Err(e) => rejected(result, &e),
            Ok(()) => rejected(
                result,
                &ApiError::invalid_field(format!("{prefix}.ci"), "is required"),
            ),
        });
    };
    write::check_references(&mut *tx, batch.model, ci, &format!("{prefix}.ci"), &mut v).await?;
    if let Err(e) = v.into_result() {
        return Ok(rejected(result, &e));
    }
    let correlation = Some((batch.source_id, item.correlation_id.as_str()));
    let lock = batch.backend.lock_suffix();
    // The fast path: the source's own key names a CI of a related class
    // that is not retired (anything else is identify's to judge).
    let mut known = None;
    if let Some(stored) =
        sources::select_by_correlation(&mut *tx, batch.source_id, &item.correlation_id, lock)
            .await?
    {
        let class = model::class_id(&ci.ci_class).unwrap_or_default();
        let found = model::class_id(&stored.ci.ci_class).unwrap_or_default();
        let related = batch.model.is_a(found, class) || batch.model.is_a(class, found);
        if related && stored.ci.status != pb::CiStatus::Retired as i32 {
            known = Some(stored);
        }
    }
    let mut identification = known.as_ref().map(|stored| Identification::Found {
        ci_id: stored.id,
        name: stored.ci.name.clone(),
        rule: Vec::new(),
    });
    if identification.is_none()
        && let Some(predicted) = predicted
        && let Some(stored) = confirm(&mut *tx, batch.model, ci, predicted, lock).await?
    {
        identification = Some(Identification::Found {
            ci_id: stored.id,
            name: stored.ci.name.clone(),
            rule: predicted.rule.attributes.clone(),
        });
        known = Some(stored);
    }
    let identification = match identification {
        Some(found) => found,
        None => {
            lock_identity(&mut *tx, batch.backend, batch.model, ci, correlation).await?;
            identify::identify(&mut *tx, batch.model, ci, correlation).await?
        }
    };
    let mut known_ci = known;
    let origin = |action| Origin {
        call: batch.call,
        source: batch.source_id,
        correlation_id: &item.correlation_id,
        action,
        now: batch.now,
    };
    match identification {
        Identification::New => {
            if ci.display_name.trim().is_empty() {
                let e = ApiError::invalid_field(
                    format!("{prefix}.ci.display_name"),
                    "is required to create a CI (no existing CI was identified)",
                );
                return Ok(rejected(result, &e));
            }
            let created =
                write::create_ci(&mut *tx, batch.model, new_ci(ci), &origin("create")).await?;
            result.outcome = pb::ReportOutcome::Created as i32;
            result.ci.clone_from(&created.ci.name);
            result.applied_fields = reconcile::reported_fields(ci, &[]);
            Ok(Done {
                result,
                ci: Some(created),
            })
        }
        Identification::Found { name, rule, .. } => {
            let stored = match known_ci.take() {
                Some(stored) => stored,
                None => write::load(&mut *tx, &name, lock)
                    .await?
                    .ok_or_else(|| ApiError::not_found(&name))?,
            };
            let applied = apply_to(
                &mut *tx,
                batch.model,
                batch.precedence,
                stored,
                ci,
                &item.cleared_fields,
                &origin("reconcile"),
            )
            .await?;
            result.outcome = if applied.changed {
                pb::ReportOutcome::Updated
            } else {
                pb::ReportOutcome::Unchanged
            } as i32;
            result.ci.clone_from(&applied.stored.ci.name);
            result.matched_rule = rule;
            result.applied_fields = applied.applied;
            result.overruled_fields = applied.overruled;
            Ok(Done {
                result,
                ci: Some(applied.stored),
            })
        }
        Identification::Ambiguous { reason, candidates } => {
            result.outcome = pb::ReportOutcome::Parked as i32;
            result.parked_match = park(tx, batch, item, reason, candidates).await?;
            Ok(Done { result, ci: None })
        }
    }
}

/// Whether an item that failed is worth one more try (a conflict with a
/// concurrent writer), not a refusal.
fn retryable(error: &ApiError) -> bool {
    !matches!(
        error.code(),
        ErrorCode::InvalidArgument
            | ErrorCode::NotFound
            | ErrorCode::FailedPrecondition
            | ErrorCode::PermissionDenied
    )
}

/// Where a relationship endpoint of a report points.
enum Endpoint {
    /// A CI by name.
    Ci(String),
    /// An item that was parked or rejected.
    Skipped,
}

fn endpoint(
    reported: Option<&pb::ReportedEndpoint>,
    items: &HashMap<&str, Option<String>>,
) -> Result<Endpoint, String> {
    use pb::reported_endpoint::Endpoint as E;
    match reported.and_then(|e| e.endpoint.as_ref()) {
        None => Err("is required: a correlation_id of the batch or a CI".to_owned()),
        Some(E::Ci(name)) => Ok(Endpoint::Ci(name.clone())),
        Some(E::CorrelationId(id)) => match items.get(id.as_str()) {
            None => Err(format!(
                "no item of this report has correlation_id \"{id}\""
            )),
            Some(None) => Ok(Endpoint::Skipped),
            Some(Some(name)) => Ok(Endpoint::Ci(name.clone())),
        },
    }
}

/// Stores one reported relationship in `conn`.
async fn relate_one(
    conn: &mut AnyConnection,
    batch: &Batch<'_>,
    index: usize,
    reported: &pb::ReportedRelationship,
    items: &HashMap<&str, Option<String>>,
) -> Result<pb::ReportRelationshipResult, ApiError> {
    let field = format!("relationships[{index}]");
    let mut out = pb::ReportRelationshipResult::default();
    let reject = |mut out: pb::ReportRelationshipResult, error: String| {
        out.outcome = pb::RelationshipOutcome::Rejected as i32;
        out.error = error;
        Ok(out)
    };
    let Some(type_id) = model::relationship_type_id(&reported.r#type)
        .filter(|t| batch.model.relationship_type(t).is_some())
    else {
        return reject(
            out,
            format!(
                "{field}.type: \"{}\" is not a relationship type",
                reported.r#type
            ),
        );
    };
    let ends = [
        ("source_endpoint", reported.source_endpoint.as_ref()),
        ("target_endpoint", reported.target_endpoint.as_ref()),
    ];
    let mut names = Vec::new();
    for (end, sent) in ends {
        match endpoint(sent, items) {
            Err(e) => return reject(out, format!("{field}.{end}: {e}")),
            Ok(Endpoint::Skipped) => {
                out.outcome = pb::RelationshipOutcome::Skipped as i32;
                out.error = format!("{field}.{end}: the item was parked or rejected");
                return Ok(out);
            }
            Ok(Endpoint::Ci(name)) => names.push((end, name)),
        }
    }
    let mut stored = Vec::new();
    for (end, name) in &names {
        match write::load(&mut *conn, name, "").await? {
            Some(ci) => stored.push(ci),
            None => {
                return reject(
                    out,
                    format!("{field}.{end}: \"{name}\" is not an existing CI"),
                );
            }
        }
    }
    let (Some(source), Some(target)) = (stored.first(), stored.get(1)) else {
        return reject(out, format!("{field}: both endpoints are required"));
    };
    let origin = Origin {
        call: batch.call,
        source: batch.source_id,
        correlation_id: "",
        action: "relate",
        now: batch.now,
    };
    match crate::relate::relate(
        &mut *conn,
        batch.model,
        source,
        type_id,
        target,
        "",
        &field,
        &origin,
    )
    .await
    {
        Ok((relationship, created)) => {
            out.outcome = if created {
                pb::RelationshipOutcome::Created
            } else {
                pb::RelationshipOutcome::Unchanged
            } as i32;
            out.relationship = relationship.name;
            Ok(out)
        }
        Err(e) if !matches!(e.code(), ErrorCode::Internal | ErrorCode::Unavailable) => {
            reject(out, e.message().to_owned())
        }
        Err(e) => Err(e),
    }
}

fn count(results: &[pb::ReportCiResult], outcome: pb::ReportOutcome) -> i32 {
    let n = results
        .iter()
        .filter(|r| r.outcome == outcome as i32)
        .count();
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl CmdbApi {
    /// The request hash of a report (the request id left out).
    fn report_hash(request: &pb::ReportCisRequest) -> String {
        let mut unkeyed = request.clone();
        unkeyed.request_id.clear();
        idempotency::hash_request(&unkeyed.encode_to_vec())
    }

    /// The response first given to this report's request id, if any.
    async fn replayed_report(
        &self,
        request: &pb::ReportCisRequest,
    ) -> Result<Option<pb::ReportCisResponse>, ApiError> {
        let mut tx = self.db.begin().await?;
        let hash = Self::report_hash(request);
        let claim = idempotency::claim(&mut tx, REPORT_METHOD, &request.request_id, &hash).await?;
        // A new claim is rolled back: the key is stored with the response.
        drop(tx);
        match claim {
            Claim::New => Ok(None),
            Claim::Replay { resource } => {
                let bytes = unhex(&resource).ok_or_else(|| {
                    ApiError::internal("a stored ReportCis response does not decode")
                })?;
                let response =
                    pb::ReportCisResponse::decode(bytes.as_slice()).map_err(ApiError::internal)?;
                Ok(Some(response))
            }
        }
    }

    pub(super) async fn report_cis(
        &self,
        call: &Call,
        request: pb::ReportCisRequest,
    ) -> Result<pb::ReportCisResponse, ApiError> {
        let source_id = source_id_of(&request.discovery_source, "discovery_source")?.to_owned();
        let mut v = Violations::new();
        v.check(
            request.items.len() <= MAX_ITEMS,
            "items",
            format!("at most {MAX_ITEMS} items per report; split the batch"),
        );
        v.check(
            request.relationships.len() <= MAX_RELATIONSHIPS,
            "relationships",
            format!("at most {MAX_RELATIONSHIPS} relationships per report; split the batch"),
        );
        v.check(
            request.request_id.chars().count() <= 128,
            "request_id",
            "must be at most 128 characters",
        );
        v.into_result()?;
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let (_, source) = sources::select_source(&mut conn, &source_id, "")
            .await?
            .ok_or_else(|| ApiError::not_found(&request.discovery_source))?;
        if !source.enabled {
            return Err(ApiError::failed_precondition(
                "STATE",
                &source.name,
                format!("{} is disabled: enable it to report", source.name),
            ));
        }
        if !source.allowed_principals.is_empty()
            && !principal_allowed(&source.allowed_principals, &call.caller.subject)
        {
            return Err(ApiError::new(
                ErrorCode::PermissionDenied,
                format!(
                    "\"{}\" may not report as {}",
                    call.caller.subject, source.name
                ),
            ));
        }
        let keyed = !request.request_id.is_empty() && !request.validate_only;
        if keyed && let Some(first) = self.replayed_report(&request).await? {
            return Ok(first);
        }
        let precedence = load_precedence(&mut conn).await?;
        drop(conn);
        let model = self.model().await?;
        let batch = Batch {
            call,
            model: &model,
            backend: self.db.backend(),
            source: &source,
            source_id: &source_id,
            precedence: &precedence,
            now: itsm_store::now_micros(),
        };

        let mut response = if request.validate_only {
            self.validate_report(&batch, &request).await?
        } else {
            self.apply_report(&batch, &request).await?
        };
        response.created_count = count(&response.results, pb::ReportOutcome::Created);
        response.updated_count = count(&response.results, pb::ReportOutcome::Updated);
        response.unchanged_count = count(&response.results, pb::ReportOutcome::Unchanged);
        response.parked_count = count(&response.results, pb::ReportOutcome::Parked);
        response.rejected_count = count(&response.results, pb::ReportOutcome::Rejected);
        if request.validate_only {
            return Ok(response);
        }

        // The source's last report, and the response under the request id.
        let mut tx = self.db.begin().await?;
        let lock = self.db.backend().lock_suffix();
        if let Some((_, mut current)) = sources::select_source(&mut tx, &source_id, lock).await? {
            current.last_report_time = Some(timestamp(batch.now));
            sources::save_source_unversioned(&mut tx, &source_id, &current).await?;
        }
        if keyed {
            let hash = Self::report_hash(&request);
            match idempotency::claim(&mut tx, REPORT_METHOD, &request.request_id, &hash).await? {
                Claim::New => {
                    let stored = hex(&response.encode_to_vec());
                    idempotency::complete(&mut tx, REPORT_METHOD, &request.request_id, &stored)
                        .await?;
                }
                Claim::Replay { resource } => {
                    // A concurrent retry finished first: its response stands.
                    if let Some(first) = unhex(&resource)
                        .and_then(|b| pb::ReportCisResponse::decode(b.as_slice()).ok())
                    {
                        response = first;
                    }
                }
            }
        }
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(
            source = %source.name,
            created = response.created_count,
            updated = response.updated_count,
            unchanged = response.unchanged_count,
            parked = response.parked_count,
            rejected = response.rejected_count,
            "discovery report reconciled"
        );
        Ok(response)
    }

    /// A few items in one transaction (fewer commits); when one of them
    /// fails, none is kept and each is run again on its own.
    async fn run_chunk(
        &self,
        batch: &Batch<'_>,
        items: &[(usize, &pb::ReportedCi)],
        predicted: &[Option<Predicted>],
    ) -> Vec<Result<Done, ApiError>> {
        let predicted_of = |index: usize| predicted.get(index).and_then(Option::as_ref);
        if items.len() > 1 {
            let together = async {
                let mut tx = self.db.begin().await?;
                let mut out = Vec::with_capacity(items.len());
                for (index, item) in items {
                    let predicted = predicted_of(*index);
                    out.push(process_item(&mut tx, batch, *index, item, predicted).await?);
                }
                tx.commit().await.map_err(StoreError::from)?;
                Ok::<_, ApiError>(out)
            };
            match together.await {
                Ok(out) => return out.into_iter().map(Ok).collect(),
                Err(e) => {
                    tracing::debug!(error = %e.message(), "report chunk retried item by item")
                }
            }
        }
        let mut out = Vec::with_capacity(items.len());
        for (index, item) in items {
            out.push(
                self.run_item(batch, *index, item, predicted_of(*index))
                    .await,
            );
        }
        out
    }

    /// One item in its own transaction, tried again after a conflict with a
    /// concurrent writer.
    async fn run_item(
        &self,
        batch: &Batch<'_>,
        index: usize,
        item: &pb::ReportedCi,
        predicted: Option<&Predicted>,
    ) -> Result<Done, ApiError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut tx = self.db.begin().await?;
            match process_item(&mut tx, batch, index, item, predicted).await {
                Ok(done) => {
                    tx.commit().await.map_err(StoreError::from)?;
                    return Ok(done);
                }
                Err(e) if attempt < 3 && retryable(&e) => {
                    drop(tx);
                    tracing::debug!(item = index, error = %e.message(), "report item retried");
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Processes every item (several at a time, each in its own transaction)
    /// and then every relationship; forgets the cached copies of what changed.
    async fn apply_report(
        &self,
        batch: &Batch<'_>,
        request: &pb::ReportCisRequest,
    ) -> Result<pb::ReportCisResponse, ApiError> {
        let numbered: Vec<(usize, &pb::ReportedCi)> = request.items.iter().enumerate().collect();
        // Identification of the whole report first, a few statements in
        // all; each item confirms its prediction under its CI's lock.
        let reported: Vec<(&str, Option<&pb::Ci>)> = request
            .items
            .iter()
            .map(|item| (item.correlation_id.as_str(), item.ci.as_ref()))
            .collect();
        let predicted = {
            let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
            batch::predict(&mut conn, batch.model, batch.source_id, &reported).await?
        };
        let work: Vec<_> = numbered
            .chunks(CHUNK)
            .map(|chunk| self.run_chunk(batch, chunk, &predicted))
            .collect();
        let done: Vec<Result<Done, ApiError>> = futures_util::stream::iter(work)
            .buffered(CONCURRENCY)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .flatten()
            .collect();
        let mut touched = Vec::new();
        let mut any_change = false;
        let mut results = Vec::with_capacity(done.len());
        let mut names: HashMap<&str, Option<String>> = HashMap::new();
        let mut failure = None;
        for (item, done) in request.items.iter().zip(done) {
            match done {
                Ok(done) => {
                    if let Some(ci) = &done.ci
                        && let Some(uid) = crate::ci_uid(&ci.ci.name)
                    {
                        touched.push(uid.to_owned());
                    }
                    any_change |= done.result.outcome == pb::ReportOutcome::Created as i32
                        || done.result.outcome == pb::ReportOutcome::Updated as i32;
                    names
                        .entry(item.correlation_id.as_str())
                        .or_insert(done.ci.as_ref().map(|c| c.ci.name.clone()));
                    results.push(done.result);
                }
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        if let Some(e) = failure {
            self.forget_cis(&touched).await;
            if any_change {
                self.impact_changed().await;
            }
            return Err(e);
        }
        let mut relationship_results = Vec::with_capacity(request.relationships.len());
        for (index, reported) in request.relationships.iter().enumerate() {
            let mut tx = self.db.begin().await?;
            let result = relate_one(&mut tx, batch, index, reported, &names).await?;
            if result.outcome == pb::RelationshipOutcome::Created as i32
                || result.outcome == pb::RelationshipOutcome::Unchanged as i32
            {
                tx.commit().await.map_err(StoreError::from)?;
                any_change = true;
            }
            relationship_results.push(result);
        }
        self.forget_cis(&touched).await;
        if any_change {
            self.impact_changed().await;
        }
        Ok(pb::ReportCisResponse {
            results,
            relationship_results,
            ..pb::ReportCisResponse::default()
        })
    }

    /// The outcomes a report would have: the same work in one transaction,
    /// rolled back.
    async fn validate_report(
        &self,
        batch: &Batch<'_>,
        request: &pb::ReportCisRequest,
    ) -> Result<pb::ReportCisResponse, ApiError> {
        let mut tx = self.db.begin().await?;
        let mut results = Vec::with_capacity(request.items.len());
        let mut names: HashMap<&str, Option<String>> = HashMap::new();
        for (index, item) in request.items.iter().enumerate() {
            // No predictions: earlier items of the report, created in this
            // transaction, are seen by identification as they would be.
            let done = process_item(&mut tx, batch, index, item, None).await?;
            names
                .entry(item.correlation_id.as_str())
                .or_insert(done.ci.as_ref().map(|c| c.ci.name.clone()));
            results.push(done.result);
        }
        let mut relationship_results = Vec::with_capacity(request.relationships.len());
        for (index, reported) in request.relationships.iter().enumerate() {
            let mut result = relate_one(&mut tx, batch, index, reported, &names).await?;
            if result.outcome == pb::RelationshipOutcome::Created as i32 {
                result.relationship.clear();
            }
            relationship_results.push(result);
        }
        drop(tx);
        // Nothing was kept: names of what would have been created mean nothing.
        for result in &mut results {
            if result.outcome == pb::ReportOutcome::Created as i32 {
                result.ci.clear();
            }
            result.parked_match.clear();
        }
        Ok(pb::ReportCisResponse {
            results,
            relationship_results,
            ..pb::ReportCisResponse::default()
        })
    }

    pub(super) async fn get_parked_match(
        &self,
        _call: &Call,
        request: pb::GetParkedMatchRequest,
    ) -> Result<pb::ParkedMatch, ApiError> {
        let uid = parked_uid_of(&request.name, "name")?;
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        parked::select(&mut conn, uid, "")
            .await?
            .map(|m| m.parked)
            .ok_or_else(|| ApiError::not_found(&request.name))
    }

    pub(super) async fn list_parked_matches(
        &self,
        _call: &Call,
        request: pb::ListParkedMatchesRequest,
    ) -> Result<pb::ListParkedMatchesResponse, ApiError> {
        let tokens = self.tokens().await?;
        let only_open = !request.filter.contains("state");
        let list = ListRequest {
            page_size: request.page_size,
            page_token: &request.page_token,
            filter: &request.filter,
            order_by: &request.order_by,
        };
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let (parked_matches, next_page_token) =
            parked::select_page(&mut conn, &list, tokens, only_open).await?;
        Ok(pb::ListParkedMatchesResponse {
            parked_matches,
            next_page_token,
        })
    }

    pub(super) async fn resolve_parked_match(
        &self,
        call: &Call,
        request: pb::ResolveParkedMatchRequest,
    ) -> Result<pb::ParkedMatch, ApiError> {
        let name = request.name.clone();
        let uid = parked_uid_of(&name, "name")?;
        let action = pb::ParkedMatchAction::try_from(request.action)
            .unwrap_or(pb::ParkedMatchAction::Unspecified);
        let mut v = Violations::new();
        if action == pb::ParkedMatchAction::Unspecified {
            v.add("action", "is required: USE_EXISTING, CREATE_NEW or DISCARD");
        }
        if action == pb::ParkedMatchAction::UseExisting && crate::ci_uid(&request.ci).is_none() {
            v.add(
                "ci",
                "is required for USE_EXISTING: the CI to apply the report to, \"cis/<uuid>\"",
            );
        }
        v.check(
            request.note.chars().count() <= 4_000,
            "note",
            "must be at most 4000 characters",
        );
        v.into_result()?;
        let model = self.model().await?;
        let now = itsm_store::now_micros();
        let lock = self.db.backend().lock_suffix();
        let mut tx = self.db.begin().await?;
        let precedence = load_precedence(&mut tx).await?;
        let found = parked::select(&mut tx, uid, lock)
            .await?
            .ok_or_else(|| ApiError::not_found(&name))?;
        etag::check(&name, &request.etag, found.version, false)?;
        if found.parked.state != pb::ParkedMatchState::Open as i32 {
            return Err(ApiError::failed_precondition(
                "STATE",
                &name,
                format!("{name} is decided already"),
            ));
        }
        let mut m = found.parked.clone();
        let reported = m.reported.clone().unwrap_or_default();
        let source_id = reconcile::source_id(&m.discovery_source).to_owned();
        let ci = reported.ci.clone().unwrap_or_default();
        let origin = |action| Origin {
            call,
            source: &source_id,
            correlation_id: &reported.correlation_id,
            action,
            now,
        };
        let mut touched = None;
        match action {
            pb::ParkedMatchAction::UseExisting => {
                let stored = write::load(&mut tx, &request.ci, lock)
                    .await?
                    .ok_or_else(|| ApiError::not_found(&request.ci))?;
                if stored.ci.status == pb::CiStatus::Retired as i32 {
                    return Err(ApiError::failed_precondition(
                        "STATE",
                        &request.ci,
                        format!(
                            "{} is retired: a report cannot be applied to it",
                            request.ci
                        ),
                    ));
                }
                let applied = apply_to(
                    &mut tx,
                    &model,
                    &precedence,
                    stored,
                    &ci,
                    &reported.cleared_fields,
                    &origin("reconcile"),
                )
                .await?;
                m.resolved_ci.clone_from(&applied.stored.ci.name);
                touched = Some(applied.stored.ci.name);
            }
            pb::ParkedMatchAction::CreateNew => {
                let mut v = Violations::new();
                check_item(
                    &model,
                    &pb::DiscoverySource::default(),
                    "reported",
                    &reported,
                    &mut v,
                );
                write::check_references(&mut tx, &model, &ci, "reported.ci", &mut v).await?;
                v.check(
                    !ci.display_name.trim().is_empty(),
                    "reported.ci.display_name",
                    "is required to create a CI",
                );
                if let Err(e) = v.into_result() {
                    return Err(ApiError::failed_precondition(
                        "REPORT",
                        &name,
                        format!(
                            "the parked report cannot be created as a CI: {}",
                            e.message()
                        ),
                    ));
                }
                let created =
                    write::create_ci(&mut tx, &model, new_ci(&ci), &origin("create")).await?;
                m.resolved_ci.clone_from(&created.ci.name);
                touched = Some(created.ci.name);
            }
            _ => {}
        }
        let discarded = action == pb::ParkedMatchAction::Discard;
        m.state = if discarded {
            pb::ParkedMatchState::Discarded
        } else {
            pb::ParkedMatchState::Resolved
        } as i32;
        m.action = action as i32;
        m.resolution_note.clone_from(&request.note);
        m.resolved_by = Some(call.actor.to_proto());
        m.resolve_time = Some(timestamp(now));
        let version = found.version + 1;
        m.etag = etag::from_version(version);
        if !parked::update(&mut tx, found.id, &m, version, found.version).await? {
            return Err(ApiError::stale_etag(&name));
        }
        let change = Change {
            resource: &name,
            version,
            action: if discarded { "discard" } else { "resolve" },
            event_type: if discarded {
                PARKED_DISCARDED
            } else {
                PARKED_RESOLVED
            },
            changes: vec![itsm_store::audit::FieldChange::new(
                "state",
                "OPEN".to_owned(),
                if discarded { "DISCARDED" } else { "RESOLVED" }.to_owned(),
            )],
            payload: parked_payload(&m),
        };
        call::record(&mut tx, call, change, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        if let Some(name) = touched {
            if let Some(uid) = crate::ci_uid(&name) {
                self.forget_cis(&[uid.to_owned()]).await;
            }
            self.impact_changed().await;
        }
        tracing::info!(parked_match = %name, action = action.as_str_name(), "parked match decided");
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let bytes = vec![0u8, 1, 127, 128, 255];
        assert_eq!(unhex(&hex(&bytes)), Some(bytes));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn principals_match_by_subject() {
        let allowed = vec![
            "svc-sccm".to_owned(),
            "serviceAccounts/svc-agent".to_owned(),
        ];
        assert!(principal_allowed(&allowed, "svc-sccm"));
        assert!(principal_allowed(&allowed, "svc-agent"));
        assert!(!principal_allowed(&allowed, "svc-other"));
    }
}
