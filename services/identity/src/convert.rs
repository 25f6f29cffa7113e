//! Between the contract's messages and the domain: requests in, keys and
//! event payloads out. No secret ever passes through here. Groups are in
//! [`group`].

use itsm_proto::itsm::identity::v1 as pb;
use itsm_store::audit::{FieldChange, timestamp};
use prost::Message as _;

use crate::domain::{ApiKey, KeyRequest};

pub mod group;

/// The fields of a requested key a caller may set; output-only ones are ignored.
pub fn key_request(key: pb::ApiKey) -> KeyRequest {
    KeyRequest {
        display_name: key.display_name,
        service_account: key.service_account,
        roles: key.roles,
        description: key.description,
        expire_time: key.expire_time.map(|t| (t.seconds, t.nanos)),
    }
}

/// A key as the API returns it, its state computed at `now`.
pub fn api_key(key: &ApiKey, now: i64) -> pb::ApiKey {
    pb::ApiKey {
        name: key.name(),
        key_id: key.key_id.clone(),
        display_name: key.display_name.clone(),
        service_account: key.service_account.clone(),
        roles: key.roles.clone(),
        description: key.description.clone(),
        create_time: Some(timestamp(key.create_time)),
        created_by: Some(key.created_by.to_proto()),
        expire_time: Some(timestamp(key.expire_time)),
        revoke_time: key.revoke_time.map(timestamp),
        revoked_by: key.revoked_by.as_ref().map(|a| a.to_proto()),
        revoke_reason: key.revoke_reason.clone(),
        last_used_time: key.last_used_time.map(timestamp),
        state: key.state(now) as i32,
        etag: itsm_store::etag::from_version(key.version),
    }
}

/// The `ApiKeyEvent` payload of an event about `key`.
pub fn event_payload(key: &ApiKey, changes: &[FieldChange], now: i64) -> prost_types::Any {
    let event = pb::ApiKeyEvent {
        api_key: Some(api_key(key, now)),
        changes: field_changes(changes),
    };
    prost_types::Any {
        type_url: "type.googleapis.com/itsm.identity.v1.ApiKeyEvent".into(),
        value: event.encode_to_vec(),
    }
}

/// Changes as event payloads carry them.
fn field_changes(changes: &[FieldChange]) -> Vec<itsm_proto::itsm::common::v1::FieldChange> {
    changes
        .iter()
        .map(|c| itsm_proto::itsm::common::v1::FieldChange {
            field: c.field.clone(),
            old_value: c.old.clone(),
            new_value: c.new.clone(),
        })
        .collect()
}

/// The answer to `VerifyApiKey` for a verified key.
pub fn verify_response(key: &ApiKey) -> pb::VerifyApiKeyResponse {
    pb::VerifyApiKeyResponse {
        service_account: key.service_account.clone(),
        display_name: key.display_name.clone(),
        roles: key.roles.clone(),
        key_name: key.name(),
        expire_time: Some(timestamp(key.expire_time)),
    }
}
