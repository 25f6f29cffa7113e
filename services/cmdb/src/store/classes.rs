//! The `ci_classes` table: classes as declared (doc: `CiClass`).

use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::StoreError;
use sqlx::AnyConnection;

/// Every class as stored.
pub async fn select_all(conn: &mut AnyConnection) -> Result<Vec<pb::CiClass>, StoreError> {
    let docs: Vec<Vec<u8>> = sqlx::query_scalar("SELECT doc FROM ci_classes")
        .fetch_all(conn)
        .await?;
    docs.iter()
        .map(|d| super::decode("ci_classes", d))
        .collect()
}
