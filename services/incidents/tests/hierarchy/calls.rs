//! The calls these tests make, as one-liners.

use itsm_proto::itsm::common::v1 as common;
use itsm_proto::itsm::incidents::v1 as pb;
use prost_types::FieldMask;
use tonic::Status;

use crate::support::{AGENT, Harness, as_, create_request, incident};

/// A task titled `title` under `parent`, optionally for a group and person.
pub fn new_task(title: &str, group: &str, assignee: &str) -> pb::IncidentTask {
    pb::IncidentTask {
        title: title.to_owned(),
        assignment_group: group.to_owned(),
        assignee: assignee.to_owned(),
        ..pb::IncidentTask::default()
    }
}

pub async fn create_task(
    svc: &mut Harness,
    parent: &str,
    task: pb::IncidentTask,
    request_id: &str,
) -> Result<pb::IncidentTask, Status> {
    let request = pb::CreateIncidentTaskRequest {
        parent: parent.to_owned(),
        task: Some(task),
        request_id: request_id.to_owned(),
    };
    let reply = svc.client.create_incident_task(as_(AGENT, request)).await;
    reply.map(tonic::Response::into_inner)
}

/// Updates the `paths` of `task` (which carries its name) with `etag`.
pub async fn update_task(
    svc: &mut Harness,
    task: pb::IncidentTask,
    paths: &[&str],
    etag: &str,
) -> Result<pb::IncidentTask, Status> {
    let request = pb::UpdateIncidentTaskRequest {
        task: Some(task),
        update_mask: Some(FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        }),
        etag: etag.to_owned(),
    };
    let reply = svc.client.update_incident_task(as_(AGENT, request)).await;
    reply.map(tonic::Response::into_inner)
}

/// Moves the task `name` to `state` with `etag`.
pub async fn task_to(
    svc: &mut Harness,
    name: &str,
    state: pb::IncidentTaskState,
    etag: &str,
) -> Result<pb::IncidentTask, Status> {
    let task = pb::IncidentTask {
        name: name.to_owned(),
        state: state as i32,
        ..pb::IncidentTask::default()
    };
    update_task(svc, task, &["state"], etag).await
}

pub async fn set_parent(
    svc: &mut Harness,
    name: &str,
    parent: &str,
) -> Result<pb::Incident, Status> {
    let request = pb::SetParentIncidentRequest {
        name: name.to_owned(),
        parent: parent.to_owned(),
        etag: String::new(),
    };
    let reply = svc.client.set_parent_incident(as_(AGENT, request)).await;
    reply.map(tonic::Response::into_inner)
}

/// Opens an incident of `impact` x `urgency` as an agent; its name.
pub async fn open_with(svc: &mut Harness, title: &str, impact: i32, urgency: i32) -> String {
    let request = create_request(incident(title, impact, urgency), "");
    let reply = svc.client.create_incident(as_(AGENT, request)).await;
    reply.unwrap().into_inner().name
}

/// Opens an incident and starts work on it (desk, carl); its name.
pub async fn working(svc: &mut Harness, title: &str) -> String {
    let name = svc.open(title).await.name;
    svc.assign(&name, "desk", "carl").await.unwrap();
    name
}

/// The audit trail of `resource` (an incident), oldest first.
pub async fn audit(svc: &mut Harness, parent: &str) -> Vec<common::AuditEntry> {
    let request = pb::ListAuditEntriesRequest {
        parent: parent.to_owned(),
        page_size: 1000,
        page_token: String::new(),
    };
    let reply = svc.client.list_audit_entries(as_(AGENT, request)).await;
    reply.unwrap().into_inner().entries
}

/// The audit actions on any resource (tasks included), oldest first, read from the table.
pub async fn actions_on(svc: &Harness, resource: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT action FROM audit_log WHERE resource = $1 ORDER BY id")
        .bind(resource)
        .fetch_all(svc.db.pool())
        .await
        .unwrap()
}
