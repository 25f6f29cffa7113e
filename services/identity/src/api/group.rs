//! The group use cases behind `IdentityService`: create, read, list,
//! update, delete, membership changes and the membership check practices
//! ask before accepting an assignee.
//!
//! Every change locks the group's row first, so changes to one group and
//! its members happen one at a time and its events follow its versions.

use itsm_platform::{ApiError, ErrorCode};
use itsm_proto::itsm::identity::v1 as pb;
use itsm_store::audit::FieldChange;
use itsm_store::idempotency::{self, Claim};
use itsm_store::list::ListRequest;
use itsm_store::{StoreError, Tx, etag};
use prost::Message as _;

use super::{Call, Change, IdentityApi, record_change};
use crate::convert::group as convert;
use crate::domain::group::{self as domain, Group};
use crate::store::group::{self as store, StoredGroup};

/// Audit action and event type of each change.
const CREATED: (&str, &str) = ("create", "identity.group.created");
const UPDATED: (&str, &str) = ("update", "identity.group.updated");
const DELETED: (&str, &str) = ("delete", "identity.group.deleted");
const MEMBER_ADDED: (&str, &str) = ("add_member", "identity.group.member_added");
const MEMBER_REMOVED: (&str, &str) = ("remove_member", "identity.group.member_removed");
const CREATE_METHOD: &str = "itsm.identity.v1.IdentityService/CreateGroup";

pub(super) async fn create(
    api: &IdentityApi,
    call: &Call,
    request: pb::CreateGroupRequest,
) -> Result<pb::Group, ApiError> {
    let wanted = convert::group_request(request.group.clone().unwrap_or_default());
    let fields = wanted.validate_new(&request.group_id)?;
    let now = itsm_store::now_micros();

    let mut tx = api.db.begin().await?;
    if !request.request_id.is_empty() {
        // The content hash leaves the request id out: it is what identifies a retry.
        let content = pb::CreateGroupRequest {
            request_id: String::new(),
            ..request.clone()
        };
        let hash = idempotency::hash_request(&content.encode_to_vec());
        let claim = idempotency::claim(&mut tx, CREATE_METHOD, &request.request_id, &hash);
        if let Claim::Replay { resource } = claim.await? {
            let stored = select(&mut tx, &resource, "", "name").await?;
            tx.commit().await.map_err(StoreError::from)?;
            return Ok(convert::group(&stored.group));
        }
    }

    let group = Group::create(request.group_id, fields, now);
    let name = group.name();
    if !store::insert_group(&mut tx, &group).await? {
        // Dropping the transaction rolls back the idempotency claim too.
        return Err(ApiError::new(
            ErrorCode::AlreadyExists,
            format!("{name} already exists; choose another group_id"),
        ));
    }
    record(&mut tx, call, &group, CREATED, group.creation_changes(), "").await?;
    if !request.request_id.is_empty() {
        idempotency::complete(&mut tx, CREATE_METHOD, &request.request_id, &name).await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    tracing::info!(group = %name, members = group.members.len(), "group created");
    Ok(convert::group(&group))
}

pub(super) async fn get(
    api: &IdentityApi,
    request: pb::GetGroupRequest,
) -> Result<pb::Group, ApiError> {
    let mut conn = api.db.pool().acquire().await.map_err(StoreError::from)?;
    let stored = select(&mut conn, &request.name, "", "name").await?;
    Ok(convert::group(&stored.group))
}

pub(super) async fn list(
    api: &IdentityApi,
    request: pb::ListGroupsRequest,
) -> Result<pb::ListGroupsResponse, ApiError> {
    if let Some(member) = &request.member {
        domain::check_subject(member, "member")?;
    }
    let tokens = api.page_tokens().await?;
    let list = ListRequest {
        page_size: request.page_size,
        page_token: &request.page_token,
        filter: &request.filter,
        order_by: &request.order_by,
    };
    let member = request.member.as_deref();
    let (groups, next_page_token) = store::select_page(&api.db, &list, member, tokens).await?;
    Ok(pb::ListGroupsResponse {
        groups: groups.iter().map(convert::group).collect(),
        next_page_token,
    })
}

pub(super) async fn update(
    api: &IdentityApi,
    call: &Call,
    request: pb::UpdateGroupRequest,
) -> Result<pb::Group, ApiError> {
    let wanted = request.group.unwrap_or_default();
    let name = wanted.name.clone();
    domain::group_id_from_name(&name, "group.name")?;
    let paths = request.update_mask.map(|m| m.paths).unwrap_or_default();
    let mask = domain::parse_update_mask(&paths)?;
    if request.etag.is_empty() {
        return Err(ApiError::invalid_field(
            "etag",
            "is required: the etag of the group as last read",
        ));
    }
    let now = itsm_store::now_micros();

    let mut tx = api.db.begin().await?;
    let lock = api.db.backend().lock_suffix();
    let StoredGroup { id, mut group } = select(&mut tx, &name, lock, "group.name").await?;
    let previous = group.version;
    etag::check(&name, &request.etag, previous, true)?;
    let fields = group
        .request()
        .merge(convert::group_request(wanted), &mask)
        .validate()?;
    let before = group.members.clone();
    let changes = group.update(fields, now);
    if changes.is_empty() {
        // Nothing differs: no new version, no audit entry, no event.
        return Ok(convert::group(&group));
    }
    store::update_group(&mut tx, id, &group, previous).await?;
    let (added, removed) = domain::member_diff(&before, &group.members);
    store::delete_members(&mut tx, &group.group_id, &removed).await?;
    store::insert_members(&mut tx, &group.group_id, &added, now).await?;
    record(&mut tx, call, &group, UPDATED, changes, "").await?;
    tx.commit().await.map_err(StoreError::from)?;
    tracing::info!(group = %name, "group updated");
    Ok(convert::group(&group))
}

pub(super) async fn delete(
    api: &IdentityApi,
    call: &Call,
    request: pb::DeleteGroupRequest,
) -> Result<pb::DeleteGroupResponse, ApiError> {
    domain::group_id_from_name(&request.name, "name")?;
    let now = itsm_store::now_micros();
    let mut tx = api.db.begin().await?;
    let lock = api.db.backend().lock_suffix();
    let StoredGroup { id, mut group } = select(&mut tx, &request.name, lock, "name").await?;
    let previous = group.version;
    etag::check(&request.name, &request.etag, previous, false)?;
    let changes = group.delete(now);
    store::delete_group(&mut tx, id, &group, previous).await?;
    record(&mut tx, call, &group, DELETED, changes, "").await?;
    tx.commit().await.map_err(StoreError::from)?;
    tracing::info!(group = %request.name, "group deleted");
    Ok(pb::DeleteGroupResponse {})
}

pub(super) async fn add_member(
    api: &IdentityApi,
    call: &Call,
    request: pb::AddGroupMemberRequest,
) -> Result<pb::Group, ApiError> {
    domain::group_id_from_name(&request.group, "group")?;
    domain::check_subject(&request.member, "member")?;
    let now = itsm_store::now_micros();
    let mut tx = api.db.begin().await?;
    let lock = api.db.backend().lock_suffix();
    let StoredGroup { id, mut group } = select(&mut tx, &request.group, lock, "group").await?;
    let previous = group.version;
    // Membership first: adding a member who is there already is a harmless
    // no-op whatever etag was sent, so a retry after a lost reply succeeds.
    if group.is_member(&request.member) {
        return Ok(convert::group(&group));
    }
    etag::check(&request.group, &request.etag, previous, false)?;
    let Some(change) = group.add_member(&request.member, now)? else {
        return Ok(convert::group(&group));
    };
    store::update_group(&mut tx, id, &group, previous).await?;
    let added = std::slice::from_ref(&request.member);
    store::insert_members(&mut tx, &group.group_id, added, now).await?;
    record(
        &mut tx,
        call,
        &group,
        MEMBER_ADDED,
        vec![change],
        &request.member,
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    tracing::info!(group = %request.group, "group member added");
    Ok(convert::group(&group))
}

pub(super) async fn remove_member(
    api: &IdentityApi,
    call: &Call,
    request: pb::RemoveGroupMemberRequest,
) -> Result<pb::Group, ApiError> {
    domain::group_id_from_name(&request.group, "group")?;
    domain::check_subject(&request.member, "member")?;
    let now = itsm_store::now_micros();
    let mut tx = api.db.begin().await?;
    let lock = api.db.backend().lock_suffix();
    let StoredGroup { id, mut group } = select(&mut tx, &request.group, lock, "group").await?;
    let previous = group.version;
    let change = group.remove_member(&request.member, now)?;
    store::update_group(&mut tx, id, &group, previous).await?;
    let removed = std::slice::from_ref(&request.member);
    store::delete_members(&mut tx, &group.group_id, removed).await?;
    record(
        &mut tx,
        call,
        &group,
        MEMBER_REMOVED,
        vec![change],
        &request.member,
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    tracing::info!(group = %request.group, "group member removed");
    Ok(convert::group(&group))
}

pub(super) async fn check_membership(
    api: &IdentityApi,
    request: pb::CheckMembershipRequest,
) -> Result<pb::CheckMembershipResponse, ApiError> {
    let group_id = domain::group_id_from_name(&request.group, "group")?;
    domain::check_subject(&request.member, "member")?;
    let mut conn = api.db.pool().acquire().await.map_err(StoreError::from)?;
    let found = store::select_membership(&mut conn, group_id, &request.member).await?;
    Ok(pb::CheckMembershipResponse {
        member: found.unwrap_or(false),
        group_exists: found.is_some(),
    })
}

/// The group named `name`: INVALID_ARGUMENT on `field` for a malformed
/// name, NOT_FOUND for an unknown one.
async fn select(
    conn: &mut sqlx::AnyConnection,
    name: &str,
    lock: &'static str,
    field: &str,
) -> Result<StoredGroup, ApiError> {
    let group_id = domain::group_id_from_name(name, field)?;
    store::select_group(conn, group_id, lock)
        .await?
        .ok_or_else(|| ApiError::not_found(name))
}

/// The audit entry and the event of a change to a group, at its update
/// time (every change sets it); `member` is the subject added or removed,
/// `""` for other changes.
async fn record(
    tx: &mut Tx,
    call: &Call,
    group: &Group,
    (action, event_type): (&str, &str),
    changes: Vec<FieldChange>,
    member: &str,
) -> Result<(), StoreError> {
    let payload = convert::event_payload(group, &changes, member);
    let name = group.name();
    let change = Change {
        resource: &name,
        version: group.version,
        action,
        event_type,
        changes,
        payload,
    };
    record_change(tx, call, change, group.update_time).await
}
