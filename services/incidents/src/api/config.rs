//! Configuration as data: the priority matrix and the settings (read by the
//! roles that use them, replaced by admins with the etag they read), and the
//! transition table (read-only: it is code, served so clients need not
//! hard-code it).
//!
//! Their changes are audited and published like incidents' (events
//! `incidents.priority_matrix.updated` and `incidents.settings.updated`,
//! whose payload is the resource itself), so the practices sharing the
//! matrix can follow it.

use itsm_platform::ApiError;
use itsm_proto::itsm::common::v1 as common;
use itsm_proto::itsm::incidents::v1 as pb;
use itsm_store::{StoreError, etag};

use super::IncidentsApi;
use super::call::{self, Call, Change, Checks};
use crate::convert;
use crate::domain::{matrix, settings};
use crate::store::config;

const MATRIX_UPDATED: &str = "incidents.priority_matrix.updated";
const SETTINGS_UPDATED: &str = "incidents.settings.updated";

fn etag_required(checks: &mut Checks, sent: &str, what: &str) {
    checks.check(
        !sent.is_empty(),
        "etag",
        &format!("is required: the etag of the {what} as last read"),
    );
}

impl IncidentsApi {
    pub(super) async fn get_priority_matrix(
        &self,
        _call: &Call,
        _request: pb::GetPriorityMatrixRequest,
    ) -> Result<common::PriorityMatrix, ApiError> {
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let matrix = config::select_matrix(&mut conn, "").await?;
        Ok(convert::priority_matrix(&matrix))
    }

    pub(super) async fn update_priority_matrix(
        &self,
        call: &Call,
        request: pb::UpdatePriorityMatrixRequest,
    ) -> Result<common::PriorityMatrix, ApiError> {
        let sent = request.matrix.unwrap_or_default();
        let mut checks = Checks::default();
        let cells = checks.take(matrix::validate(&convert::sent_cells(&sent)));
        etag_required(&mut checks, &request.etag, "priority matrix");
        checks.finish()?;
        let cells = cells.unwrap_or(matrix::DEFAULT);

        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        let mut current = config::select_matrix(&mut tx, self.db.backend().lock_suffix()).await?;
        let previous = current.version;
        etag::check(matrix::NAME, &request.etag, previous, true)?;
        let changes = matrix::changes(&current.cells, &cells);
        if changes.is_empty() {
            tx.commit().await.map_err(StoreError::from)?;
            return Ok(convert::priority_matrix(&current));
        }
        current.cells = cells;
        current.version += 1;
        current.update_time = now;
        current.updated_by = call.actor.clone();
        config::update_matrix(&mut tx, &current, previous).await?;
        let change = Change {
            resource: matrix::NAME,
            version: current.version,
            action: "update",
            event_type: MATRIX_UPDATED,
            changes,
            payload: convert::matrix_payload(&current),
        };
        call::record(&mut tx, call, change, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(version = current.version, "priority matrix replaced");
        Ok(convert::priority_matrix(&current))
    }

    pub(super) async fn list_transitions(
        &self,
        _call: &Call,
        _request: pb::ListTransitionsRequest,
    ) -> Result<pb::ListTransitionsResponse, ApiError> {
        Ok(pb::ListTransitionsResponse {
            transitions: convert::transitions(),
        })
    }

    pub(super) async fn get_incident_settings(
        &self,
        _call: &Call,
        _request: pb::GetIncidentSettingsRequest,
    ) -> Result<pb::IncidentSettings, ApiError> {
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let settings = config::select_settings(&mut conn, "").await?;
        Ok(convert::settings(&settings))
    }

    pub(super) async fn update_incident_settings(
        &self,
        call: &Call,
        request: pb::UpdateIncidentSettingsRequest,
    ) -> Result<pb::IncidentSettings, ApiError> {
        let draft = convert::settings_draft(&request.settings.unwrap_or_default());
        let paths = request.update_mask.map(|m| m.paths).unwrap_or_default();
        let mut checks = Checks::default();
        let patch = checks.take(settings::check(&draft, &paths));
        etag_required(&mut checks, &request.etag, "settings");
        checks.finish()?;
        let patch = patch.unwrap_or_default();

        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        let current = config::select_settings(&mut tx, self.db.backend().lock_suffix()).await?;
        etag::check(settings::NAME, &request.etag, current.version, true)?;
        let (mut next, changes) = patch.apply(&current);
        if changes.is_empty() {
            tx.commit().await.map_err(StoreError::from)?;
            return Ok(convert::settings(&current));
        }
        next.version += 1;
        next.update_time = now;
        next.updated_by = call.actor.clone();
        config::update_settings(&mut tx, &next, current.version).await?;
        let change = Change {
            resource: settings::NAME,
            version: next.version,
            action: "update",
            event_type: SETTINGS_UPDATED,
            changes,
            payload: convert::settings_payload(&next),
        };
        call::record(&mut tx, call, change, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(convert::settings(&next))
    }
}
