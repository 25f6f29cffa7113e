//! Groups between the contract's messages and the domain.

use itsm_proto::itsm::identity::v1 as pb;
use itsm_store::audit::{FieldChange, timestamp};
use prost::Message as _;

use crate::domain::group::{Group, GroupRequest};

/// The fields of a requested group a caller may set; the name and
/// output-only fields are ignored.
pub fn group_request(group: pb::Group) -> GroupRequest {
    GroupRequest {
        display_name: group.display_name,
        description: group.description,
        email: group.email,
        manager: group.manager,
        members: group.members,
    }
}

/// A group as the API returns it.
pub fn group(group: &Group) -> pb::Group {
    pb::Group {
        name: group.name(),
        display_name: group.display_name.clone(),
        description: group.description.clone(),
        email: group.email.clone(),
        manager: group.manager.clone(),
        members: group.members.clone(),
        create_time: Some(timestamp(group.create_time)),
        update_time: Some(timestamp(group.update_time)),
        etag: itsm_store::etag::from_version(group.version),
    }
}

/// The `GroupEvent` payload of an event about `group`; `member` is the
/// subject added or removed, `""` for other changes.
pub fn event_payload(group: &Group, changes: &[FieldChange], member: &str) -> prost_types::Any {
    let event = pb::GroupEvent {
        group: Some(self::group(group)),
        changes: super::field_changes(changes),
        member: member.to_owned(),
    };
    prost_types::Any {
        type_url: "type.googleapis.com/itsm.identity.v1.GroupEvent".into(),
        value: event.encode_to_vec(),
    }
}
