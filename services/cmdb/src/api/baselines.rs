//! Baselines: a named capture of the CIs matching a filter (and their
//! relationships) as of an instant, and its diff against another baseline
//! or against the CMDB at an instant.
//!
//! A diff holds only the differences in memory: the baseline's members as
//! (internal id -> version), the compared side streamed in pages, and the
//! documents of the CIs that differ. Entries are sorted by resource name,
//! filtered, counted and paged in memory; the page token is the last
//! resource name served.

use std::collections::{HashMap, HashSet};

use itsm_platform::{ApiError, Violations};
use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_proto::itsm::common::v1 as common;
use itsm_store::audit::{FieldChange, timestamp};
use itsm_store::change::Change;
use itsm_store::idempotency::{self, Claim};
use itsm_store::list::ListRequest;
use itsm_store::query::{Comparison, Expr, Op, Value, parse_filter};
use itsm_store::{SqlValue, StoreError};
use prost::Message as _;
use sqlx::AnyConnection;

use super::CmdbApi;
use super::call::{self, Call};
use crate::filter::CiFilter;
use crate::model::{Model, class_id};
use crate::store::baselines::{self as store, Capture, PAGE, relationship_uid};

const CREATE_METHOD: &str = "itsm.cmdb.v1.CmdbService/CreateBaseline";
const CREATED: &str = "cmdb.baseline.created";
/// Longest request_id accepted (a UUID is 36 characters).
const REQUEST_ID_MAX: usize = 128;
const DISPLAY_NAME_MAX: usize = 255;
const DESCRIPTION_MAX: usize = 4_000;

/// "baselines/<uuid>" -> "<uuid>".
fn baseline_uid(name: &str) -> Option<&str> {
    name.strip_prefix("baselines/")
        .filter(|uid| uuid::Uuid::try_parse(uid).is_ok())
}

/// Microseconds since the epoch of a request's timestamp; `None` when it is
/// not a valid instant.
pub(crate) fn micros(ts: &prost_types::Timestamp) -> Option<i64> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return None;
    }
    ts.seconds
        .checked_mul(1_000_000)?
        .checked_add(i64::from(ts.nanos / 1_000))
}

/// Checks an instant that may be in the past but not in the future.
fn past_instant(
    ts: Option<&prost_types::Timestamp>,
    now: i64,
    field: &str,
    violations: &mut Violations,
) -> i64 {
    let Some(ts) = ts else {
        return now;
    };
    match micros(ts) {
        None => {
            violations.add(field, "is not a valid timestamp");
            now
        }
        Some(at) if at > now => {
            violations.add(
                field,
                "is in the future; the CMDB can only be read up to now",
            );
            now
        }
        Some(at) => at,
    }
}

/// Adds an error's field violations to `violations`; an error without any
/// (not about the input) is returned as is.
fn take_violations(error: ApiError, violations: &mut Violations) -> Result<(), ApiError> {
    if error.field_violations().is_empty() {
        return Err(error);
    }
    for v in error.field_violations() {
        violations.add(v.field.clone(), v.description.clone());
    }
    Ok(())
}

impl CmdbApi {
    pub(super) async fn create_baseline(
        &self,
        call: &Call,
        request: pb::CreateBaselineRequest,
    ) -> Result<pb::Baseline, ApiError> {
        let model = self.model().await?;
        let now = itsm_store::now_micros();
        let mut violations = Violations::new();
        let sent = request.baseline.clone().unwrap_or_default();
        if request.baseline.is_none() {
            violations.add("baseline", "is required");
        }
        let display_name = sent.display_name.trim();
        violations.check(
            !display_name.is_empty(),
            "baseline.display_name",
            "is required",
        );
        violations.check(
            display_name.chars().count() <= DISPLAY_NAME_MAX,
            "baseline.display_name",
            format!("must be at most {DISPLAY_NAME_MAX} characters"),
        );
        violations.check(
            sent.description.chars().count() <= DESCRIPTION_MAX,
            "baseline.description",
            format!("must be at most {DESCRIPTION_MAX} characters"),
        );
        let filter = parse_ci_filter(&sent.filter, &model, &mut violations)?;
        let at = past_instant(
            sent.snapshot_time.as_ref(),
            now,
            "baseline.snapshot_time",
            &mut violations,
        );
        violations.check(
            request.request_id.chars().count() <= REQUEST_ID_MAX,
            "request_id",
            "must be at most 128 characters (a UUID is recommended)",
        );
        violations.into_result()?;

        let mut tx = self.db.begin().await?;
        if !request.request_id.is_empty() {
            let content = pb::CreateBaselineRequest {
                request_id: String::new(),
                ..request.clone()
            };
            let hash = idempotency::hash_request(&content.encode_to_vec());
            let claim = idempotency::claim(&mut tx, CREATE_METHOD, &request.request_id, &hash);
            if let Claim::Replay { resource } = claim.await? {
                let uid = baseline_uid(&resource).unwrap_or_default();
                let found = store::select_baseline(&mut tx, uid).await?;
                tx.commit().await.map_err(StoreError::from)?;
                return found
                    .map(|(_, b)| b)
                    .ok_or_else(|| ApiError::not_found(resource));
            }
        }
        let uid = uuid::Uuid::new_v4().to_string();
        let mut baseline = pb::Baseline {
            name: format!("baselines/{uid}"),
            display_name: display_name.to_owned(),
            description: sent.description.clone(),
            filter: sent.filter.trim().to_owned(),
            include_relationships: sent.include_relationships,
            snapshot_time: Some(timestamp(at)),
            ci_count: 0,
            relationship_count: 0,
            created_by: Some(call.actor.to_proto()),
            create_time: Some(timestamp(now)),
        };
        let id = store::insert_baseline(&mut tx, &uid, &baseline, at, now).await?;
        let mut held = HashSet::new();
        let mut capture = Capture::new(at, &filter, &model);
        while let Some(page) = capture.next(&mut tx).await? {
            let members: Vec<store::Member> = page.iter().map(store::Captured::member).collect();
            store::insert_members(&mut tx, id, &members).await?;
            baseline.ci_count += i64::try_from(members.len()).unwrap_or(i64::MAX);
            if baseline.include_relationships {
                held.extend(members.iter().map(|m| m.ci_id));
            }
        }
        if baseline.include_relationships {
            let relationships = store::relationships_at(&mut tx, at, &held).await?;
            store::insert_relationships(&mut tx, id, &relationships).await?;
            baseline.relationship_count = i64::try_from(relationships.len()).unwrap_or(i64::MAX);
        }
        store::update_doc(&mut tx, id, &baseline).await?;
        let change = Change {
            resource: &baseline.name,
            version: 1,
            action: "create",
            event_type: CREATED,
            changes: creation_changes(&baseline),
            payload: any(
                "itsm.cmdb.v1.BaselineEvent",
                pb::BaselineEvent {
                    baseline: Some(baseline.clone()),
                }
                .encode_to_vec(),
            ),
        };
        call::record(&mut tx, call, change, now).await?;
        if !request.request_id.is_empty() {
            idempotency::complete(&mut tx, CREATE_METHOD, &request.request_id, &baseline.name)
                .await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(baseline = %baseline.name, cis = baseline.ci_count, relationships = baseline.relationship_count, "baseline captured");
        Ok(baseline)
    }

    pub(super) async fn get_baseline(
        &self,
        _call: &Call,
        request: pb::GetBaselineRequest,
    ) -> Result<pb::Baseline, ApiError> {
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        load(&mut conn, &request.name, "name").await.map(|(_, b)| b)
    }

    pub(super) async fn list_baselines(
        &self,
        _call: &Call,
        request: pb::ListBaselinesRequest,
    ) -> Result<pb::ListBaselinesResponse, ApiError> {
        let tokens = self.tokens().await?;
        let list = ListRequest {
            page_size: request.page_size,
            page_token: &request.page_token,
            filter: &request.filter,
            order_by: &request.order_by,
        };
        let plan = store::LIST.plan(&list, tokens, |_| {})?;
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let rows = itsm_store::db::query(plan.sql())
            .fetch_all(&mut *conn)
            .await
            .map_err(StoreError::from)?;
        let page = plan.finish(rows, tokens)?;
        let baselines = page
            .rows
            .iter()
            .map(|row| {
                let doc: Vec<u8> = sqlx::Row::try_get(row, "doc")?;
                crate::store::decode("baselines", &doc)
            })
            .collect::<Result<Vec<pb::Baseline>, StoreError>>()?;
        Ok(pb::ListBaselinesResponse {
            baselines,
            next_page_token: page.next_page_token,
        })
    }

    pub(super) async fn diff_baseline(
        &self,
        _call: &Call,
        request: pb::DiffBaselineRequest,
    ) -> Result<pb::DiffBaselineResponse, ApiError> {
        use pb::diff_baseline_request::CompareTo;
        let model = self.model().await?;
        let now = itsm_store::now_micros();
        let mut violations = Violations::new();
        if baseline_uid(&request.baseline).is_none() {
            violations.add("baseline", "must be \"baselines/<uuid>\"");
        }
        let (compare, at) = match &request.compare_to {
            Some(CompareTo::OtherBaseline(other)) => {
                if baseline_uid(other).is_none() {
                    violations.add("other_baseline", "must be \"baselines/<uuid>\"");
                }
                (format!("other:{other}"), now)
            }
            Some(CompareTo::CompareTime(ts)) => {
                let at = past_instant(Some(ts), now, "compare_time", &mut violations);
                (format!("time:{at}"), at)
            }
            None => ("now".to_owned(), now),
        };
        let limit = match itsm_store::page::page_size(request.page_size) {
            Ok(limit) => limit,
            Err(error) => {
                take_violations(error, &mut violations)?;
                0
            }
        };
        let entry_filter = match EntryFilter::parse(&request.filter, &model) {
            Ok(filter) => filter,
            Err(error) => {
                take_violations(error, &mut violations)?;
                EntryFilter(None)
            }
        };
        violations.into_result()?;
        let tokens = self.tokens().await?;
        let fingerprint = format!(
            "baselineDiff\u{0}{}\u{0}{compare}\u{0}{}",
            request.baseline,
            request.filter.trim()
        );
        let after = match request.page_token.as_str() {
            "" => None,
            token => match tokens.decode(token, &fingerprint)?.as_slice() {
                [SqlValue::Text(resource)] => Some(resource.clone()),
                _ => {
                    return Err(ApiError::invalid_field(
                        "page_token",
                        "is not a token of this diff; start again without a page_token",
                    ));
                }
            },
        };

        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let (base_id, base) = load(&mut conn, &request.baseline, "baseline").await?;
        let mut entries = match &request.compare_to {
            Some(CompareTo::OtherBaseline(other)) => {
                let (other_id, other) = load(&mut conn, other, "other_baseline").await?;
                let side = Side::Stored {
                    id: other_id,
                    relationships: other.include_relationships,
                };
                diff(&mut conn, &model, base_id, &base, side).await?
            }
            _ => {
                let mut ignored = Violations::new();
                let filter = parse_ci_filter(&base.filter, &model, &mut ignored)?;
                if !ignored.is_empty() {
                    return Err(ApiError::failed_precondition(
                        "FILTER",
                        base.name.clone(),
                        "the baseline's filter no longer fits the class model; compare it with \
                         another baseline instead",
                    ));
                }
                let side = Side::Live {
                    at,
                    filter: &filter,
                };
                diff(&mut conn, &model, base_id, &base, side).await?
            }
        };
        drop(conn);

        entries.retain(|e| entry_filter.matches(&model, e));
        entries.sort_by(|a, b| a.resource.cmp(&b.resource));
        let count = |kind: pb::DiffKind| {
            let n = entries.iter().filter(|e| e.kind == kind as i32).count();
            i64::try_from(n).unwrap_or(i64::MAX)
        };
        let (added_count, removed_count, changed_count) = (
            count(pb::DiffKind::Added),
            count(pb::DiffKind::Removed),
            count(pb::DiffKind::Changed),
        );
        let start = after.map_or(0, |after| {
            entries.partition_point(|e| e.resource.as_str() <= after.as_str())
        });
        let mut page: Vec<pb::BaselineDiffEntry> =
            entries.into_iter().skip(start).take(limit + 1).collect();
        let mut next_page_token = String::new();
        if page.len() > limit {
            page.truncate(limit);
            if let Some(last) = page.last() {
                next_page_token =
                    tokens.encode(&fingerprint, &[SqlValue::Text(last.resource.clone())]);
            }
        }
        Ok(pb::DiffBaselineResponse {
            entries: page,
            next_page_token,
            added_count,
            removed_count,
            changed_count,
        })
    }
}

/// The baseline named `name` with its internal id; INVALID_ARGUMENT naming
/// `field` when malformed, NOT_FOUND when missing.
async fn load(
    conn: &mut AnyConnection,
    name: &str,
    field: &str,
) -> Result<(i64, pb::Baseline), ApiError> {
    let uid = baseline_uid(name)
        .ok_or_else(|| ApiError::invalid_field(field, "must be \"baselines/<uuid>\""))?;
    store::select_baseline(conn, uid)
        .await?
        .ok_or_else(|| ApiError::not_found(name))
}

/// A baseline's CI filter; violations name "baseline.filter". Empty input
/// is the empty filter.
fn parse_ci_filter(
    input: &str,
    model: &Model,
    violations: &mut Violations,
) -> Result<CiFilter, ApiError> {
    if input.trim().is_empty() {
        return Ok(CiFilter::default());
    }
    match CiFilter::parse(input, "baseline.filter", model) {
        Ok(filter) => Ok(filter),
        Err(error) => {
            take_violations(error, violations)?;
            Ok(CiFilter::default())
        }
    }
}

fn creation_changes(b: &pb::Baseline) -> Vec<FieldChange> {
    let mut changes = vec![FieldChange::new("display_name", "", &b.display_name)];
    if !b.filter.is_empty() {
        changes.push(FieldChange::new("filter", "", &b.filter));
    }
    if b.include_relationships {
        changes.push(FieldChange::new("include_relationships", "", "true"));
    }
    changes.push(FieldChange::new("ci_count", "", b.ci_count));
    changes.push(FieldChange::new(
        "relationship_count",
        "",
        b.relationship_count,
    ));
    changes
}

pub(crate) fn any(type_name: &str, value: Vec<u8>) -> prost_types::Any {
    prost_types::Any {
        type_url: format!("type.googleapis.com/{type_name}"),
        value,
    }
}

/// What a baseline is compared with.
enum Side<'a> {
    /// The CMDB at an instant, through the baseline's filter.
    Live { at: i64, filter: &'a CiFilter },
    /// Another baseline.
    Stored { id: i64, relationships: bool },
}

/// Every difference between the baseline and `side`, unordered.
async fn diff(
    conn: &mut AnyConnection,
    model: &Model,
    base_id: i64,
    base: &pb::Baseline,
    side: Side<'_>,
) -> Result<Vec<pb::BaselineDiffEntry>, ApiError> {
    let mut entries = Vec::new();
    let mut held = HashSet::new();
    let mut base_cis: HashMap<i64, i64> = HashMap::new();
    let mut after = String::new();
    loop {
        let page = store::select_members(conn, base_id, &after, PAGE).await?;
        base_cis.extend(page.iter().map(|m| (m.ci_id, m.version)));
        match page.last() {
            Some(last) if page.len() == PAGE => after.clone_from(&last.ci_uid),
            _ => break,
        }
    }
    let compare_relationships = base.include_relationships
        && match side {
            Side::Live { .. } => true,
            Side::Stored { relationships, .. } => relationships,
        };
    match &side {
        Side::Live { at, filter } => {
            let mut capture = Capture::new(*at, filter, model);
            while let Some(page) = capture.next(conn).await? {
                let mut changed = Vec::new();
                for captured in page {
                    if compare_relationships {
                        held.insert(captured.ci_id);
                    }
                    match base_cis.remove(&captured.ci_id) {
                        None => entries.push(ci_entry(&captured.ci, pb::DiffKind::Added)),
                        Some(v) if v == captured.version => {}
                        Some(v) => changed.push((v, captured)),
                    }
                }
                let keys: Vec<(i64, i64)> = changed.iter().map(|(v, c)| (c.ci_id, *v)).collect();
                let before = store::select_versions(conn, &keys).await?;
                for (v, captured) in changed {
                    if let Some(old) = before.get(&(captured.ci_id, v)) {
                        entries.extend(changed_entry(old, &captured.ci));
                    }
                }
            }
        }
        Side::Stored { id, .. } => {
            let mut after = String::new();
            loop {
                let page = store::select_members(conn, *id, &after, PAGE).await?;
                let mut added = Vec::new();
                let mut changed = Vec::new();
                for m in &page {
                    match base_cis.remove(&m.ci_id) {
                        None => added.push((m.ci_id, m.version)),
                        Some(v) if v == m.version => {}
                        Some(v) => changed.push((m.ci_id, v, m.version)),
                    }
                }
                let mut keys = added.clone();
                for (ci_id, old, new) in &changed {
                    keys.push((*ci_id, *old));
                    keys.push((*ci_id, *new));
                }
                let docs = store::select_versions(conn, &keys).await?;
                for key in &added {
                    if let Some(ci) = docs.get(key) {
                        entries.push(ci_entry(ci, pb::DiffKind::Added));
                    }
                }
                for (ci_id, old, new) in changed {
                    if let (Some(old), Some(new)) =
                        (docs.get(&(ci_id, old)), docs.get(&(ci_id, new)))
                    {
                        entries.extend(changed_entry(old, new));
                    }
                }
                match page.last() {
                    Some(last) if page.len() == PAGE => after.clone_from(&last.ci_uid),
                    _ => break,
                }
            }
        }
    }
    let mut removed: Vec<(i64, i64)> = base_cis.into_iter().collect();
    removed.sort_unstable();
    for chunk in removed.chunks(PAGE) {
        let docs = store::select_versions(conn, chunk).await?;
        for key in chunk {
            if let Some(ci) = docs.get(key) {
                entries.push(ci_entry(ci, pb::DiffKind::Removed));
            }
        }
    }
    if compare_relationships {
        diff_relationships(conn, base_id, &side, &held, &mut entries).await?;
    }
    Ok(entries)
}

/// The relationships only in the baseline (REMOVED) or only on `side` (ADDED).
async fn diff_relationships(
    conn: &mut AnyConnection,
    base_id: i64,
    side: &Side<'_>,
    held: &HashSet<i64>,
    entries: &mut Vec<pb::BaselineDiffEntry>,
) -> Result<(), ApiError> {
    let mut base: HashSet<String> = HashSet::new();
    let mut after = String::new();
    loop {
        let page = store::select_relationships(conn, base_id, &after, PAGE).await?;
        base.extend(page.iter().map(|r| relationship_uid(&r.name).to_owned()));
        match page.last() {
            Some(last) if page.len() == PAGE => after = relationship_uid(&last.name).to_owned(),
            _ => break,
        }
    }
    let mut compare = |r: &pb::Relationship| {
        if !base.remove(relationship_uid(&r.name)) {
            entries.push(relationship_entry(r, pb::DiffKind::Added));
        }
    };
    match side {
        Side::Live { at, .. } => {
            for r in store::relationships_at(conn, *at, held).await? {
                compare(&r);
            }
        }
        Side::Stored { id, .. } => {
            let mut after = String::new();
            loop {
                let page = store::select_relationships(conn, *id, &after, PAGE).await?;
                page.iter().for_each(&mut compare);
                match page.last() {
                    Some(last) if page.len() == PAGE => {
                        after = relationship_uid(&last.name).to_owned();
                    }
                    _ => break,
                }
            }
        }
    }
    let removed: Vec<String> = base.into_iter().collect();
    for r in store::select_relationships_by_uid(conn, base_id, &removed).await? {
        entries.push(relationship_entry(&r, pb::DiffKind::Removed));
    }
    Ok(())
}

fn ci_entry(ci: &pb::Ci, kind: pb::DiffKind) -> pb::BaselineDiffEntry {
    pb::BaselineDiffEntry {
        resource: ci.name.clone(),
        display_name: ci.display_name.clone(),
        ci_class: ci.ci_class.clone(),
        kind: kind as i32,
        changes: Vec::new(),
    }
}

/// CHANGED with the field changes from `old` to `new`; `None` when no field differs.
fn changed_entry(old: &pb::Ci, new: &pb::Ci) -> Option<pb::BaselineDiffEntry> {
    let changes = crate::write::diff(old, new);
    if changes.is_empty() {
        return None;
    }
    let mut entry = ci_entry(new, pb::DiffKind::Changed);
    entry.changes = changes
        .into_iter()
        .map(|c| common::FieldChange {
            field: c.field,
            old_value: c.old,
            new_value: c.new,
        })
        .collect();
    Some(entry)
}

fn relationship_entry(r: &pb::Relationship, kind: pb::DiffKind) -> pb::BaselineDiffEntry {
    let type_id = crate::model::relationship_type_id(&r.r#type).unwrap_or(&r.r#type);
    pb::BaselineDiffEntry {
        resource: r.name.clone(),
        display_name: format!("{} {type_id} {}", r.source_ci, r.target_ci),
        ci_class: String::new(),
        kind: kind as i32,
        changes: Vec::new(),
    }
}

/// The `filter` of DiffBaseline over its entries: `kind`, `ci_class` (the
/// class and its subclasses) and `resource`, evaluated in memory.
struct EntryFilter(Option<Expr>);

impl EntryFilter {
    fn parse(input: &str, model: &Model) -> Result<Self, ApiError> {
        let expr = parse_filter(input)?;
        if let Some(expr) = &expr {
            check(expr, model)?;
        }
        Ok(Self(expr))
    }

    fn matches(&self, model: &Model, entry: &pb::BaselineDiffEntry) -> bool {
        self.0.as_ref().is_none_or(|e| eval(e, model, entry))
    }
}

fn bad(c: &Comparison, message: impl std::fmt::Display) -> ApiError {
    ApiError::invalid_field("filter", format!("at position {}: {message}", c.field_pos))
}

fn text_value(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) | Value::Name(s) => Some(s),
        _ => None,
    }
}

fn diff_kind(value: &Value) -> Option<pb::DiffKind> {
    let text = text_value(value)?;
    let text = text.strip_prefix("DIFF_KIND_").unwrap_or(text);
    match text {
        "ADDED" => Some(pb::DiffKind::Added),
        "REMOVED" => Some(pb::DiffKind::Removed),
        "CHANGED" => Some(pb::DiffKind::Changed),
        _ => None,
    }
}

/// The class id a filter value names: "classes/x" or "x".
fn filter_class(value: &Value) -> Option<&str> {
    let text = text_value(value)?;
    Some(class_id(text).unwrap_or(text))
}

fn check(expr: &Expr, model: &Model) -> Result<(), ApiError> {
    match expr {
        Expr::And(parts) | Expr::Or(parts) => parts.iter().try_for_each(|p| check(p, model)),
        Expr::Not(inner) => check(inner, model),
        Expr::Compare(c) => {
            if c.value == Value::Any {
                return Ok(());
            }
            if !matches!(c.op, Op::Eq | Op::Ne | Op::Has) {
                return Err(bad(c, format!("{} accepts =, != and : only", c.field)));
            }
            match c.field.as_str() {
                "kind" => diff_kind(&c.value)
                    .map(|_| ())
                    .ok_or_else(|| bad(c, "kind is one of ADDED, REMOVED, CHANGED")),
                "ci_class" => match filter_class(&c.value) {
                    Some(id) if model.class(id).is_some() => Ok(()),
                    _ => Err(bad(
                        c,
                        "ci_class must name an existing class, \"classes/<id>\"",
                    )),
                },
                "resource" => text_value(&c.value)
                    .map(|_| ())
                    .ok_or_else(|| bad(c, "resource takes a quoted name")),
                other => Err(bad(
                    c,
                    format!(
                        "unknown field \"{other}\"; the entries filter on kind, ci_class and resource"
                    ),
                )),
            }
        }
    }
}

fn eval(expr: &Expr, model: &Model, entry: &pb::BaselineDiffEntry) -> bool {
    match expr {
        Expr::And(parts) => parts.iter().all(|p| eval(p, model, entry)),
        Expr::Or(parts) => parts.iter().any(|p| eval(p, model, entry)),
        Expr::Not(inner) => !eval(inner, model, entry),
        Expr::Compare(c) => {
            let field_set = match c.field.as_str() {
                "kind" => entry.kind != 0,
                "ci_class" => !entry.ci_class.is_empty(),
                _ => !entry.resource.is_empty(),
            };
            if c.value == Value::Any {
                return field_set;
            }
            let equal = match c.field.as_str() {
                "kind" => diff_kind(&c.value).is_some_and(|k| entry.kind == k as i32),
                "ci_class" => match (class_id(&entry.ci_class), filter_class(&c.value)) {
                    (Some(class), Some(wanted)) => model.is_a(class, wanted),
                    _ => false,
                },
                _ => {
                    let wanted = text_value(&c.value).unwrap_or_default();
                    if c.op == Op::Has {
                        entry
                            .resource
                            .to_lowercase()
                            .contains(&wanted.to_lowercase())
                    } else {
                        entry.resource == wanted
                    }
                }
            };
            if c.op == Op::Ne { !equal } else { equal }
        }
    }
}
