//! Work notes and comments. Requesters add and read comments only, on
//! incidents they may see; the caller's comment on an incident awaiting the
//! caller resumes it in the same transaction.

use itsm_auth::rows;
use itsm_platform::ApiError;
use itsm_proto::itsm::common::v1 as common;
use itsm_proto::itsm::incidents::v1 as pb;
use itsm_store::idempotency::{self, Claim};
use itsm_store::list::ListRequest;
use itsm_store::{StoreError, Tx};
use prost::Message as _;

use super::IncidentsApi;
use super::call::{self, COMMENTED, Call, Checks};
use super::incidents::requester_refused;
use crate::convert;
use crate::domain;
use crate::domain::enums::JournalKind;
use crate::domain::journal::{self as rules, JournalEntry};
use crate::domain::lifecycle::Action;
use crate::store::{incidents, journal};

const ADD_METHOD: &str = "itsm.incidents.v1.IncidentService/AddJournalEntry";

impl IncidentsApi {
    pub(super) async fn add_journal_entry(
        &self,
        call: &Call,
        request: pb::AddJournalEntryRequest,
    ) -> Result<common::JournalEntry, ApiError> {
        let mut checks = Checks::default();
        checks.take(domain::number_from_name(&request.parent, "parent"));
        let kind = checks.take(rules::check_entry(request.kind, &request.body));
        checks.check(
            request.request_id.chars().count() <= 128,
            "request_id",
            "must be at most 128 characters (a UUID is recommended)",
        );
        checks.finish()?;
        let kind = kind.unwrap_or(JournalKind::Comment);
        if kind == JournalKind::WorkNote && itsm_auth::rows::is_requester_only(&call.caller) {
            return Err(requester_refused("write work notes; add a comment instead"));
        }

        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        if !request.request_id.is_empty() {
            let content = pb::AddJournalEntryRequest {
                request_id: String::new(),
                ..request.clone()
            };
            let hash = idempotency::hash_request(&content.encode_to_vec());
            let claim = idempotency::claim(&mut tx, ADD_METHOD, &request.request_id, &hash);
            if let Claim::Replay { resource } = claim.await? {
                let entry = replay(&mut tx, call, &resource).await?;
                tx.commit().await.map_err(StoreError::from)?;
                return Ok(entry);
            }
        }
        let lock = self.db.backend().lock_suffix();
        let stored = call::load(&mut tx, call, &request.parent, "parent", lock).await?;
        let (id, mut incident) = (stored.id, stored.incident);
        let previous = incident.version;
        let mut changes = Vec::new();
        if rules::is_caller_reply(&incident, kind, &call.caller.subject) {
            // Applies the table's row for this (ON_HOLD -> IN_PROGRESS) and touches the incident.
            let applied = incident.apply(&Action::CallerReply, &call.actor, now)?;
            changes = applied.changes;
        } else {
            incident.touch(now);
        }
        incidents::update_incident(&mut tx, id, &incident, previous).await?;
        let added =
            journal::insert_entry(&mut tx, id, kind, &request.body, &call.actor, now).await?;
        changes.insert(0, added.change());
        let entry = convert::journal_entry(&added, &incident.number);
        let action = match kind {
            JournalKind::WorkNote => "work_note",
            JournalKind::Comment => "comment",
        };
        let recorded = Some(entry.clone());
        call::record_incident(
            &mut tx,
            call,
            &incident,
            (action, COMMENTED),
            changes,
            recorded,
            now,
        )
        .await?;
        if !request.request_id.is_empty() {
            idempotency::complete(&mut tx, ADD_METHOD, &request.request_id, &entry.name).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(entry)
    }

    pub(super) async fn list_journal_entries(
        &self,
        call: &Call,
        request: pb::ListJournalEntriesRequest,
    ) -> Result<pb::ListJournalEntriesResponse, ApiError> {
        let tokens = self.tokens().await?;
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let stored = call::load(&mut conn, call, &request.parent, "parent", "").await?;
        drop(conn);
        let list = ListRequest {
            page_size: request.page_size,
            page_token: &request.page_token,
            filter: &request.filter,
            order_by: "",
        };
        let comments_only = !rows::may_see_work_notes(&call.caller);
        let (entries, next_page_token) =
            journal::select_page(&self.db, stored.id, &list, tokens, comments_only).await?;
        let number = &stored.incident.number;
        Ok(pb::ListJournalEntriesResponse {
            entries: entries
                .iter()
                .map(|e: &JournalEntry| convert::journal_entry(e, number))
                .collect(),
            next_page_token,
        })
    }
}

/// The entry a retried AddJournalEntry created first.
async fn replay(
    tx: &mut Tx,
    call: &Call,
    resource: &str,
) -> Result<common::JournalEntry, ApiError> {
    let (number, entry_id) = rules::parse_name(resource)
        .ok_or_else(|| ApiError::internal(format!("idempotency key names {resource:?}")))?;
    let stored = call::load(tx, call, &domain::name_of(number), "parent", "").await?;
    let entry = journal::select_entry(tx, stored.id, entry_id)
        .await?
        .ok_or_else(|| ApiError::not_found(resource))?;
    Ok(convert::journal_entry(&entry, number))
}
