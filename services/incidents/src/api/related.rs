//! Watchers, links, and the field-level audit trail of an incident.

use itsm_platform::ApiError;
use itsm_proto::itsm::incidents::v1 as pb;
use itsm_store::audit::FieldChange;
use itsm_store::{SqlValue, StoreError, audit, page};

use super::IncidentsApi;
use super::call::{self, Call, Checks, UPDATED};
use crate::convert;
use crate::domain::incident::Incident;
use crate::domain::{self, LinkType, related};
use crate::store::incidents;

/// A change to an incident's watchers or links.
enum Edit {
    AddWatcher(String),
    RemoveWatcher(String),
    AddLink(LinkType, String),
    RemoveLink(LinkType, String),
}

impl Edit {
    fn action(&self) -> &'static str {
        match self {
            Self::AddWatcher(_) => "add_watcher",
            Self::RemoveWatcher(_) => "remove_watcher",
            Self::AddLink(..) => "add_link",
            Self::RemoveLink(..) => "remove_link",
        }
    }
}

fn checked_watcher(name: &str, watcher: &str) -> Result<(), ApiError> {
    let mut checks = Checks::default();
    checks.take(domain::number_from_name(name, "name"));
    checks.take(related::check_watcher(watcher));
    checks.finish()
}

fn checked_link(name: &str, link_type: i32, target: &str) -> Result<LinkType, ApiError> {
    let mut checks = Checks::default();
    checks.take(domain::number_from_name(name, "name"));
    let link_type = checks.take(related::check_link(name, link_type, target));
    checks.finish()?;
    Ok(link_type.unwrap_or(LinkType::Related))
}

impl IncidentsApi {
    pub(super) async fn add_watcher(
        &self,
        call: &Call,
        request: pb::AddWatcherRequest,
    ) -> Result<pb::Incident, ApiError> {
        checked_watcher(&request.name, &request.watcher)?;
        self.edit(call, &request.name, Edit::AddWatcher(request.watcher))
            .await
    }

    pub(super) async fn remove_watcher(
        &self,
        call: &Call,
        request: pb::RemoveWatcherRequest,
    ) -> Result<pb::Incident, ApiError> {
        checked_watcher(&request.name, &request.watcher)?;
        self.edit(call, &request.name, Edit::RemoveWatcher(request.watcher))
            .await
    }

    pub(super) async fn add_link(
        &self,
        call: &Call,
        request: pb::AddLinkRequest,
    ) -> Result<pb::Incident, ApiError> {
        let link_type = checked_link(&request.name, request.r#type, &request.target)?;
        self.edit(
            call,
            &request.name,
            Edit::AddLink(link_type, request.target),
        )
        .await
    }

    pub(super) async fn remove_link(
        &self,
        call: &Call,
        request: pb::RemoveLinkRequest,
    ) -> Result<pb::Incident, ApiError> {
        let link_type = checked_link(&request.name, request.r#type, &request.target)?;
        self.edit(
            call,
            &request.name,
            Edit::RemoveLink(link_type, request.target),
        )
        .await
    }

    /// Applies `edit`; adding what is there or removing what is not writes nothing.
    async fn edit(&self, call: &Call, name: &str, edit: Edit) -> Result<pb::Incident, ApiError> {
        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        let lock = self.db.backend().lock_suffix();
        let stored = call::load(&mut tx, call, name, "name", lock).await?;
        let (id, mut incident): (i64, Incident) = (stored.id, stored.incident);
        let change: Option<FieldChange> = match &edit {
            Edit::AddWatcher(w) => incident.add_watcher(w),
            Edit::RemoveWatcher(w) => incident.remove_watcher(w),
            Edit::AddLink(t, target) => incident.add_link(*t, target, &call.actor, now),
            Edit::RemoveLink(t, target) => incident.remove_link(*t, target),
        };
        let Some(change) = change else {
            tx.commit().await.map_err(StoreError::from)?;
            return Ok(convert::incident(&incident));
        };
        match &edit {
            Edit::AddWatcher(w) => incidents::insert_watcher(&mut tx, id, w, now).await?,
            Edit::RemoveWatcher(w) => incidents::delete_watcher(&mut tx, id, w).await?,
            Edit::AddLink(t, target) => {
                if let Some(link) = incident
                    .links
                    .iter()
                    .find(|l| l.link_type == *t && l.target == *target)
                {
                    incidents::insert_link(&mut tx, id, link).await?;
                }
            }
            Edit::RemoveLink(t, target) => incidents::delete_link(&mut tx, id, *t, target).await?,
        }
        let previous = incident.version;
        incident.touch(now);
        incidents::update_incident(&mut tx, id, &incident, previous).await?;
        let kind = (edit.action(), UPDATED);
        call::record_incident(&mut tx, call, &incident, kind, vec![change], None, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(convert::incident(&incident))
    }

    pub(super) async fn list_audit_entries(
        &self,
        call: &Call,
        request: pb::ListAuditEntriesRequest,
    ) -> Result<pb::ListAuditEntriesResponse, ApiError> {
        let limit = page::page_size(request.page_size)?;
        let tokens = self.tokens().await?;
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let stored = call::load(&mut conn, call, &request.parent, "parent", "").await?;
        let name = stored.incident.name();
        // The token is bound to this incident's trail and carries the last entry's id.
        let query = format!("audit\u{0}{name}");
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
        let wanted = i64::try_from(limit + 1).unwrap_or(i64::MAX);
        let mut entries = audit::select_for_resource(&mut conn, &name, after, wanted).await?;
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
