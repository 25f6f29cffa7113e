//! The settings singleton (`cmdb_singletons` row "cmdb_settings", doc: `CmdbSettings`).
//!
//! PLACEHOLDER BODY: returns the defaults; the model helper stores them.

use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::StoreError;
use sqlx::AnyConnection;

/// The settings in force: the stored ones, or the defaults (stale after 60
/// days, health refresh every hour, impact depth 10, locations exempt from
/// orphans) when never changed. Includes `etag`.
pub async fn load(_conn: &mut AnyConnection) -> Result<pb::CmdbSettings, StoreError> {
    Ok(pb::CmdbSettings {
        name: "cmdbSettings".into(),
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
    })
}
