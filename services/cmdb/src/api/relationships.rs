//! The graph: create (through `crate::relate`), get, list and delete
//! relationships. Every change writes its row, a history entry on both CIs
//! and its event in one transaction, then makes cached impact results stale.

use itsm_platform::{ApiError, ErrorCode, Violations};
use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::StoreError;
use itsm_store::idempotency::{self, Claim};
use itsm_store::list::ListRequest;
use prost::Message as _;

use super::CmdbApi;
use super::call::Call;
use crate::relate::{self, MANUAL};
use crate::store::relationships as store;
use crate::write::{self, Origin, StoredCi};

const CREATE_METHOD: &str = "CreateRelationship";
const REQUEST_ID_MAX: usize = 128;
const DESCRIPTION_MAX: usize = 4_000;

impl CmdbApi {
    pub(super) async fn create_relationship(
        &self,
        call: &Call,
        request: pb::CreateRelationshipRequest,
    ) -> Result<pb::Relationship, ApiError> {
        let model = self.model().await?;
        let draft = request.relationship.clone().unwrap_or_default();
        let mut violations = Violations::new();
        if request.relationship.is_none() {
            violations.add("relationship", "required");
        }
        let type_id = crate::model::relationship_type_id(&draft.r#type).unwrap_or_default();
        if draft.r#type.is_empty() {
            violations.add(
                "relationship.type",
                "required, e.g. \"relationshipTypes/runs_on\"",
            );
        } else if model.relationship_type(type_id).is_none() {
            violations.add(
                "relationship.type",
                format!("\"{}\" is not a relationship type", draft.r#type),
            );
        }
        for (field, name) in [
            ("relationship.source_ci", &draft.source_ci),
            ("relationship.target_ci", &draft.target_ci),
        ] {
            if name.is_empty() {
                violations.add(field, "required, a CI name \"cis/<uuid>\"");
            } else if crate::ci_uid(name).is_none() {
                violations.add(
                    field,
                    format!("\"{name}\" is not a CI name; expected \"cis/<uuid>\""),
                );
            }
        }
        let count = draft.description.chars().count();
        violations.check(
            count <= DESCRIPTION_MAX,
            "relationship.description",
            format!("{count} characters long; the limit is {DESCRIPTION_MAX}"),
        );
        violations.check(
            request.request_id.chars().count() <= REQUEST_ID_MAX,
            "request_id",
            "must be at most 128 characters (a UUID is recommended)",
        );
        violations.into_result()?;

        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        if !request.request_id.is_empty() {
            let content = pb::CreateRelationshipRequest {
                request_id: String::new(),
                ..request.clone()
            };
            let hash = idempotency::hash_request(&content.encode_to_vec());
            let claim = idempotency::claim(&mut tx, CREATE_METHOD, &request.request_id, &hash);
            if let Claim::Replay { resource } = claim.await? {
                let found = store::select_by_name(&mut tx, &resource, "").await?;
                tx.commit().await.map_err(StoreError::from)?;
                return found
                    .map(|s| s.relationship)
                    .ok_or_else(|| ApiError::not_found(resource));
            }
        }
        // Both ends locked, in name order: concurrent relates of the same pair serialize.
        let lock = self.db.backend().lock_suffix();
        let mut ends = [
            ("relationship.source_ci", &draft.source_ci),
            ("relationship.target_ci", &draft.target_ci),
        ];
        ends.sort_by_key(|(_, name)| name.as_str());
        let mut loaded: Vec<(&str, StoredCi)> = Vec::new();
        let mut missing = Violations::new();
        for (field, name) in ends {
            match write::load(&mut tx, name, lock).await? {
                Some(ci) => loaded.push((field, ci)),
                None => missing.add(field, format!("{name} does not exist")),
            }
        }
        missing.into_result()?;
        let source = loaded
            .iter()
            .find(|(f, _)| *f == "relationship.source_ci")
            .map(|(_, ci)| ci);
        let target = loaded
            .iter()
            .rev()
            .find(|(f, _)| *f == "relationship.target_ci")
            .map(|(_, ci)| ci);
        let (Some(source), Some(target)) = (source, target) else {
            return Err(ApiError::internal("relationship ends not loaded"));
        };
        let origin = Origin {
            call,
            source: MANUAL,
            correlation_id: "",
            action: "relate",
            now,
        };
        let (relationship, created) = relate::relate(
            &mut tx,
            &model,
            source,
            type_id,
            target,
            &draft.description,
            "relationship",
            &origin,
        )
        .await?;
        if !created {
            return Err(ApiError::new(
                ErrorCode::AlreadyExists,
                format!(
                    "{} already relates {} and {} by {}",
                    relationship.name,
                    relationship.source_ci,
                    relationship.target_ci,
                    relationship.r#type
                ),
            ));
        }
        if !request.request_id.is_empty() {
            idempotency::complete(
                &mut tx,
                CREATE_METHOD,
                &request.request_id,
                &relationship.name,
            )
            .await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        self.impact_changed().await;
        tracing::info!(relationship = %relationship.name, r#type = %relationship.r#type, "relationship created");
        Ok(relationship)
    }

    pub(super) async fn get_relationship(
        &self,
        _call: &Call,
        request: pb::GetRelationshipRequest,
    ) -> Result<pb::Relationship, ApiError> {
        check_name(&request.name)?;
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        store::select_by_name(&mut conn, &request.name, "")
            .await?
            .map(|s| s.relationship)
            .ok_or_else(|| ApiError::not_found(&request.name))
    }

    pub(super) async fn list_relationships(
        &self,
        _call: &Call,
        request: pb::ListRelationshipsRequest,
    ) -> Result<pb::ListRelationshipsResponse, ApiError> {
        let tokens = self.tokens().await?;
        let list = ListRequest {
            page_size: request.page_size,
            page_token: &request.page_token,
            filter: &request.filter,
            order_by: &request.order_by,
        };
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let (relationships, next_page_token) = store::select_page(&mut conn, &list, tokens).await?;
        Ok(pb::ListRelationshipsResponse {
            relationships,
            next_page_token,
        })
    }

    pub(super) async fn delete_relationship(
        &self,
        call: &Call,
        request: pb::DeleteRelationshipRequest,
    ) -> Result<pb::DeleteRelationshipResponse, ApiError> {
        check_name(&request.name)?;
        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        let lock = self.db.backend().lock_suffix();
        let Some(stored) = store::select_by_name(&mut tx, &request.name, lock).await? else {
            return Err(ApiError::not_found(&request.name));
        };
        let origin = Origin {
            call,
            source: MANUAL,
            correlation_id: "",
            action: "unrelate",
            now,
        };
        store::delete(&mut tx, &stored, now).await?;
        let name = &stored.relationship.name;
        write::record_relationship(&mut tx, stored.source_id, "unrelate", name, &origin).await?;
        write::record_relationship(&mut tx, stored.target_id, "unrelate", name, &origin).await?;
        relate::emit(
            &mut tx,
            &stored.relationship,
            "cmdb.relationship.deleted",
            2,
            &origin,
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.impact_changed().await;
        tracing::info!(relationship = %name, "relationship deleted");
        Ok(pb::DeleteRelationshipResponse {})
    }
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if store::relationship_uid(name).is_none() {
        return Err(ApiError::invalid_field(
            "name",
            format!("\"{name}\" is not a relationship name; expected \"relationships/<uuid>\""),
        ));
    }
    Ok(())
}
