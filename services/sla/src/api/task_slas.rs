//! Task SLAs: read (projected to now), list, explain (the timeline), and
//! recompute one ticket's clocks from its stored history.

use itsm_platform::ApiError;
use itsm_proto::itsm::sla::v1 as pb;
use itsm_store::StoreError;
use itsm_store::list::ListRequest;
use sqlx::{AnyConnection, Row};

use super::SlaApi;
use super::call::Call;
use crate::store::{self, task_slas as rows};
use crate::{clock, engine};

/// The uid of "taskSlas/<uid>".
fn uid_of(name: &str) -> Result<&str, ApiError> {
    name.strip_prefix("taskSlas/")
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .ok_or_else(|| ApiError::invalid_field("name", "must be \"taskSlas/<uuid>\""))
}

async fn select(conn: &mut AnyConnection, name: &str) -> Result<(i64, pb::TaskSla), ApiError> {
    let uid = uid_of(name)?;
    let row = sqlx::query("SELECT id, doc FROM task_slas WHERE uid = $1")
        .bind(uid)
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::from)?
        .ok_or_else(|| ApiError::not_found(name))?;
    let id: i64 = row.try_get("id").map_err(StoreError::from)?;
    let doc: Vec<u8> = row.try_get("doc").map_err(StoreError::from)?;
    Ok((id, store::decode("task_slas", &doc)?))
}

impl SlaApi {
    /// The task SLA carried forward to now (`clock::project`).
    async fn projected(
        &self,
        conn: &mut AnyConnection,
        sla: pb::TaskSla,
    ) -> Result<pb::TaskSla, ApiError> {
        let (calendar, _) = self
            .engine
            .load_calendar(conn, &sla.calendar, sla.calendar_version, &sla.time_zone)
            .await?;
        Ok(clock::project(&sla, &calendar, itsm_store::now_micros()))
    }

    pub(super) async fn get_task_sla(
        &self,
        _call: &Call,
        request: pb::GetTaskSlaRequest,
    ) -> Result<pb::TaskSla, ApiError> {
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let (_, sla) = select(&mut conn, &request.name).await?;
        self.projected(&mut conn, sla).await
    }

    pub(super) async fn list_task_slas(
        &self,
        _call: &Call,
        request: pb::ListTaskSlasRequest,
    ) -> Result<pb::ListTaskSlasResponse, ApiError> {
        let tokens = self.tokens().await?;
        let list = ListRequest {
            page_size: request.page_size,
            page_token: &request.page_token,
            filter: &request.filter,
            order_by: &request.order_by,
        };
        let (docs, next_page_token) = rows::select_page(&self.db, &list, tokens).await?;
        let task_slas = docs
            .iter()
            .map(|d| store::decode("task_slas", d))
            .collect::<Result<_, _>>()?;
        Ok(pb::ListTaskSlasResponse {
            task_slas,
            next_page_token,
        })
    }

    pub(super) async fn explain_task_sla(
        &self,
        _call: &Call,
        request: pb::ExplainTaskSlaRequest,
    ) -> Result<pb::TaskSlaTimeline, ApiError> {
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let (id, sla) = select(&mut conn, &request.name).await?;
        let entries = engine::timeline_of(&mut conn, id).await?;
        let task_sla = self.projected(&mut conn, sla).await?;
        Ok(pb::TaskSlaTimeline {
            task_sla: Some(task_sla),
            entries,
        })
    }

    pub(super) async fn recompute_ticket_slas(
        &self,
        _call: &Call,
        request: pb::RecomputeTicketSlasRequest,
    ) -> Result<pb::RecomputeTicketSlasResponse, ApiError> {
        let ticket = request.ticket.trim();
        let valid = ticket
            .split_once('/')
            .is_some_and(|(kind, id)| crate::tickets::schema(kind).is_some() && !id.is_empty());
        if !valid {
            return Err(ApiError::invalid_field(
                "ticket",
                "must be a ticket name, e.g. \"incidents/INC0000042\"",
            ));
        }
        let latest = match pb::RecomputeMode::try_from(request.mode) {
            Ok(pb::RecomputeMode::KeepVersions) => false,
            Ok(_) => true,
            Err(_) => {
                return Err(ApiError::invalid_field("mode", "unknown recompute mode"));
            }
        };
        let mut tx = self.db.begin().await?;
        let known = sqlx::query("SELECT 1 FROM ticket_events WHERE ticket = $1 LIMIT 1")
            .bind(ticket)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        if known.is_none() {
            return Err(ApiError::not_found(ticket));
        }
        let now = itsm_store::now_micros();
        let changed = self
            .engine
            .replay_ticket(
                &mut tx,
                ticket,
                now,
                engine::Until::Now,
                latest,
                request.validate_only,
            )
            .await?;
        let rows = sqlx::query("SELECT doc FROM task_slas WHERE ticket = $1 ORDER BY id")
            .bind(ticket)
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        let mut task_slas = Vec::with_capacity(rows.len());
        for row in rows {
            let doc: Vec<u8> = row.try_get("doc").map_err(StoreError::from)?;
            task_slas.push(store::decode("task_slas", &doc)?);
        }
        if request.validate_only {
            tx.rollback().await.map_err(StoreError::from)?;
        } else {
            tx.commit().await.map_err(StoreError::from)?;
        }
        Ok(pb::RecomputeTicketSlasResponse { task_slas, changed })
    }
}
