//! What every handler shares: the bus stream and event types of this
//! practice, and the audit entry + event of a change.

pub use itsm_auth::Call;
pub use itsm_store::change::Change;
use itsm_store::{StoreError, Tx};

/// The bus stream and event source of this practice.
pub const STREAM: &str = "sla";
pub const SOURCE: &str = "itsm.sla";

/// The audit entry and the event of a change, in the change's transaction.
pub async fn record(
    tx: &mut Tx,
    call: &Call,
    change: Change<'_>,
    now: i64,
) -> Result<(), StoreError> {
    itsm_store::change::record(tx, &call.origin(STREAM, SOURCE), change, now).await
}

use itsm_platform::{ApiError, ErrorCode, Violations};
use itsm_proto::itsm::common::v1 as common;
use itsm_store::audit::FieldChange;
use prost::Message;

/// A protobuf message of this package as an event payload.
pub fn payload(type_name: &str, message: &impl Message) -> prost_types::Any {
    prost_types::Any {
        type_url: format!("type.googleapis.com/itsm.sla.v1.{type_name}"),
        value: message.encode_to_vec(),
    }
}

/// Audit changes as the events carry them.
pub fn field_changes(changes: &[FieldChange]) -> Vec<common::FieldChange> {
    changes
        .iter()
        .map(|c| common::FieldChange {
            field: c.field.clone(),
            old_value: c.old.clone(),
            new_value: c.new.clone(),
        })
        .collect()
}

/// The fields of an update mask, each among `editable`, every problem named.
pub fn mask_fields(
    paths: &[String],
    editable: &[&'static str],
    v: &mut Violations,
) -> Vec<&'static str> {
    v.check(
        !paths.is_empty(),
        "update_mask",
        format!(
            "must name the fields to change, among: {}",
            editable.join(", ")
        ),
    );
    let mut fields = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        match editable.iter().find(|f| **f == path.as_str()) {
            Some(field) if !fields.contains(field) => fields.push(*field),
            Some(_) => v.add(
                format!("update_mask.paths[{i}]"),
                format!("repeats {path:?}"),
            ),
            None => v.add(
                format!("update_mask.paths[{i}]"),
                format!(
                    "{path:?} cannot be updated; updatable: {}",
                    editable.join(", ")
                ),
            ),
        }
    }
    fields
}

/// Whether `id` is a valid resource id: lower case letters, digits, `-` and
/// `_`, starting with a letter, not ending with `-` or `_`, at most 63 characters.
pub fn is_valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && id.len() <= 63
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && !id.ends_with(['-', '_'])
}

/// Checks a new resource's id (the request field `field`), e.g. "eu-business-hours".
pub fn check_id(id: &str, field: &str, example: &str, v: &mut Violations) {
    if id.is_empty() {
        v.add(field, format!("is required, e.g. \"{example}\""));
    } else if !is_valid_id(id) {
        v.add(
            field,
            format!(
                "\"{id}\" is not a valid id: lower case letters, digits, '-' and '_', starting \
                 with a letter, not ending with '-' or '_', at most 63 characters (e.g. \
                 \"{example}\")"
            ),
        );
    }
}

/// ALREADY_EXISTS for `name`.
pub fn already_exists(name: &str, deleted: bool) -> ApiError {
    let message = if deleted {
        format!("{name} existed and was deleted; its id is kept for history: choose another id")
    } else {
        format!("{name} already exists")
    };
    ApiError::new(ErrorCode::AlreadyExists, message)
}

/// The caller as a `Principal`.
pub fn principal(call: &Call) -> common::Principal {
    call.actor.to_proto()
}
