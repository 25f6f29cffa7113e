//! The `relationship_types` table (doc: `RelationshipType`).

use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::StoreError;
use sqlx::AnyConnection;

/// Every relationship type as stored.
pub async fn select_all(conn: &mut AnyConnection) -> Result<Vec<pb::RelationshipType>, StoreError> {
    let docs: Vec<Vec<u8>> = sqlx::query_scalar("SELECT doc FROM relationship_types")
        .fetch_all(conn)
        .await?;
    docs.iter()
        .map(|d| super::decode("relationship_types", d))
        .collect()
}
