//! The settings singleton (`cmdb_singletons` row "cmdb_settings", doc:
//! `CmdbSettings`). Never written until first changed: until then the
//! defaults are in force, at version 0 (etag "v0").

use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::{StoreError, etag};
use prost::Message as _;
use sqlx::AnyConnection;

/// The singleton's row name.
const ROW: &str = "cmdb_settings";
/// The settings' resource name.
pub const NAME: &str = "cmdbSettings";

/// The settings of a CMDB never configured: stale after 60 days, health
/// refresh every hour, impact depth 10, locations exempt from orphans.
pub fn defaults() -> pb::CmdbSettings {
    pb::CmdbSettings {
        name: NAME.into(),
        stale_after: Some(prost_types::Duration {
            seconds: 60 * 86_400,
            nanos: 0,
        }),
        orphan_exempt_classes: vec!["classes/location".into()],
        health_refresh_interval: Some(prost_types::Duration {
            seconds: 3_600,
            nanos: 0,
        }),
        default_impact_depth: 10,
        etag: "v0".into(),
    }
}

/// The settings in force: the stored ones, or the defaults (stale after 60
/// days, health refresh every hour, impact depth 10, locations exempt from
/// orphans) when never changed. Includes `etag`.
pub async fn load(conn: &mut AnyConnection) -> Result<pb::CmdbSettings, StoreError> {
    Ok(select_settings(conn, "").await?.1)
}

/// The settings and their version (0 when never changed), read with `lock`.
pub async fn select_settings(
    conn: &mut AnyConnection,
    lock: &str,
) -> Result<(i64, pb::CmdbSettings), StoreError> {
    let sql = format!("SELECT version, doc FROM cmdb_singletons WHERE name = $1{lock}");
    let row: Option<(i64, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(ROW)
        .fetch_optional(conn)
        .await?;
    match row {
        None => Ok((0, defaults())),
        Some((version, doc)) => {
            let mut settings: pb::CmdbSettings = super::decode("cmdb_singletons", &doc)?;
            settings.name = NAME.into();
            settings.etag = etag::from_version(version);
            Ok((version, settings))
        }
    }
}

/// Stores `settings` at `version` (inserting the row on the first change).
/// A concurrent writer that got there first (the stored version is not
/// `version - 1`) makes this a stale etag.
pub async fn upsert_settings(
    conn: &mut AnyConnection,
    settings: &pb::CmdbSettings,
    version: i64,
    now: i64,
) -> Result<(), StoreError> {
    let mut doc = settings.clone();
    doc.etag = etag::from_version(version);
    let result = sqlx::query(
        "INSERT INTO cmdb_singletons (name, version, updated_at, doc) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO UPDATE SET version = $2, updated_at = $3, doc = $4 \
         WHERE cmdb_singletons.version = $5",
    )
    .bind(ROW)
    .bind(version)
    .bind(now)
    .bind(doc.encode_to_vec())
    .bind(version - 1)
    .execute(conn)
    .await?;
    if result.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::StaleEtag(NAME.to_owned()))
    }
}
