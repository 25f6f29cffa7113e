//! What every handler shares: the bus stream and event types of this
//! practice, and the audit entry + event of a change.

pub use itsm_auth::Call;
pub use itsm_store::change::Change;
use itsm_store::{StoreError, Tx};

/// The bus stream and event source of this practice.
pub const STREAM: &str = "sla";
pub const SOURCE: &str = "itsm.sla";

/// The audit entry and the event of a change, in the change's transaction.
pub async fn record(
    tx: &mut Tx,
    call: &Call,
    change: Change<'_>,
    now: i64,
) -> Result<(), StoreError> {
    itsm_store::change::record(tx, &call.origin(STREAM, SOURCE), change, now).await
}
