//! Configuration stored as data: the priority matrix (a version row and nine
//! cells) and the settings (one row), both seeded by the migration.

use itsm_store::audit::Actor;
use itsm_store::{SqlBuilder, StoreError};
use sqlx::{AnyConnection, Row};

use super::actor;
use crate::domain::enums::{Impact, Priority, Urgency};
use crate::domain::matrix::{self, PriorityMatrix};
use crate::domain::settings::Settings;

/// The matrix. `lock` is [`itsm_store::Backend::lock_suffix`] when the
/// transaction will replace it; the version row is the one locked.
pub async fn select_matrix(
    conn: &mut AnyConnection,
    lock: &'static str,
) -> Result<PriorityMatrix, StoreError> {
    let mut sql = SqlBuilder::new(
        "SELECT version, updated_at, updated_by_subject, updated_by_name, updated_by_kind \
         FROM priority_matrix WHERE id = 1",
    );
    sql.push(lock);
    let head = itsm_store::db::query(&sql)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(matrix::NAME.to_owned()))?;
    let rows = sqlx::query("SELECT impact, urgency, priority FROM priority_matrix_cells")
        .fetch_all(&mut *conn)
        .await?;
    let mut cells = matrix::DEFAULT;
    let mut found = 0;
    for row in rows {
        let (impact, urgency, priority): (i32, i32, i32) = (
            row.try_get("impact")?,
            row.try_get("urgency")?,
            row.try_get("priority")?,
        );
        let (Some(impact), Some(urgency), Some(priority)) = (
            Impact::from_number(impact),
            Urgency::from_number(urgency),
            Priority::from_number(priority),
        ) else {
            continue;
        };
        cells[index(impact.number())][index(urgency.number())] = priority;
        found += 1;
    }
    // The table's checks and key make this impossible short of manual edits.
    if found != 9 {
        return Err(StoreError::Database(sqlx::Error::Decode(
            format!("priority_matrix_cells holds {found} valid cells, not 9").into(),
        )));
    }
    Ok(PriorityMatrix {
        cells,
        version: head.try_get("version")?,
        update_time: head.try_get("updated_at")?,
        updated_by: actor(&head, "updated_by")?,
    })
}

fn index(number: i32) -> usize {
    usize::try_from(number - 1).unwrap_or(0)
}

/// Writes a replaced matrix; `previous_version` is the version read under the lock.
pub async fn update_matrix(
    conn: &mut AnyConnection,
    m: &PriorityMatrix,
    previous_version: i64,
) -> Result<(), StoreError> {
    for (impact, urgency, priority) in matrix::cells(&m.cells) {
        sqlx::query(
            "UPDATE priority_matrix_cells SET priority = $1 WHERE impact = $2 AND urgency = $3",
        )
        .bind(priority.number())
        .bind(impact.number())
        .bind(urgency.number())
        .execute(&mut *conn)
        .await?;
    }
    let result = sqlx::query(
        "UPDATE priority_matrix SET version = $1, updated_at = $2, updated_by_subject = $3, \
         updated_by_name = $4, updated_by_kind = $5 WHERE id = 1 AND version = $6",
    )
    .bind(m.version)
    .bind(m.update_time)
    .bind(&m.updated_by.subject)
    .bind(&m.updated_by.display_name)
    .bind(m.updated_by.kind)
    .bind(previous_version)
    .execute(&mut *conn)
    .await?;
    stale_unless_one(result.rows_affected(), matrix::NAME)
}

/// The settings; `lock` as for [`select_matrix`].
pub async fn select_settings(
    conn: &mut AnyConnection,
    lock: &'static str,
) -> Result<Settings, StoreError> {
    let mut sql = SqlBuilder::new(
        "SELECT auto_close_after_us, flap_threshold, flap_window_us, version, updated_at, \
         updated_by_subject, updated_by_name, updated_by_kind FROM incident_settings WHERE id = 1",
    );
    sql.push(lock);
    let row = itsm_store::db::query(&sql)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(crate::domain::settings::NAME.to_owned()))?;
    Ok(Settings {
        auto_close_after: row.try_get("auto_close_after_us")?,
        flap_threshold: row.try_get("flap_threshold")?,
        flap_window: row.try_get("flap_window_us")?,
        version: row.try_get("version")?,
        update_time: row.try_get("updated_at")?,
        updated_by: actor(&row, "updated_by")?,
    })
}

/// Writes changed settings; `previous_version` is the version read under the lock.
pub async fn update_settings(
    conn: &mut AnyConnection,
    s: &Settings,
    previous_version: i64,
) -> Result<(), StoreError> {
    let by: &Actor = &s.updated_by;
    let result = sqlx::query(
        "UPDATE incident_settings SET auto_close_after_us = $1, flap_threshold = $2, \
         flap_window_us = $3, version = $4, updated_at = $5, updated_by_subject = $6, \
         updated_by_name = $7, updated_by_kind = $8 WHERE id = 1 AND version = $9",
    )
    .bind(s.auto_close_after)
    .bind(s.flap_threshold)
    .bind(s.flap_window)
    .bind(s.version)
    .bind(s.update_time)
    .bind(&by.subject)
    .bind(&by.display_name)
    .bind(by.kind)
    .bind(previous_version)
    .execute(conn)
    .await?;
    stale_unless_one(result.rows_affected(), crate::domain::settings::NAME)
}

fn stale_unless_one(rows: u64, name: &str) -> Result<(), StoreError> {
    // The row is locked, so this only happens if the lock was not taken.
    if rows == 1 {
        Ok(())
    } else {
        Err(StoreError::StaleEtag(name.to_owned()))
    }
}
