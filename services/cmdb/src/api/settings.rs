//! The CMDB settings (read and replaced by the CMDB admin with the etag
//! they read) and the audit trail of the configuration resources.

use itsm_platform::{ApiError, Violations};
use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::audit::{self, FieldChange};
use itsm_store::change::Change;
use itsm_store::{SqlValue, StoreError, etag, page};

use super::CmdbApi;
use super::call::{self, Call};
use super::classes::check::{field_changes, mask_fields, payload};
use crate::model::{self, class_id};
use crate::store::settings::{self as store, NAME};

const UPDATED: &str = "cmdb.settings.updated";

/// What UpdateCmdbSettings may change.
const EDITABLE: &[&str] = &[
    "stale_after",
    "orphan_exempt_classes",
    "health_refresh_interval",
    "default_impact_depth",
];

/// The deepest default impact walk.
const MAX_IMPACT_DEPTH: i32 = 50;

fn duration_text(d: Option<&prost_types::Duration>) -> String {
    d.map(|d| {
        if d.nanos == 0 {
            format!("{}s", d.seconds)
        } else {
            format!("{}.{:09}s", d.seconds, d.nanos)
        }
    })
    .unwrap_or_default()
}

/// Whether `d` is at least `seconds` long (and well-formed: no negative part).
fn at_least(d: Option<&prost_types::Duration>, seconds: i64, nanos: i32) -> bool {
    d.is_some_and(|d| {
        d.seconds >= 0
            && (0..1_000_000_000).contains(&d.nanos)
            && (d.seconds, d.nanos) >= (seconds, nanos)
    })
}

fn settings_changes(before: &pb::CmdbSettings, after: &pb::CmdbSettings) -> Vec<FieldChange> {
    let mut changes = Vec::new();
    let mut field = |name: &str, old: String, new: String| {
        if old != new {
            changes.push(FieldChange::new(name, old, new));
        }
    };
    field(
        "stale_after",
        duration_text(before.stale_after.as_ref()),
        duration_text(after.stale_after.as_ref()),
    );
    field(
        "orphan_exempt_classes",
        before.orphan_exempt_classes.join(", "),
        after.orphan_exempt_classes.join(", "),
    );
    field(
        "health_refresh_interval",
        duration_text(before.health_refresh_interval.as_ref()),
        duration_text(after.health_refresh_interval.as_ref()),
    );
    field(
        "default_impact_depth",
        before.default_impact_depth.to_string(),
        after.default_impact_depth.to_string(),
    );
    changes
}

/// The resource an audit trail parent names, or NOT_FOUND.
fn audit_resource(parent: &str) -> Result<&str, ApiError> {
    let known = if parent == NAME {
        true
    } else if let Some((kind, id)) = parent.split_once('/') {
        match kind {
            "classes" | "relationshipTypes" | "discoverySources" => model::is_valid_id(id),
            "precedenceRules" => uuid::Uuid::try_parse(id).is_ok(),
            _ => false,
        }
    } else {
        false
    };
    if known {
        Ok(parent)
    } else {
        Err(ApiError::not_found(format!(
            "{parent:?} (expected classes/<id>, relationshipTypes/<id>, discoverySources/<id>, \
             precedenceRules/<uuid> or cmdbSettings)"
        )))
    }
}

impl CmdbApi {
    pub(super) async fn get_cmdb_settings(
        &self,
        _call: &Call,
        _request: pb::GetCmdbSettingsRequest,
    ) -> Result<pb::CmdbSettings, ApiError> {
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        Ok(store::load(&mut conn).await?)
    }

    pub(super) async fn update_cmdb_settings(
        &self,
        call: &Call,
        request: pb::UpdateCmdbSettingsRequest,
    ) -> Result<pb::CmdbSettings, ApiError> {
        let sent = request.settings.unwrap_or_default();
        let paths = request.update_mask.map(|m| m.paths).unwrap_or_default();
        let mut v = Violations::new();
        let fields = mask_fields(&paths, EDITABLE, &mut v);
        let model = self.model().await?;
        for field in &fields {
            match *field {
                "stale_after" => v.check(
                    at_least(sent.stale_after.as_ref(), 0, 1),
                    "settings.stale_after",
                    "must be longer than zero",
                ),
                "health_refresh_interval" => v.check(
                    at_least(sent.health_refresh_interval.as_ref(), 60, 0),
                    "settings.health_refresh_interval",
                    "must be at least one minute",
                ),
                "default_impact_depth" => v.check(
                    (1..=MAX_IMPACT_DEPTH).contains(&sent.default_impact_depth),
                    "settings.default_impact_depth",
                    format!("must be between 1 and {MAX_IMPACT_DEPTH}"),
                ),
                _ => {
                    for (i, name) in sent.orphan_exempt_classes.iter().enumerate() {
                        let field = format!("settings.orphan_exempt_classes[{i}]");
                        if class_id(name).and_then(|c| model.class(c)).is_none() {
                            v.add(field, format!("\"{name}\" is not an existing class"));
                        } else if sent.orphan_exempt_classes[..i].contains(name) {
                            v.add(field, format!("\"{name}\" is listed twice"));
                        }
                    }
                }
            }
        }
        v.check(
            !request.etag.is_empty(),
            "etag",
            "is required: the etag of the settings as last read",
        );
        v.into_result()?;

        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        let lock = self.db.backend().lock_suffix();
        let (version, before) = store::select_settings(&mut tx, lock).await?;
        // "v0" names the defaults, before the first change.
        if request.etag != before.etag {
            if request.etag == "v0" {
                return Err(ApiError::stale_etag(NAME));
            }
            etag::check(NAME, &request.etag, version, true)?;
        }
        let mut after = before.clone();
        for field in &fields {
            match *field {
                "stale_after" => after.stale_after = sent.stale_after,
                "health_refresh_interval" => {
                    after.health_refresh_interval = sent.health_refresh_interval;
                }
                "default_impact_depth" => after.default_impact_depth = sent.default_impact_depth,
                _ => after
                    .orphan_exempt_classes
                    .clone_from(&sent.orphan_exempt_classes),
            }
        }
        let changes = settings_changes(&before, &after);
        if changes.is_empty() {
            return Ok(before);
        }
        let version = version + 1;
        after.etag = etag::from_version(version);
        store::upsert_settings(&mut tx, &after, version, now).await?;
        let event = pb::CmdbSettingsEvent {
            settings: Some(after.clone()),
            changes: field_changes(&changes),
        };
        let change = Change {
            resource: NAME,
            version,
            action: "update",
            event_type: UPDATED,
            payload: payload("CmdbSettingsEvent", &event),
            changes,
        };
        call::record(&mut tx, call, change, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(after)
    }

    pub(super) async fn list_audit_entries(
        &self,
        _call: &Call,
        request: pb::ListAuditEntriesRequest,
    ) -> Result<pb::ListAuditEntriesResponse, ApiError> {
        let resource = audit_resource(&request.parent)?;
        let limit = page::page_size(request.page_size)?;
        let tokens = self.tokens().await?;
        // The token is bound to this resource's trail and carries the last entry's id.
        let query = format!("audit\u{0}{resource}");
        let after = if request.page_token.is_empty() {
            0
        } else {
            match tokens.decode(&request.page_token, &query)?.as_slice() {
                [SqlValue::Int(id)] => *id,
                _ => {
                    return Err(ApiError::invalid_field(
                        "page_token",
                        "is not a token of this list; start again without one",
                    ));
                }
            }
        };
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let wanted = i64::try_from(limit + 1).unwrap_or(i64::MAX);
        let mut entries = audit::select_for_resource(&mut conn, resource, after, wanted).await?;
        let mut next_page_token = String::new();
        if entries.len() > limit {
            entries.truncate(limit);
            if let Some((last, _)) = entries.last() {
                next_page_token = tokens.encode(&query, &[SqlValue::Int(*last)]);
            }
        }
        Ok(pb::ListAuditEntriesResponse {
            entries: entries
                .iter()
                .map(|(id, record)| record.to_proto(*id))
                .collect(),
            next_page_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use itsm_platform::ErrorCode;

    #[test]
    fn audit_parents_of_unknown_kinds_are_not_found() {
        for good in [
            "classes/linux_server",
            "relationshipTypes/depends_on",
            "discoverySources/sccm",
            "precedenceRules/0b7e3c1e-8f0a-4d5e-9a43-1c2d3e4f5a6b",
            "cmdbSettings",
        ] {
            assert_eq!(audit_resource(good).unwrap(), good);
        }
        for bad in [
            "",
            "cis/x",
            "classes/",
            "classes/Bad",
            "precedenceRules/x",
            "cmdbsettings",
        ] {
            assert_eq!(
                audit_resource(bad).unwrap_err().code(),
                ErrorCode::NotFound,
                "{bad}"
            );
        }
    }
}
