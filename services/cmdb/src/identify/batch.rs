//! Identification of a whole discovery report at once, before its items are
//! reconciled: one query for the report's (source, correlation id) mappings
//! and two per identification rule in use, instead of several per item.
//!
//! The result is a prediction, not a decision: an item predicted as one CI
//! found by a rule is reconciled against that CI after locking it and
//! checking that the rule still matches it ([`still_matches`]); every other
//! item (sighted by the source already, new, ambiguous, or with a rule on a
//! core field such as `display_name`) goes through [`super::identify`] under
//! its identity locks as before. The predictions repeat `identify`'s
//! decision exactly (the first applicable rule that finds anything decides,
//! a later rule finding another single CI is a conflict), over the same
//! indexed values (`ci_attributes.norm_value`, `text_value`).

use std::collections::{HashMap, HashSet};

use itsm_platform::ApiError;
use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::{SqlBuilder, SqlValue, StoreError};
use sqlx::{AnyConnection, Row as _};

use super::{Hit, Identification, applicable_rules, hit_of, reported_text, single};
use crate::model::{self, Model};

/// Values per lookup statement.
const CHUNK: usize = 500;

/// One CI a report item is predicted to be, found by `rule`.
#[derive(Debug, Clone, PartialEq)]
pub struct Predicted {
    pub ci_id: i64,
    pub name: String,
    pub rule: pb::IdentificationRule,
}

/// A CI a rule lookup returned, with its values of the rule's attributes:
/// key -> (text_value, norm_value).
#[derive(Debug, Clone)]
struct Candidate {
    hit: Hit,
    values: HashMap<String, (String, String)>,
}

/// A (class, rule) pair as a map key (messages are not `Hash`).
type RuleKey = (String, Vec<String>, bool, bool);

fn rule_key(class: &str, rule: &pb::IdentificationRule) -> RuleKey {
    (
        class.to_owned(),
        rule.attributes.clone(),
        rule.ignore_case,
        rule.match_related_classes,
    )
}

/// Whether a rule can be looked up in batch: it names attributes only
/// (core fields are compared by SQL functions Rust would have to mimic).
fn batchable(rule: &pb::IdentificationRule) -> bool {
    !rule.attributes.is_empty()
        && rule
            .attributes
            .iter()
            .all(|key| key != "display_name" && key != "location")
}

/// Whether `candidate` has `ci`'s values for every attribute of `rule`.
fn candidate_matches(candidate: &Candidate, rule: &pb::IdentificationRule, ci: &pb::Ci) -> bool {
    rule.attributes.iter().all(|key| {
        let (Some(text), Some((their_text, their_norm))) =
            (reported_text(ci, key), candidate.values.get(key))
        else {
            return false;
        };
        if rule.ignore_case {
            *their_norm == model::normalize(&text)
        } else {
            *their_text == text && *their_norm == model::normalize(&text)
        }
    })
}

/// Whether the CI `stored` (locked by the caller) still has `reported`'s
/// values for every attribute of `rule`, compared as the lookup compares them.
pub fn still_matches(rule: &pb::IdentificationRule, stored: &pb::Ci, reported: &pb::Ci) -> bool {
    rule.attributes.iter().all(|key| {
        match (reported_text(reported, key), reported_text(stored, key)) {
            (Some(ours), Some(theirs)) => {
                model::normalize(&ours) == model::normalize(&theirs)
                    && (rule.ignore_case || ours == theirs)
            }
            _ => false,
        }
    })
}

/// The correlation ids of `ids` that `source` has sighted (mapped to a CI).
async fn sighted(
    conn: &mut AnyConnection,
    source: &str,
    ids: &[&str],
) -> Result<HashSet<String>, StoreError> {
    let mut out = HashSet::new();
    for chunk in ids.chunks(CHUNK) {
        let mut sql = SqlBuilder::new("SELECT correlation_id FROM ci_sightings WHERE source = ");
        sql.push_bind(SqlValue::Text(source.to_owned()))
            .push(" AND correlation_id <> '' AND correlation_id IN ")
            .push_bind_list(chunk.iter().map(|c| SqlValue::Text((*c).to_owned())));
        for row in itsm_store::db::query(&sql).fetch_all(&mut *conn).await? {
            out.insert(row.try_get::<String, _>(0)?);
        }
    }
    Ok(out)
}

/// The CIs of `classes` whose first attribute of `rule` has one of the
/// normalized `values`, with their values of every attribute of the rule.
/// `None` when a value is shared by so many CIs that the lookup was cut
/// short (those items are left to `identify`, which bounds its candidates).
async fn lookup(
    conn: &mut AnyConnection,
    classes: &[&str],
    rule: &pb::IdentificationRule,
    values: &[String],
) -> Result<Option<Vec<Candidate>>, StoreError> {
    let Some(driver) = rule.attributes.first() else {
        return Ok(Some(Vec::new()));
    };
    let mut hits: Vec<Hit> = Vec::new();
    for chunk in values.chunks(CHUNK) {
        // A few CIs per value are expected (one when identification works);
        // more than this is a value too common to look up in batch.
        let limit = chunk.len() * 2 + 16;
        let mut sql = SqlBuilder::new(
            "SELECT c.id, c.uid, c.ci_class, CAST(c.status AS BIGINT) FROM ci_attributes a \
             JOIN cis c ON c.id = a.ci_id WHERE a.key = ",
        );
        sql.push_bind(SqlValue::Text(driver.clone()))
            .push(" AND a.norm_value IN ")
            .push_bind_list(chunk.iter().map(|v| SqlValue::Text(v.clone())))
            .push(" AND c.ci_class IN ")
            .push_bind_list(classes.iter().flat_map(|id| {
                [
                    SqlValue::Text((*id).to_owned()),
                    SqlValue::Text(format!("classes/{id}")),
                ]
            }))
            .push(" LIMIT ")
            .push_bind(SqlValue::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
        let rows = itsm_store::db::query(&sql).fetch_all(&mut *conn).await?;
        if rows.len() >= limit {
            return Ok(None);
        }
        for row in &rows {
            hits.push(hit_of(row)?);
        }
    }
    let mut candidates: HashMap<i64, Candidate> = hits
        .into_iter()
        .map(|hit| {
            (
                hit.id,
                Candidate {
                    hit,
                    values: HashMap::new(),
                },
            )
        })
        .collect();
    let ids: Vec<i64> = candidates.keys().copied().collect();
    for chunk in ids.chunks(CHUNK) {
        let mut sql = SqlBuilder::new(
            "SELECT ci_id, key, text_value, norm_value FROM ci_attributes WHERE ci_id IN ",
        );
        sql.push_bind_list(chunk.iter().copied())
            .push(" AND key IN ")
            .push_bind_list(rule.attributes.iter().map(|k| SqlValue::Text(k.clone())));
        for row in itsm_store::db::query(&sql).fetch_all(&mut *conn).await? {
            let id: i64 = row.try_get(0)?;
            if let Some(candidate) = candidates.get_mut(&id) {
                candidate
                    .values
                    .insert(row.try_get(1)?, (row.try_get(2)?, row.try_get(3)?));
            }
        }
    }
    let mut out: Vec<Candidate> = candidates.into_values().collect();
    out.sort_by_key(|c| c.hit.id);
    Ok(Some(out))
}

/// The classes a rule of `class` looks in.
fn rule_classes<'m>(
    model: &'m Model,
    class: &'m str,
    rule: &pb::IdentificationRule,
) -> Vec<&'m str> {
    if rule.match_related_classes {
        let mut classes = model.ancestors(class);
        classes.extend(model.descendants(class));
        classes
    } else {
        vec![class]
    }
}

/// Predicts, for each of `items` ((correlation id, reported CI), not
/// checked yet: an item with no CI gets no prediction) reported by `source`, the CI a rule identifies it as, when
/// `identify` would find exactly that one; `None` for every other item.
pub async fn predict(
    conn: &mut AnyConnection,
    model: &Model,
    source: &str,
    items: &[(&str, Option<&pb::Ci>)],
) -> Result<Vec<Option<Predicted>>, ApiError> {
    let mut out = vec![None; items.len()];
    let correlations: Vec<&str> = items
        .iter()
        .map(|(c, _)| *c)
        .filter(|c| !c.is_empty())
        .collect();
    let sighted = sighted(conn, source, &correlations).await?;
    // The items to predict, with their applicable rules (all batchable).
    let mut todo: Vec<(usize, Vec<pb::IdentificationRule>)> = Vec::new();
    for (index, (correlation, ci)) in items.iter().enumerate() {
        let Some(ci) = ci else { continue };
        if sighted.contains(*correlation) {
            continue; // the mapping decides: the item's own fast path
        }
        let rules = applicable_rules(model, ci);
        if !rules.is_empty() && rules.iter().all(batchable) {
            todo.push((index, rules));
        }
    }
    // One lookup per (class, rule): the values of every item that uses it.
    let mut groups: HashMap<RuleKey, (pb::IdentificationRule, Vec<String>)> = HashMap::new();
    for (index, rules) in &todo {
        let Some(ci) = items[*index].1 else { continue };
        let class = model::class_id(&ci.ci_class).unwrap_or_default().to_owned();
        for rule in rules {
            if let Some(text) = rule.attributes.first().and_then(|k| reported_text(ci, k)) {
                groups
                    .entry(rule_key(&class, rule))
                    .or_insert_with(|| (rule.clone(), Vec::new()))
                    .1
                    .push(model::normalize(&text));
            }
        }
    }
    let mut found: HashMap<RuleKey, Option<Vec<Candidate>>> = HashMap::new();
    for (key, (rule, mut values)) in groups {
        values.sort_unstable();
        values.dedup();
        let classes = rule_classes(model, &key.0, &rule);
        let candidates = lookup(conn, &classes, &rule, &values).await?;
        found.insert(key, candidates);
    }
    for (index, rules) in todo {
        let Some(ci) = items[index].1 else { continue };
        let class = model::class_id(&ci.ci_class).unwrap_or_default();
        out[index] = decide(model, class, ci, &rules, &found);
    }
    Ok(out)
}

/// `identify`'s decision over the looked-up candidates; `Some` only for one
/// CI found.
fn decide(
    model: &Model,
    class: &str,
    ci: &pb::Ci,
    rules: &[pb::IdentificationRule],
    found: &HashMap<RuleKey, Option<Vec<Candidate>>>,
) -> Option<Predicted> {
    let mut deciding: Option<(&pb::IdentificationRule, Hit)> = None;
    for rule in rules {
        // A lookup cut short: no prediction.
        let candidates = found.get(&rule_key(class, rule))?.as_ref()?;
        let hits: Vec<&Candidate> = candidates
            .iter()
            .filter(|c| candidate_matches(c, rule, ci))
            .collect();
        match (&deciding, hits.as_slice()) {
            (_, []) => {}
            (None, [one]) => deciding = Some((rule, one.hit.clone())),
            (None, _) => return None, // several: MULTIPLE_MATCHES
            (Some((_, first)), [other]) if first.id != other.hit.id => return None, // CONFLICTING_RULES
            (Some(_), _) => {}
        }
    }
    let (rule, hit) = deciding?;
    match single(model, class, hit, rule.attributes.clone()) {
        Identification::Found { ci_id, name, .. } => Some(Predicted {
            ci_id,
            name,
            rule: rule.clone(),
        }),
        _ => None,
    }
}
