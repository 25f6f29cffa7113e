//! Recomputation operations: start one over a filter of task SLAs
//! (RecomputeTaskSlas), read, list and cancel them. The work itself is
//! `crate::operations` (the worker).

use itsm_platform::ApiError;
use itsm_proto::itsm::sla::v1 as pb;
use itsm_store::StoreError;
use itsm_store::idempotency::{self, Claim};
use itsm_store::list::ListRequest;
use prost::Message as _;

use super::SlaApi;
use super::call::{self, Call};
use crate::operations;
use crate::store::operations as rows;

const METHOD: &str = "RecomputeTaskSlas";

/// The uid of an operation name in request field `field`.
fn uid_of<'a>(name: &'a str, field: &str) -> Result<&'a str, ApiError> {
    rows::uid_of(name).ok_or_else(|| {
        ApiError::invalid_field(
            field,
            format!("\"{name}\" is not an operation name; expected \"operations/<uuid>\""),
        )
    })
}

impl SlaApi {
    pub(super) async fn recompute_task_slas(
        &self,
        call: &Call,
        request: pb::RecomputeTaskSlasRequest,
    ) -> Result<pb::Operation, ApiError> {
        let mode = pb::RecomputeMode::try_from(request.mode).map_err(|_| {
            ApiError::invalid_field("mode", "must be LATEST_VERSIONS or KEEP_VERSIONS")
        })?;
        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        if !request.request_id.is_empty() {
            let mut unkeyed = request.clone();
            unkeyed.request_id.clear();
            let hash = idempotency::hash_request(&unkeyed.encode_to_vec());
            let claim = idempotency::claim(&mut tx, METHOD, &request.request_id, &hash).await?;
            if let Claim::Replay { resource } = claim {
                let uid = rows::uid_of(&resource).unwrap_or_default();
                let first = rows::select(&mut tx, uid, "").await?;
                return first
                    .map(|op| op.doc)
                    .ok_or_else(|| ApiError::not_found(resource));
            }
        }
        let op = operations::create(
            &mut tx,
            &request.filter,
            mode,
            METHOD,
            call::principal(call),
            now,
        )
        .await?;
        if !request.request_id.is_empty() {
            idempotency::complete(&mut tx, METHOD, &request.request_id, &op.name).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(op)
    }

    pub(super) async fn get_operation(
        &self,
        _call: &Call,
        request: pb::GetOperationRequest,
    ) -> Result<pb::Operation, ApiError> {
        let uid = uid_of(&request.name, "name")?;
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        rows::select(&mut conn, uid, "")
            .await?
            .map(|op| op.doc)
            .ok_or_else(|| ApiError::not_found(&request.name))
    }

    pub(super) async fn list_operations(
        &self,
        _call: &Call,
        request: pb::ListOperationsRequest,
    ) -> Result<pb::ListOperationsResponse, ApiError> {
        let tokens = self.tokens().await?;
        let list = ListRequest {
            page_size: request.page_size,
            page_token: &request.page_token,
            filter: &request.filter,
            order_by: &request.order_by,
        };
        let (operations, next_page_token) = rows::select_page(&self.db, &list, tokens).await?;
        Ok(pb::ListOperationsResponse {
            operations,
            next_page_token,
        })
    }

    pub(super) async fn cancel_operation(
        &self,
        _call: &Call,
        request: pb::CancelOperationRequest,
    ) -> Result<pb::Operation, ApiError> {
        let uid = uid_of(&request.name, "name")?;
        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        let op = operations::cancel(&mut tx, self.db.backend(), &request.name, uid, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(op)
    }
}
