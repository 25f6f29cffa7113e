//! The health report: findings over the CIs that are not retired, computed
//! with set-based SQL over the columns and the attribute index (no CI is
//! decoded), written to `health_issues` (replaced wholesale; doc:
//! `HealthIssue`) with the report (`cmdb_singletons` "health_report"; doc:
//! `HealthReport`) and its event, in one transaction.
//!
//! - DUPLICATE: CIs of the classes an identification rule is in force for
//!   that share the values of all its keys (a window count over the
//!   attribute index rows of the keys, `> 1`).
//! - ORPHAN: no relationship at either end; the exempt classes and their
//!   subclasses excepted.
//! - STALE: last seen before `now - stale_after`, or never seen and created before then.
//! - MISSING_REQUIRED: no attribute row for a key its class requires.
//!
//! Findings are read in keyset pages by internal CI id and inserted many
//! rows per statement, so a million CIs never sit in memory at once (the
//! duplicates, usually few, are merged in memory).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use itsm_platform::ApiError;
use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::audit::{Actor, timestamp};
use itsm_store::outbox::{self, NewEvent};
use itsm_store::{Db, SqlBuilder, StoreError};
use prost::Message as _;
use sqlx::AnyConnection;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::model::{Model, class_id};

/// The singleton row of the latest report.
pub const REPORT: &str = "health_report";
/// The report's resource name.
pub const REPORT_NAME: &str = "healthReport";
pub const COMPUTED: &str = "cmdb.health_report.computed";
/// CIs read per page, issues inserted per statement.
const PAGE: i64 = 2_000;
const INSERT_BATCH: usize = 500;
/// At most this many other CIs named on one DUPLICATE finding (a value
/// shared by thousands, such as a placeholder serial, would otherwise
/// make every finding list all of them).
const MAX_DUPLICATES_NAMED: usize = 20;
/// `cis.status` of a retired CI.
const RETIRED: i32 = pb::CiStatus::Retired as i32;

/// The columns of a CI a finding shows.
const CI_COLUMNS: &str = "c.id, c.uid, c.ci_class, c.display_name, c.support_group";

/// Computes the findings now and stores them with the report and its event
/// (`cmdb.health_report.computed`); returns the report. Concurrent
/// computations are serialized on the report's row.
pub async fn compute(
    db: &Db,
    model: &Model,
    settings: &pb::CmdbSettings,
    now: i64,
) -> Result<pb::HealthReport, ApiError> {
    let mut tx = db.begin().await?;
    // Taken first: the row lock serializes computations (PostgreSQL; SQLite
    // has one writer anyway), so two never interleave their issue rows.
    let version: i64 = sqlx::query_scalar(
        "INSERT INTO cmdb_singletons (name, version, updated_at, doc) VALUES ($1, 1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET version = cmdb_singletons.version + 1, updated_at = $2 \
         RETURNING version",
    )
    .bind(REPORT)
    .bind(now)
    .bind(Vec::<u8>::new())
    .fetch_one(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    sqlx::query("DELETE FROM health_issues")
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;

    let mut tally = Tally::default();
    duplicates(&mut tx, model, &mut tally).await?;
    orphans(&mut tx, model, settings, &mut tally).await?;
    stale(&mut tx, settings, now, &mut tally).await?;
    missing_required(&mut tx, model, &mut tally).await?;
    let report = tally.report(&mut tx, now).await?;

    sqlx::query("UPDATE cmdb_singletons SET doc = $1 WHERE name = $2")
        .bind(report.encode_to_vec())
        .bind(REPORT)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    let actor = Actor::system("health");
    let payload = pb::HealthReportEvent {
        health_report: Some(report.clone()),
    };
    let event = NewEvent {
        stream: crate::api::call::STREAM,
        source: crate::api::call::SOURCE,
        event_type: COMPUTED,
        subject: REPORT_NAME,
        sequence: u64::try_from(version).unwrap_or_default(),
        payload: prost_types::Any {
            type_url: "type.googleapis.com/itsm.cmdb.v1.HealthReportEvent".into(),
            value: payload.encode_to_vec(),
        },
        actor: &actor,
        request_id: "",
        traceparent: "",
        tracestate: "",
        time: now,
    };
    outbox::insert(&mut tx, &event).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(report)
}

/// Recomputes the report now over `db`, with the settings and the class
/// model in force (loaded here: what the job uses, which has no API at hand).
pub async fn refresh(db: &Db) -> Result<pb::HealthReport, ApiError> {
    let mut conn = db.pool().acquire().await.map_err(StoreError::from)?;
    let generation = crate::model::generation(&mut conn).await?;
    let model = crate::model::load(&mut conn, generation).await?;
    let settings = super::settings::load(&mut conn).await?;
    drop(conn);
    compute(db, &model, &settings, itsm_store::now_micros()).await
}

/// The stored report, `None` before the first computation.
pub async fn select_report(
    conn: &mut AnyConnection,
) -> Result<Option<pb::HealthReport>, StoreError> {
    let doc: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT doc FROM cmdb_singletons WHERE name = $1")
            .bind(REPORT)
            .fetch_optional(conn)
            .await?;
    doc.filter(|d| !d.is_empty())
        .map(|d| super::decode("cmdb_singletons", &d))
        .transpose()
}

/// When the stored report was computed, `None` before the first computation.
pub async fn select_compute_time(conn: &mut AnyConnection) -> Result<Option<i64>, StoreError> {
    let at = sqlx::query_scalar("SELECT updated_at FROM cmdb_singletons WHERE name = $1")
        .bind(REPORT)
        .fetch_optional(conn)
        .await?;
    Ok(at)
}

/// Findings counted per class (by class id) and issues waiting to be inserted.
#[derive(Default)]
struct Tally {
    classes: HashMap<String, pb::ClassHealth>,
    pending: Vec<(i64, pb::HealthIssue)>,
}

impl Tally {
    fn count(&mut self, issue: &pb::HealthIssue) {
        let id = class_id(&issue.ci_class)
            .unwrap_or(&issue.ci_class)
            .to_owned();
        let class = self.classes.entry(id).or_default();
        match pb::HealthIssueKind::try_from(issue.kind).unwrap_or_default() {
            pb::HealthIssueKind::Duplicate => class.duplicate_count += 1,
            pb::HealthIssueKind::Orphan => class.orphan_count += 1,
            pb::HealthIssueKind::Stale => class.stale_count += 1,
            pb::HealthIssueKind::MissingRequired => class.missing_required_count += 1,
            pb::HealthIssueKind::Unspecified => {}
        }
    }

    async fn add(
        &mut self,
        conn: &mut AnyConnection,
        ci_id: i64,
        issue: pb::HealthIssue,
    ) -> Result<(), StoreError> {
        self.count(&issue);
        self.pending.push((ci_id, issue));
        if self.pending.len() >= INSERT_BATCH {
            self.flush(conn).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, conn: &mut AnyConnection) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut sql = SqlBuilder::new(
            "INSERT INTO health_issues (kind, ci_id, ci_uid, ci_class, support_group, doc) VALUES ",
        );
        for (i, (ci_id, issue)) in self.pending.drain(..).enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            let uid = crate::ci_uid(&issue.ci).unwrap_or(&issue.ci).to_owned();
            let class = class_id(&issue.ci_class)
                .unwrap_or(&issue.ci_class)
                .to_owned();
            sql.push("(")
                .push_bind(issue.kind)
                .push(", ")
                .push_bind(ci_id)
                .push(", ")
                .push_bind(uid)
                .push(", ")
                .push_bind(class)
                .push(", ")
                .push_bind(issue.support_group.as_str())
                .push(", ")
                .push_bind(issue.encode_to_vec())
                .push(")");
        }
        itsm_store::db::query(&sql).execute(conn).await?;
        Ok(())
    }

    /// Flushes what is pending and makes the report: CI counts per class,
    /// classes with findings first (most findings first), then by name.
    async fn report(
        &mut self,
        conn: &mut AnyConnection,
        now: i64,
    ) -> Result<pb::HealthReport, StoreError> {
        self.flush(&mut *conn).await?;
        let counts: Vec<(String, i64)> = sqlx::query_as(
            "SELECT ci_class, COUNT(*) FROM cis WHERE status <> $1 GROUP BY ci_class",
        )
        .bind(RETIRED)
        .fetch_all(&mut *conn)
        .await?;
        let mut report = pb::HealthReport {
            name: REPORT_NAME.to_owned(),
            compute_time: Some(timestamp(now)),
            ..pb::HealthReport::default()
        };
        for (class, count) in counts {
            let id = class_id(&class).unwrap_or(&class).to_owned();
            self.classes.entry(id).or_default().ci_count += count;
        }
        let mut classes: Vec<pb::ClassHealth> = self
            .classes
            .drain()
            .map(|(id, mut class)| {
                class.ci_class = format!("classes/{id}");
                class
            })
            .collect();
        let findings = |c: &pb::ClassHealth| {
            c.duplicate_count + c.orphan_count + c.stale_count + c.missing_required_count
        };
        classes.sort_by(|a, b| {
            findings(b)
                .cmp(&findings(a))
                .then_with(|| a.ci_class.cmp(&b.ci_class))
        });
        for class in &classes {
            report.ci_count += class.ci_count;
            report.duplicate_count += class.duplicate_count;
            report.orphan_count += class.orphan_count;
            report.stale_count += class.stale_count;
            report.missing_required_count += class.missing_required_count;
        }
        report.classes = classes;
        Ok(report)
    }
}

/// Both spellings a class may be stored under in `cis.ci_class`, for `IN` lists.
fn class_values<'a>(ids: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    ids.into_iter()
        .flat_map(|id| [id.to_owned(), format!("classes/{id}")])
        .collect()
}

/// A finding about the CI of a row starting with [`CI_COLUMNS`].
fn issue(row: &AnyRow, kind: pb::HealthIssueKind) -> Result<(i64, pb::HealthIssue), StoreError> {
    let id: i64 = row.try_get(0)?;
    let uid: String = row.try_get(1)?;
    let class: String = row.try_get(2)?;
    let issue = pb::HealthIssue {
        kind: kind as i32,
        ci: if uid.starts_with("cis/") {
            uid
        } else {
            format!("cis/{uid}")
        },
        ci_class: if class.starts_with("classes/") {
            class
        } else {
            format!("classes/{class}")
        },
        display_name: row.try_get(3)?,
        support_group: row.try_get(4)?,
        ..pb::HealthIssue::default()
    };
    Ok((id, issue))
}

/// Runs `select` (a statement over `cis c` ending in its WHERE conditions)
/// in pages by `c.id`, handing each row to `each`.
async fn pages(
    conn: &mut AnyConnection,
    select: &SqlBuilder,
    tally: &mut Tally,
    mut each: impl FnMut(&AnyRow) -> Result<Option<(i64, pb::HealthIssue)>, StoreError>,
) -> Result<(), StoreError> {
    let mut after = i64::MIN;
    loop {
        let mut sql = select.clone();
        sql.push(" AND c.id > ")
            .push_bind(after)
            .push(" ORDER BY c.id LIMIT ")
            .push_bind(PAGE);
        let rows = itsm_store::db::query(&sql).fetch_all(&mut *conn).await?;
        let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) == PAGE;
        for row in &rows {
            after = row.try_get(0)?;
            if let Some((id, issue)) = each(row)? {
                tally.add(&mut *conn, id, issue).await?;
            }
        }
        if !full {
            return Ok(());
        }
    }
}

/// CIs sharing the values of an identification rule, per rule in force.
async fn duplicates(
    conn: &mut AnyConnection,
    model: &Model,
    tally: &mut Tally,
) -> Result<(), StoreError> {
    // The classes whose rules in force are those declared by `owner`.
    let mut scopes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, _) in model.classes() {
        let mut chain = model.ancestors(id);
        chain.push(id);
        let owner = chain.iter().rev().find(|c| {
            model
                .class(c)
                .is_some_and(|c| !c.identification_rules.is_empty())
        });
        if let Some(owner) = owner {
            scopes
                .entry((*owner).to_owned())
                .or_default()
                .push(id.to_owned());
        }
    }
    let mut found: BTreeMap<String, (i64, pb::HealthIssue)> = BTreeMap::new();
    for (owner, classes) in &scopes {
        let rules = model
            .class(owner)
            .map(|c| c.identification_rules.clone())
            .unwrap_or_default();
        for rule in rules.iter().filter(|r| !r.attributes.is_empty()) {
            duplicates_of_rule(conn, rule, classes, &mut found).await?;
        }
    }
    for (_, (id, issue)) in found {
        tally.add(&mut *conn, id, issue).await?;
    }
    Ok(())
}

async fn duplicates_of_rule(
    conn: &mut AnyConnection,
    rule: &pb::IdentificationRule,
    classes: &[String],
    found: &mut BTreeMap<String, (i64, pb::HealthIssue)>,
) -> Result<(), StoreError> {
    let mut joins = SqlBuilder::default();
    let mut values: Vec<String> = Vec::new();
    for (i, key) in rule.attributes.iter().enumerate() {
        let value = match (key.as_str(), rule.ignore_case) {
            ("display_name", true) => "LOWER(TRIM(c.display_name))".to_owned(),
            ("display_name", false) => "c.display_name".to_owned(),
            ("location", _) => "c.location".to_owned(),
            (_, true) => format!("a{i}.norm_value"),
            (_, false) => format!("a{i}.text_value"),
        };
        if !matches!(key.as_str(), "display_name" | "location") {
            joins
                .push(&format!(
                    " JOIN ci_attributes a{i} ON a{i}.ci_id = c.id AND a{i}.key = "
                ))
                .push_bind(key.as_str());
        }
        values.push(value);
    }
    let partition = values.join(", ");
    let aliased: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{v} AS v{i}"))
        .collect();
    let ordered: Vec<String> = (0..values.len()).map(|i| format!("d.v{i}")).collect();
    let mut sql = SqlBuilder::new(format!(
        "SELECT d.id, d.uid, d.ci_class, d.display_name, d.support_group, {} FROM (\
         SELECT {CI_COLUMNS}, {}, COUNT(*) OVER (PARTITION BY {partition}) AS n FROM cis c",
        ordered.join(", "),
        aliased.join(", ")
    ));
    sql.append(&joins);
    sql.push(" WHERE c.status <> ")
        .push_bind(RETIRED)
        .push(" AND c.ci_class IN ")
        .push_bind_list(class_values(classes.iter().map(String::as_str)));
    for value in &values {
        sql.push(&format!(" AND {value} <> ''"));
    }
    sql.push(&format!(
        ") d WHERE d.n > 1 ORDER BY {}, d.uid",
        ordered.join(", ")
    ));
    let rows = itsm_store::db::query(&sql).fetch_all(&mut *conn).await?;
    // Rows come grouped by their values: each run of equal values is one group.
    let key_of = |row: &AnyRow| -> Result<Vec<String>, StoreError> {
        (0..values.len())
            .map(|i| row.try_get::<String, _>(5 + i).map_err(StoreError::from))
            .collect()
    };
    let mut start = 0;
    while start < rows.len() {
        let key = key_of(&rows[start])?;
        let mut end = start + 1;
        while end < rows.len() && key_of(&rows[end])? == key {
            end += 1;
        }
        let group = rows[start..end]
            .iter()
            .map(|row| issue(row, pb::HealthIssueKind::Duplicate))
            .collect::<Result<Vec<_>, _>>()?;
        for (id, member) in &group {
            let entry = found.entry(member.ci.clone()).or_insert_with(|| {
                let mut first = member.clone();
                first.matched_rule.clone_from(&rule.attributes);
                (*id, first)
            });
            let named: BTreeSet<String> = entry.1.duplicate_cis.iter().cloned().collect();
            for (_, other) in &group {
                if entry.1.duplicate_cis.len() >= MAX_DUPLICATES_NAMED {
                    break;
                }
                if other.ci != member.ci && !named.contains(&other.ci) {
                    entry.1.duplicate_cis.push(other.ci.clone());
                }
            }
        }
        start = end;
    }
    Ok(())
}

/// CIs with no relationship at either end, exempt classes excepted.
async fn orphans(
    conn: &mut AnyConnection,
    model: &Model,
    settings: &pb::CmdbSettings,
    tally: &mut Tally,
) -> Result<(), StoreError> {
    let exempt: Vec<&str> = settings
        .orphan_exempt_classes
        .iter()
        .filter_map(|name| class_id(name))
        .flat_map(|id| model.descendants(id))
        .collect();
    let mut sql = SqlBuilder::new(format!("SELECT {CI_COLUMNS} FROM cis c WHERE c.status <> "));
    sql.push_bind(RETIRED);
    if !exempt.is_empty() {
        sql.push(" AND c.ci_class NOT IN ")
            .push_bind_list(class_values(exempt));
    }
    sql.push(
        " AND NOT EXISTS (SELECT 1 FROM relationships r WHERE r.source_id = c.id) \
         AND NOT EXISTS (SELECT 1 FROM relationships r WHERE r.target_id = c.id)",
    );
    pages(conn, &sql, tally, |row| {
        issue(row, pb::HealthIssueKind::Orphan).map(Some)
    })
    .await
}

/// CIs no source has seen for `stale_after` (or never, and created before then).
async fn stale(
    conn: &mut AnyConnection,
    settings: &pb::CmdbSettings,
    now: i64,
    tally: &mut Tally,
) -> Result<(), StoreError> {
    let after = settings
        .stale_after
        .as_ref()
        .map_or(60 * 86_400_000_000, |d| {
            d.seconds
                .saturating_mul(1_000_000)
                .saturating_add(i64::from(d.nanos / 1_000))
        });
    let cutoff = now.saturating_sub(after);
    let mut sql = SqlBuilder::new(format!(
        "SELECT {CI_COLUMNS}, c.last_seen_at FROM cis c WHERE c.status <> "
    ));
    sql.push_bind(RETIRED)
        .push(" AND ((c.last_seen_at > 0 AND c.last_seen_at < ")
        .push_bind(cutoff)
        .push(") OR (c.last_seen_at = 0 AND c.created_at < ")
        .push_bind(cutoff)
        .push("))");
    pages(conn, &sql, tally, |row| {
        let (id, mut found) = issue(row, pb::HealthIssueKind::Stale)?;
        let seen: i64 = row.try_get(5)?;
        found.last_seen_time = (seen > 0).then(|| timestamp(seen));
        Ok(Some((id, found)))
    })
    .await
}

/// CIs lacking an attribute row for a key their class requires.
async fn missing_required(
    conn: &mut AnyConnection,
    model: &Model,
    tally: &mut Tally,
) -> Result<(), StoreError> {
    // Required keys by class id, and every such key once (the row's flags).
    let mut required: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, _) in model.classes() {
        let keys: Vec<String> = model
            .effective_attributes(id)
            .into_iter()
            .filter(|a| a.required)
            .map(|a| a.key)
            .collect();
        if !keys.is_empty() {
            required.insert(id.to_owned(), keys);
        }
    }
    if required.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = required
        .values()
        .flatten()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let has = |sql: &mut SqlBuilder, key: &str| {
        sql.push("EXISTS (SELECT 1 FROM ci_attributes a WHERE a.ci_id = c.id AND a.key = ")
            .push_bind(key)
            .push(")");
    };
    let mut sql = SqlBuilder::new(format!("SELECT {CI_COLUMNS}"));
    for key in &keys {
        sql.push(", CASE WHEN ");
        has(&mut sql, key);
        sql.push(" THEN 1 ELSE 0 END");
    }
    sql.push(" FROM cis c WHERE c.status <> ")
        .push_bind(RETIRED)
        .push(" AND (");
    for (i, (class, class_keys)) in required.iter().enumerate() {
        if i > 0 {
            sql.push(" OR ");
        }
        sql.push("(c.ci_class IN ")
            .push_bind_list(class_values([class.as_str()]))
            .push(" AND (");
        for (j, key) in class_keys.iter().enumerate() {
            if j > 0 {
                sql.push(" OR ");
            }
            sql.push("NOT ");
            has(&mut sql, key);
        }
        sql.push("))");
    }
    sql.push(")");
    pages(conn, &sql, tally, |row| {
        let (id, mut found) = issue(row, pb::HealthIssueKind::MissingRequired)?;
        let class = class_id(&found.ci_class).unwrap_or_default();
        let Some(class_keys) = required.get(class) else {
            return Ok(None);
        };
        for (i, key) in keys.iter().enumerate() {
            let present: i64 = row.try_get(5 + i)?;
            if present == 0 && class_keys.contains(key) {
                found.missing_attributes.push(key.clone());
            }
        }
        Ok((!found.missing_attributes.is_empty()).then_some((id, found)))
    })
    .await
}
