//! Identification: which existing CI a reported or created CI is, by the
//! (source, correlation id) mapping and the ordered identification rules of
//! its class.
//!
//! A rule applies when every attribute it names has a value in the CI (the
//! core fields `display_name` and `location` allowed). Each applicable rule
//! is one indexed query (`ci_attributes_norm`: one join per attribute). The
//! first applicable rule that finds anything decides; the later applicable
//! rules are still checked, so that two rules pointing at different CIs are
//! parked (CONFLICTING_RULES) instead of guessed. Retired CIs are found too,
//! and parked (RETIRED_MATCH) rather than revived.

pub mod batch;

use itsm_platform::ApiError;
use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::{SqlBuilder, SqlValue, StoreError};
use sqlx::{AnyConnection, Row as _};

use crate::model::{self, Model};

/// The most candidates a rule reports (a parked match lists them).
const MAX_CANDIDATES: usize = 20;

/// What the identification rules found for one CI.
#[derive(Debug, Clone, PartialEq)]
pub enum Identification {
    /// No rule that applies found a CI.
    New,
    /// One CI, found by the rule with these attribute keys (empty when the
    /// (source, correlation id) mapping found it).
    Found {
        ci_id: i64,
        name: String,
        rule: Vec<String>,
    },
    /// Ambiguous: the candidates and why.
    Ambiguous {
        reason: pb::ParkReason,
        candidates: Vec<pb::ParkedCandidate>,
    },
}

/// A CI a lookup found.
#[derive(Debug, Clone, PartialEq)]
struct Hit {
    id: i64,
    name: String,
    class: String,
    retired: bool,
}

/// Identifies `ci` (of a concrete class in `model`): first by the
/// (source, correlation id) mapping when `correlation` is given, then by the
/// rules in force for its class, in order; the first rule whose attributes
/// all have values in `ci` and that finds anything decides.
///
/// A CI found (by the mapping or a rule) that is retired is
/// `Ambiguous(RETIRED_MATCH)`; one of a class neither an ancestor nor a
/// descendant of `ci`'s class is `Ambiguous(CLASS_MISMATCH)`; a later
/// applicable rule finding a different single CI is
/// `Ambiguous(CONFLICTING_RULES)`; several CIs for the deciding rule is
/// `Ambiguous(MULTIPLE_MATCHES)`.
pub async fn identify(
    conn: &mut AnyConnection,
    model: &Model,
    ci: &pb::Ci,
    correlation: Option<(&str, &str)>,
) -> Result<Identification, ApiError> {
    let class = model::class_id(&ci.ci_class).unwrap_or_default();
    if let Some((source, correlation_id)) = correlation.filter(|(_, c)| !c.is_empty())
        && let Some(hit) = by_correlation(conn, source, correlation_id).await?
    {
        return Ok(single(model, class, hit, Vec::new()));
    }
    let rules = applicable_rules(model, ci);
    let mut deciding: Option<(usize, Vec<Hit>)> = None;
    for (index, rule) in rules.iter().enumerate() {
        let limit = if deciding.is_some() {
            2
        } else {
            MAX_CANDIDATES
        };
        let hits = by_rule(conn, model, class, ci, rule, limit).await?;
        if hits.is_empty() {
            continue;
        }
        match &deciding {
            None => {
                if hits.len() > 1 {
                    return Ok(Identification::Ambiguous {
                        reason: pb::ParkReason::MultipleMatches,
                        candidates: hits
                            .into_iter()
                            .map(|h| candidate(&h, &rule.attributes))
                            .collect(),
                    });
                }
                deciding = Some((index, hits));
            }
            Some((first, found)) => {
                if let ([one], [other]) = (found.as_slice(), hits.as_slice())
                    && one.id != other.id
                {
                    return Ok(Identification::Ambiguous {
                        reason: pb::ParkReason::ConflictingRules,
                        candidates: vec![
                            candidate(one, &rules[*first].attributes),
                            candidate(other, &rule.attributes),
                        ],
                    });
                }
            }
        }
    }
    Ok(match deciding {
        None => Identification::New,
        Some((index, mut hits)) => match hits.pop() {
            Some(hit) => single(model, class, hit, rules[index].attributes.clone()),
            None => Identification::New,
        },
    })
}

/// The identification rules in force for `ci`'s class that apply to it:
/// every attribute they name has a value in `ci`.
pub fn applicable_rules(model: &Model, ci: &pb::Ci) -> Vec<pb::IdentificationRule> {
    let class = model::class_id(&ci.ci_class).unwrap_or_default();
    model
        .identification_rules(class)
        .into_iter()
        .filter(|rule| {
            !rule.attributes.is_empty()
                && rule
                    .attributes
                    .iter()
                    .all(|key| reported_text(ci, key).is_some())
        })
        .collect()
}

/// Keys for transaction-scoped locks that serialize the creation of `ci`:
/// one for the (source, correlation id) pair when given, one for the values
/// of the first applicable identification rule. Sorted (lock them in order).
pub fn identity_locks(model: &Model, ci: &pb::Ci, correlation: Option<(&str, &str)>) -> Vec<i64> {
    let mut keys = Vec::new();
    if let Some((source, correlation_id)) = correlation.filter(|(_, c)| !c.is_empty()) {
        keys.push(fnv64(&["correlation", source, correlation_id]));
    }
    if let Some(rule) = applicable_rules(model, ci).first() {
        let mut parts: Vec<String> = vec!["rule".to_owned()];
        for key in &rule.attributes {
            parts.push(key.clone());
            parts.push(
                reported_text(ci, key)
                    .map(|t| model::normalize(&t))
                    .unwrap_or_default(),
            );
        }
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        keys.push(fnv64(&parts));
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// FNV-1a over the parts (separated), as a signed 64-bit lock key: stable
/// across processes and versions.
fn fnv64(parts: &[&str]) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0xff)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// The value `ci` reports for an identification key, as text; `None` when
/// it has none (unset or blank).
fn reported_text(ci: &pb::Ci, key: &str) -> Option<String> {
    let text = match key {
        "display_name" => Some(ci.display_name.clone()),
        "location" => Some(ci.location.clone()),
        _ => ci.attributes.get(key).and_then(model::value_text),
    }?;
    (!text.trim().is_empty()).then_some(text)
}

fn candidate(hit: &Hit, rule: &[String]) -> pb::ParkedCandidate {
    pb::ParkedCandidate {
        ci: hit.name.clone(),
        matched_rule: rule.to_vec(),
    }
}

/// The outcome for one CI found by `rule`.
fn single(model: &Model, class: &str, hit: Hit, rule: Vec<String>) -> Identification {
    let related =
        hit.class == class || model.is_a(&hit.class, class) || model.is_a(class, &hit.class);
    let reason = if hit.retired {
        Some(pb::ParkReason::RetiredMatch)
    } else if !related {
        Some(pb::ParkReason::ClassMismatch)
    } else {
        None
    };
    match reason {
        Some(reason) => Identification::Ambiguous {
            reason,
            candidates: vec![candidate(&hit, &rule)],
        },
        None => Identification::Found {
            ci_id: hit.id,
            name: hit.name,
            rule,
        },
    }
}

fn hit_of(row: &sqlx::any::AnyRow) -> Result<Hit, StoreError> {
    let id: i64 = row.try_get(0)?;
    let uid: String = row.try_get(1)?;
    let class: String = row.try_get(2)?;
    let status: i64 = row.try_get(3)?;
    let name = if uid.starts_with("cis/") {
        uid
    } else {
        format!("cis/{uid}")
    };
    let class = model::class_id(&class).map(str::to_owned).unwrap_or(class);
    Ok(Hit {
        id,
        name,
        class,
        retired: status == pb::CiStatus::Retired as i64,
    })
}

/// The CI the (source, correlation id) pair was sighted as.
async fn by_correlation(
    conn: &mut AnyConnection,
    source: &str,
    correlation_id: &str,
) -> Result<Option<Hit>, ApiError> {
    let row = sqlx::query(
        "SELECT c.id, c.uid, c.ci_class, CAST(c.status AS BIGINT) FROM ci_sightings s \
         JOIN cis c ON c.id = s.ci_id \
         WHERE s.source = $1 AND s.correlation_id = $2 AND s.correlation_id <> ''",
    )
    .bind(source)
    .bind(correlation_id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::from)?;
    Ok(row.as_ref().map(hit_of).transpose()?)
}

/// The CIs `rule` finds for `ci` (at most `limit`, by internal id).
async fn by_rule(
    conn: &mut AnyConnection,
    model: &Model,
    class: &str,
    ci: &pb::Ci,
    rule: &pb::IdentificationRule,
    limit: usize,
) -> Result<Vec<Hit>, ApiError> {
    let mut classes: Vec<&str> = Vec::new();
    if rule.match_related_classes {
        classes.extend(model.ancestors(class));
        classes.extend(model.descendants(class));
    } else {
        classes.push(class);
    }
    let mut sql =
        SqlBuilder::new("SELECT c.id, c.uid, c.ci_class, CAST(c.status AS BIGINT) FROM cis c");
    let mut conditions = SqlBuilder::new(" WHERE c.ci_class IN (");
    for (i, id) in classes.iter().enumerate() {
        if i > 0 {
            conditions.push(", ");
        }
        conditions.push_bind(SqlValue::Text((*id).to_owned()));
        conditions.push(", ");
        conditions.push_bind(SqlValue::Text(format!("classes/{id}")));
    }
    conditions.push(")");
    let mut driven = false;
    for (i, key) in rule.attributes.iter().enumerate() {
        let Some(text) = reported_text(ci, key) else {
            return Ok(Vec::new());
        };
        let norm = model::normalize(&text);
        match key.as_str() {
            "display_name" => {
                if rule.ignore_case {
                    conditions.push(" AND lower(trim(c.display_name)) = ");
                    conditions.push_bind(SqlValue::Text(norm));
                } else {
                    conditions.push(" AND c.display_name = ");
                    conditions.push_bind(SqlValue::Text(text));
                }
            }
            "location" => {
                let uid = crate::ci_uid(&text).unwrap_or(&text).to_owned();
                conditions.push(" AND c.location IN (");
                conditions.push_bind(SqlValue::Text(uid.clone()));
                conditions.push(", ");
                conditions.push_bind(SqlValue::Text(format!("cis/{uid}")));
                conditions.push(")");
            }
            _ if !driven => {
                // The first attribute drives the lookup (ci_attributes_norm)...
                driven = true;
                let alias = format!("a{i}");
                sql.push(&format!(
                    " JOIN ci_attributes {alias} ON {alias}.ci_id = c.id AND {alias}.key = "
                ));
                sql.push_bind(SqlValue::Text(key.clone()));
                sql.push(&format!(" AND {alias}.norm_value = "));
                sql.push_bind(SqlValue::Text(norm));
                if !rule.ignore_case {
                    sql.push(&format!(" AND {alias}.text_value = "));
                    sql.push_bind(SqlValue::Text(text));
                }
            }
            _ => {
                // ...the others are checked per candidate by primary key: a
                // join let the planner read every CI sharing a common value
                // (all servers of one DNS domain) before matching.
                let alias = format!("a{i}");
                let column = if rule.ignore_case {
                    "norm_value"
                } else {
                    "text_value"
                };
                conditions.push(&format!(
                    " AND (SELECT {alias}.{column} FROM ci_attributes {alias} \
                     WHERE {alias}.ci_id = c.id AND {alias}.key = "
                ));
                conditions.push_bind(SqlValue::Text(key.clone()));
                conditions.push(") = ");
                conditions.push_bind(SqlValue::Text(if rule.ignore_case { norm } else { text }));
            }
        }
    }
    sql.append(&conditions);
    sql.push(" ORDER BY c.id LIMIT ");
    sql.push_bind(SqlValue::Int(i64::try_from(limit).unwrap_or(2)));
    let rows = itsm_store::db::query(&sql)
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::from)?;
    Ok(rows.iter().map(hit_of).collect::<Result<Vec<_>, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_distinct() {
        assert_eq!(fnv64(&["a", "b"]), fnv64(&["a", "b"]));
        assert_ne!(fnv64(&["ab", ""]), fnv64(&["a", "b"]));
    }
}
