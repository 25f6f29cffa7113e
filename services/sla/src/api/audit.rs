//! The audit trail of a calendar or definition, oldest first.

use itsm_platform::ApiError;
use itsm_proto::itsm::sla::v1 as pb;
use itsm_store::query::SqlValue;
use itsm_store::{StoreError, audit, page};

use super::SlaApi;
use super::call::Call;
use crate::store::{calendars, definitions};

impl SlaApi {
    pub(super) async fn list_audit_entries(
        &self,
        _call: &Call,
        request: pb::ListAuditEntriesRequest,
    ) -> Result<pb::ListAuditEntriesResponse, ApiError> {
        let name = request.parent.as_str();
        if calendars::id_of(name).is_none() && definitions::id_of(name).is_none() {
            return Err(ApiError::invalid_field(
                "parent",
                format!(
                    "\"{name}\" is not a calendar or definition name; expected \"calendars/<id>\" or \"slaDefinitions/<id>\""
                ),
            ));
        }
        let limit = page::page_size(request.page_size)?;
        let tokens = self.tokens().await?;
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        // The token is bound to this resource's trail and carries the last entry's id.
        let query = format!("audit\u{0}{name}");
        let after = if request.page_token.is_empty() {
            0
        } else {
            match tokens.decode(&request.page_token, &query)?.as_slice() {
                [SqlValue::Int(id)] => *id,
                _ => {
                    return Err(ApiError::invalid_field(
                        "page_token",
                        "is not a token of this list; start again without one",
                    ));
                }
            }
        };
        let wanted = i64::try_from(limit + 1).unwrap_or(i64::MAX);
        let mut entries = audit::select_for_resource(&mut conn, name, after, wanted).await?;
        if entries.is_empty() && after == 0 {
            return Err(ApiError::not_found(name));
        }
        let mut next_page_token = String::new();
        if entries.len() > limit {
            entries.truncate(limit);
            if let Some((last, _)) = entries.last() {
                next_page_token = tokens.encode(&query, &[SqlValue::Int(*last)]);
            }
        }
        Ok(pb::ListAuditEntriesResponse {
            entries: entries
                .iter()
                .map(|(id, record)| record.to_proto(*id))
                .collect(),
            next_page_token,
        })
    }
}
