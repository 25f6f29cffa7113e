//! What every handler shares: the call's caller and correlation ids, the
//! row-level rule for reading an incident, and the audit entry and event
//! every change writes in its transaction.

pub use itsm_auth::Call;
use itsm_auth::rows;
use itsm_platform::ApiError;
use itsm_proto::itsm::common::v1 as common;
use itsm_store::audit::FieldChange;
use itsm_store::{StoreError, Tx};
use sqlx::AnyConnection;

use crate::convert;
use crate::domain::{self, Incident};
use crate::store::{StoredIncident, incidents};

/// The bus stream and event source of this practice.
const STREAM: &str = "incidents";
const SOURCE: &str = "itsm.incidents";

/// Event types (events.proto).
pub const CREATED: &str = "incidents.incident.created";
pub const UPDATED: &str = "incidents.incident.updated";
pub const PRIORITY_CHANGED: &str = "incidents.incident.priority_changed";
pub const COMMENTED: &str = "incidents.incident.commented";

/// The incident named `name` (the request's field `field`) as `call`'s
/// caller may see it: INVALID_ARGUMENT for a malformed name; NOT_FOUND for an
/// unknown one, and for one a requester may not see (never revealing that it
/// exists). `lock` as for [`incidents::select_incident`].
pub async fn load(
    conn: &mut AnyConnection,
    call: &Call,
    name: &str,
    field: &str,
    lock: &'static str,
) -> Result<StoredIncident, ApiError> {
    let number = domain::number_from_name(name, field)?;
    let found = incidents::select_incident(conn, number, lock).await?;
    visible(call, name, found)
}

/// `found` (the incident named `name`) if `call`'s caller may see it,
/// NOT_FOUND otherwise, as [`load`] answers.
pub fn visible(
    call: &Call,
    name: &str,
    found: Option<StoredIncident>,
) -> Result<StoredIncident, ApiError> {
    found
        .filter(|s| rows::may_see_ticket(&call.caller, &s.incident.caller, &s.incident.watchers))
        .ok_or_else(|| ApiError::not_found(name))
}

pub use itsm_store::change::Change;

/// The audit entry and the event of a change, in the change's transaction.
pub async fn record(
    tx: &mut Tx,
    call: &Call,
    change: Change<'_>,
    now: i64,
) -> Result<(), StoreError> {
    itsm_store::change::record(tx, &call.origin(STREAM, SOURCE), change, now).await
}

/// The audit entry and the `IncidentEvent` of a change of `incident`.
pub async fn record_incident(
    tx: &mut Tx,
    call: &Call,
    incident: &Incident,
    (action, event_type): (&str, &str),
    changes: Vec<FieldChange>,
    journal_entry: Option<common::JournalEntry>,
    now: i64,
) -> Result<(), StoreError> {
    let name = incident.name();
    let payload = convert::event_payload(incident, &changes, journal_entry);
    let change = Change {
        resource: &name,
        version: incident.version,
        action,
        event_type,
        changes,
        payload,
    };
    record(tx, call, change, now).await
}

/// Gathers the INVALID_ARGUMENT errors of several checks into one, so the
/// caller learns every bad field at once. Any other error wins as it is.
#[derive(Debug, Default)]
pub struct Checks {
    violations: Vec<itsm_platform::FieldViolation>,
    other: Option<ApiError>,
}

impl Checks {
    /// The check's value, or `None` with its violations kept.
    pub fn take<T>(&mut self, result: Result<T, ApiError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) if error.code() == itsm_platform::ErrorCode::InvalidArgument => {
                self.violations
                    .extend(error.field_violations().iter().cloned());
                None
            }
            Err(error) => {
                self.other.get_or_insert(error);
                None
            }
        }
    }

    /// Records a violation of `field` unless `ok`.
    pub fn check(&mut self, ok: bool, field: &str, description: &str) {
        if !ok {
            self.violations.push(itsm_platform::FieldViolation {
                field: field.to_owned(),
                description: description.to_owned(),
            });
        }
    }

    /// `Ok(())` when every check passed.
    pub fn finish(self) -> Result<(), ApiError> {
        match (self.other, self.violations.is_empty()) {
            (Some(error), _) => Err(error),
            (None, true) => Ok(()),
            (None, false) => Err(ApiError::invalid_fields(self.violations)),
        }
    }
}
