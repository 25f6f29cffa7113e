//! Incident tasks: create (gap-free TASK numbers, idempotent by request_id,
//! under an open incident), read, list per incident, update with a mask and
//! an etag. An assignee must belong to the task's group. Each change writes
//! the task's audit entry and event and a note in the incident's own trail,
//! in one transaction.

use itsm_platform::ApiError;
use itsm_proto::itsm::incidents::v1 as pb;
use itsm_store::audit::{self, AuditRecord, FieldChange};
use itsm_store::idempotency::{self, Claim};
use itsm_store::list::ListRequest;
use itsm_store::{StoreError, Tx, counter, etag};
use prost::Message as _;
use sqlx::AnyConnection;

use super::{TASK_CREATED, TASK_UPDATED, task, task_payload};
use crate::api::IncidentsApi;
use crate::api::call::{self, Call, Change, Checks};
use crate::api::lifecycle::check_assignment;
use crate::domain;
use crate::domain::hierarchy::task::{self as t, Task, TaskDraft};
use crate::domain::transitions::OPEN;
use crate::store::StoredIncident;
use crate::store::hierarchy::tasks;

const CREATE_METHOD: &str = "itsm.incidents.v1.IncidentService/CreateIncidentTask";
/// Longest request_id accepted (a UUID is 36 characters).
const REQUEST_ID_MAX: usize = 128;

/// The fields of a sent task a caller may set; output-only ones are ignored.
fn draft(sent: pb::IncidentTask) -> TaskDraft {
    TaskDraft {
        title: sent.title,
        description: sent.description,
        state: sent.state,
        assignment_group: sent.assignment_group,
        assignee: sent.assignee,
        due_time: sent.due_time.map(|ts| (ts.seconds, ts.nanos)),
    }
}

/// The incident and task a task's name names, as `call`'s caller may see
/// them: NOT_FOUND for either unknown. `lock` is for the task row.
async fn load_task(
    conn: &mut AnyConnection,
    call: &Call,
    name: &str,
    field: &str,
    lock: &'static str,
) -> Result<(StoredIncident, Task), ApiError> {
    let (incident, number) = t::numbers_from_name(name, field)?;
    let stored = call::load(conn, call, &domain::name_of(incident), field, "").await?;
    let task = tasks::select_task(conn, stored.id, incident, number, lock)
        .await?
        .ok_or_else(|| ApiError::not_found(name))?;
    Ok((stored, task))
}

/// Notes a task's change in its incident's audit trail: one entry on the
/// incident, its fields named `tasks/<number>.<field>`.
async fn note_on_incident(
    tx: &mut Tx,
    call: &Call,
    task: &Task,
    action: &str,
    changes: &[FieldChange],
    now: i64,
) -> Result<(), StoreError> {
    let prefix = format!("tasks/{}", task.number);
    let changes = changes
        .iter()
        .map(|c| FieldChange::new(&format!("{prefix}.{}", c.field), &c.old, &c.new))
        .collect();
    let record = AuditRecord {
        resource: domain::name_of(&task.incident),
        action: action.to_owned(),
        actor: call.actor.clone(),
        time: now,
        changes,
        request_id: call.request_id.clone(),
    };
    audit::insert(tx, &record).await?;
    Ok(())
}

/// The task's audit entry and event.
async fn record_task(
    tx: &mut Tx,
    call: &Call,
    task: &Task,
    (action, event_type): (&str, &str),
    changes: Vec<FieldChange>,
    now: i64,
) -> Result<(), StoreError> {
    let name = task.name();
    let change = Change {
        resource: &name,
        version: task.version,
        action,
        event_type,
        changes,
        payload: task_payload(task),
    };
    call::record(tx, call, change, now).await
}

impl IncidentsApi {
    pub(in crate::api) async fn create_incident_task(
        &self,
        call: &Call,
        request: pb::CreateIncidentTaskRequest,
    ) -> Result<pb::IncidentTask, ApiError> {
        let draft = draft(request.task.clone().unwrap_or_default());
        let mut checks = Checks::default();
        checks.take(domain::number_from_name(&request.parent, "parent"));
        checks.take(draft.validate_new());
        checks.check(
            request.request_id.chars().count() <= REQUEST_ID_MAX,
            "request_id",
            "must be at most 128 characters (a UUID is recommended)",
        );
        checks.finish()?;
        let group = domain::group_id(&draft.assignment_group).to_owned();
        if !group.is_empty() {
            check_assignment(&*self.directory, call, "task.", &group, &draft.assignee).await?;
        }

        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        if !request.request_id.is_empty() {
            let content = pb::CreateIncidentTaskRequest {
                request_id: String::new(),
                ..request.clone()
            };
            let hash = idempotency::hash_request(&content.encode_to_vec());
            let claim = idempotency::claim(&mut tx, CREATE_METHOD, &request.request_id, &hash);
            if let Claim::Replay { resource } = claim.await? {
                let (_, found) = load_task(&mut tx, call, &resource, "request_id", "").await?;
                tx.commit().await.map_err(StoreError::from)?;
                return Ok(task(&found));
            }
        }
        // Locked, so the incident cannot close while its task is being added.
        let lock = self.db.backend().lock_suffix();
        let stored = call::load(&mut tx, call, &request.parent, "parent", lock).await?;
        let incident = &stored.incident;
        if !OPEN.contains(&incident.state) {
            let name = incident.name();
            return Err(ApiError::failed_precondition(
                "STATE",
                &name,
                format!(
                    "{name} is {}: tasks are added to open incidents only",
                    incident.state
                ),
            ));
        }
        let number = counter::next(&mut tx, t::COUNTER).await?;
        let number = counter::format_number(t::NUMBER_PREFIX, number);
        let new = Task::open(
            draft,
            number,
            incident.number.clone(),
            call.actor.clone(),
            now,
        );
        tasks::insert_task(&mut tx, stored.id, &new).await?;
        let changes = new.creation_changes();
        note_on_incident(&mut tx, call, &new, "create_task", &changes, now).await?;
        record_task(&mut tx, call, &new, ("create", TASK_CREATED), changes, now).await?;
        let name = new.name();
        if !request.request_id.is_empty() {
            idempotency::complete(&mut tx, CREATE_METHOD, &request.request_id, &name).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(task = %name, "incident task created");
        Ok(task(&new))
    }

    pub(in crate::api) async fn get_incident_task(
        &self,
        call: &Call,
        request: pb::GetIncidentTaskRequest,
    ) -> Result<pb::IncidentTask, ApiError> {
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let (_, found) = load_task(&mut conn, call, &request.name, "name", "").await?;
        Ok(task(&found))
    }

    pub(in crate::api) async fn list_incident_tasks(
        &self,
        call: &Call,
        request: pb::ListIncidentTasksRequest,
    ) -> Result<pb::ListIncidentTasksResponse, ApiError> {
        let tokens = self.tokens().await?;
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let stored = call::load(&mut conn, call, &request.parent, "parent", "").await?;
        drop(conn);
        let list = ListRequest {
            page_size: request.page_size,
            page_token: &request.page_token,
            filter: &request.filter,
            order_by: &request.order_by,
        };
        let number = &stored.incident.number;
        let (found, next_page_token) =
            tasks::select_page(&self.db, stored.id, number, &list, tokens).await?;
        Ok(pb::ListIncidentTasksResponse {
            tasks: found.iter().map(task).collect(),
            next_page_token,
        })
    }

    pub(in crate::api) async fn update_incident_task(
        &self,
        call: &Call,
        request: pb::UpdateIncidentTaskRequest,
    ) -> Result<pb::IncidentTask, ApiError> {
        let sent = request.task.unwrap_or_default();
        let name = sent.name.clone();
        let paths = request.update_mask.map(|m| m.paths).unwrap_or_default();
        let draft = draft(sent);
        let mut checks = Checks::default();
        checks.take(t::numbers_from_name(&name, "task.name"));
        let fields = checks.take(t::check_mask(&paths)).unwrap_or_default();
        let mut v = itsm_platform::Violations::new();
        for field in &fields {
            draft.check(&mut v, field);
        }
        checks.take(v.into_result());
        checks.check(
            !request.etag.is_empty(),
            "etag",
            "is required: the etag of the task as last read",
        );
        checks.finish()?;
        let assigning = fields.contains(&"assignment_group") || fields.contains(&"assignee");

        // The directory is asked before the transaction, so no row lock is
        // held across a call to the identity service; the transaction then
        // makes sure the assignment it checked is still the one it makes.
        let mut target = None;
        if assigning {
            let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
            let (_, current) = load_task(&mut conn, call, &name, "task.name", "").await?;
            drop(conn);
            let (group, assignee) = current.assignment_target(&draft, &fields);
            if !group.is_empty() {
                check_assignment(&*self.directory, call, "task.", &group, &assignee).await?;
            }
            target = Some((group, assignee));
        }

        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        let lock = self.db.backend().lock_suffix();
        let (stored, mut found) = load_task(&mut tx, call, &name, "task.name", lock).await?;
        let previous = found.version;
        etag::check(&name, &request.etag, previous, true)?;
        if target.is_some_and(|target| found.assignment_target(&draft, &fields) != target) {
            return Err(ApiError::stale_etag(&name));
        }
        let changes = found.update(&draft, &fields, now)?;
        if changes.is_empty() {
            tx.commit().await.map_err(StoreError::from)?;
            return Ok(task(&found));
        }
        tasks::update_task(&mut tx, &found, stored.id, previous).await?;
        note_on_incident(&mut tx, call, &found, "update_task", &changes, now).await?;
        record_task(
            &mut tx,
            call,
            &found,
            ("update", TASK_UPDATED),
            changes,
            now,
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(task = %name, state = %found.state, "incident task changed");
        Ok(task(&found))
    }
}
