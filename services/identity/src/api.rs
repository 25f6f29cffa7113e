//! The `IdentityService` handlers: decode, check, run the use case, encode.
//! API keys here; assignment groups in [`group`].
//!
//! Who may call which method is decided before a handler runs, by the auth
//! layer and `policy.toml`; handlers read the caller only to record it and
//! for the one rule the table cannot express (only an admin grants admin).
//! Every change writes its row, audit entry and event in one transaction.

use std::sync::Arc;

use itsm_auth::Call;
use itsm_auth::apikey;
use itsm_platform::ApiError;
use itsm_proto::itsm::identity::v1 as pb;
use itsm_proto::itsm::identity::v1::identity_service_server::IdentityService;
use itsm_store::audit::FieldChange;
use itsm_store::idempotency::{self, Claim};
use itsm_store::list::ListRequest;
use itsm_store::page::PageTokens;
use itsm_store::{Db, StoreError, Tx, etag};
use prost::Message as _;
use tokio::sync::OnceCell;
use tonic::{Request, Response, Status};

use crate::convert;
use crate::domain::{self, ApiKey};
use crate::store::{self, StoredKey};
use crate::verify::LocalApiKeyVerifier;

mod group;

const STREAM: &str = "identity";
const SOURCE: &str = "itsm.identity";
/// Audit action and event type of each change.
const CREATED: (&str, &str) = ("create", "identity.api_key.created");
const REVOKED: (&str, &str) = ("revoke", "identity.api_key.revoked");
const CREATE_METHOD: &str = "itsm.identity.v1.IdentityService/CreateApiKey";
/// Draws of a fresh key id before giving up; a collision of 48 random bits
/// is already unlikely once.
const KEY_ID_ATTEMPTS: usize = 3;

/// The `IdentityService` handlers. Cheap to clone.
#[derive(Debug, Clone)]
pub struct IdentityApi {
    db: Db,
    verifier: LocalApiKeyVerifier,
    tokens: Arc<OnceCell<PageTokens>>,
}

impl IdentityApi {
    /// Handlers over `db`, migrated with [`crate::MIGRATIONS`]. List page
    /// tokens are signed with a key kept in that database (made on first use).
    pub fn new(db: Db) -> Self {
        Self {
            verifier: LocalApiKeyVerifier::new(db.clone()),
            db,
            tokens: Arc::new(OnceCell::new()),
        }
    }

    /// The key that signs list page tokens, read (or made) on first use.
    async fn page_tokens(&self) -> Result<&PageTokens, StoreError> {
        self.tokens
            .get_or_try_init(|| PageTokens::of_database(&self.db))
            .await
    }

    async fn create(
        &self,
        call: &Call,
        request: pb::CreateApiKeyRequest,
    ) -> Result<pb::CreateApiKeyResponse, ApiError> {
        let wanted = convert::key_request(request.api_key.clone().unwrap_or_default());
        domain::check_grant(&wanted.roles, call.caller.is_admin())?;
        let now = itsm_store::now_micros();
        let new = wanted.validate(now)?;

        let mut tx = self.db.begin().await?;
        if !request.request_id.is_empty() {
            // The content hash leaves the request id out: it is what identifies a retry.
            let content = pb::CreateApiKeyRequest {
                request_id: String::new(),
                ..request.clone()
            };
            let hash = idempotency::hash_request(&content.encode_to_vec());
            let claim = idempotency::claim(&mut tx, CREATE_METHOD, &request.request_id, &hash);
            if let Claim::Replay { resource } = claim.await? {
                // The secret was shown once and is not stored: a replay cannot return it.
                let key = select(&mut tx, &resource, "").await?;
                tx.commit().await.map_err(StoreError::from)?;
                return Ok(pb::CreateApiKeyResponse {
                    api_key: Some(convert::api_key(&key.key, now)),
                    secret: String::new(),
                });
            }
        }

        let mut issued = None;
        for _ in 0..KEY_ID_ATTEMPTS {
            let generated = apikey::generate();
            let key = ApiKey::issue(
                new.clone(),
                generated.key_id.clone(),
                call.actor.clone(),
                now,
            );
            if store::insert_api_key(&mut tx, &key, &generated.secret_hash).await? {
                issued = Some((key, generated.plaintext));
                break;
            }
        }
        let Some((key, secret)) = issued else {
            return Err(ApiError::internal("no free api key id after several draws"));
        };
        let name = key.name();
        record(&mut tx, call, &key, CREATED, key.creation_changes(), now).await?;
        if !request.request_id.is_empty() {
            idempotency::complete(&mut tx, CREATE_METHOD, &request.request_id, &name).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(key = %name, service_account = %key.service_account, "api key created");
        Ok(pb::CreateApiKeyResponse {
            api_key: Some(convert::api_key(&key, now)),
            secret,
        })
    }

    async fn get(&self, request: pb::GetApiKeyRequest) -> Result<pb::ApiKey, ApiError> {
        let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
        let stored = select(&mut conn, &request.name, "").await?;
        Ok(convert::api_key(&stored.key, itsm_store::now_micros()))
    }

    async fn list(
        &self,
        request: pb::ListApiKeysRequest,
    ) -> Result<pb::ListApiKeysResponse, ApiError> {
        let tokens = self.page_tokens().await?;
        let list = ListRequest {
            page_size: request.page_size,
            page_token: &request.page_token,
            filter: &request.filter,
            order_by: &request.order_by,
        };
        let (keys, next_page_token) = store::select_page(&self.db, &list, tokens).await?;
        let now = itsm_store::now_micros();
        Ok(pb::ListApiKeysResponse {
            api_keys: keys.iter().map(|key| convert::api_key(key, now)).collect(),
            next_page_token,
        })
    }

    async fn revoke(
        &self,
        call: &Call,
        request: pb::RevokeApiKeyRequest,
    ) -> Result<pb::ApiKey, ApiError> {
        domain::key_id_from_name(&request.name, "name")?;
        domain::check_reason(&request.reason)?;
        let now = itsm_store::now_micros();
        let mut tx = self.db.begin().await?;
        let lock = self.db.backend().lock_suffix();
        let StoredKey { id, mut key, .. } = select(&mut tx, &request.name, lock).await?;
        let previous = key.version;
        // The state first: "already revoked" is the answer whatever etag was sent.
        let changes = key.revoke(call.actor.clone(), &request.reason, now)?;
        etag::check(&request.name, &request.etag, previous, false)?;
        store::update_revoked(&mut tx, id, &key, previous).await?;
        record(&mut tx, call, &key, REVOKED, changes, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(key = %request.name, "api key revoked");
        Ok(convert::api_key(&key, now))
    }

    async fn verify(
        &self,
        request: pb::VerifyApiKeyRequest,
    ) -> Result<pb::VerifyApiKeyResponse, ApiError> {
        let key = self.verifier.verify_key(&request.key).await?;
        Ok(convert::verify_response(&key))
    }
}

/// The key named `name`: INVALID_ARGUMENT for a malformed name, NOT_FOUND for an unknown one.
async fn select(
    conn: &mut sqlx::AnyConnection,
    name: &str,
    lock: &'static str,
) -> Result<StoredKey, ApiError> {
    let key_id = domain::key_id_from_name(name, "name")?;
    store::select_api_key(conn, key_id, lock)
        .await?
        .ok_or_else(|| ApiError::not_found(name))
}

/// The audit entry and the event of a change to a key, in the change's transaction.
async fn record(
    tx: &mut Tx,
    call: &Call,
    key: &ApiKey,
    (action, event_type): (&str, &str),
    changes: Vec<FieldChange>,
    now: i64,
) -> Result<(), StoreError> {
    let payload = convert::event_payload(key, &changes, now);
    let name = key.name();
    let change = Change {
        resource: &name,
        version: key.version,
        action,
        event_type,
        changes,
        payload,
    };
    record_change(tx, call, change, now).await
}

use itsm_store::change::Change;

/// Writes the audit entry and the event of a change, in the change's transaction.
async fn record_change(
    tx: &mut Tx,
    call: &Call,
    change: Change<'_>,
    now: i64,
) -> Result<(), StoreError> {
    itsm_store::change::record(tx, &call.origin(STREAM, SOURCE), change, now).await
}

/// A use case's result as a reply: where every error becomes a status.
fn reply<T>(result: Result<T, ApiError>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl IdentityService for IdentityApi {
    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        let call = Call::of(&request)?;
        reply(self.create(&call, request.into_inner()).await)
    }

    async fn get_api_key(
        &self,
        request: Request<pb::GetApiKeyRequest>,
    ) -> Result<Response<pb::ApiKey>, Status> {
        itsm_auth::principal(&request)?;
        reply(self.get(request.into_inner()).await)
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        itsm_auth::principal(&request)?;
        reply(self.list(request.into_inner()).await)
    }

    async fn revoke_api_key(
        &self,
        request: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::ApiKey>, Status> {
        let call = Call::of(&request)?;
        reply(self.revoke(&call, request.into_inner()).await)
    }

    async fn verify_api_key(
        &self,
        request: Request<pb::VerifyApiKeyRequest>,
    ) -> Result<Response<pb::VerifyApiKeyResponse>, Status> {
        let caller = itsm_auth::principal(&request)?;
        // Services verify keys presented to them by asking with the key itself
        // as the credential (libs/auth remote.rs): a key holder may learn what
        // that very key grants, and nothing about other keys, unless it is a
        // service or an admin. A different key in the body is refused.
        let presented = request
            .metadata()
            .get(itsm_auth::authn::API_KEY_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::trim);
        let may_verify_any = caller.has_role(itsm_auth::roles::SERVICE) || caller.is_admin();
        if !may_verify_any && presented != Some(request.get_ref().key.as_str()) {
            return Err(Status::permission_denied(
                "only services and admins may verify keys other than the one they present",
            ));
        }
        reply(self.verify(request.into_inner()).await)
    }

    async fn create_group(
        &self,
        request: Request<pb::CreateGroupRequest>,
    ) -> Result<Response<pb::Group>, Status> {
        let call = Call::of(&request)?;
        reply(group::create(self, &call, request.into_inner()).await)
    }

    async fn get_group(
        &self,
        request: Request<pb::GetGroupRequest>,
    ) -> Result<Response<pb::Group>, Status> {
        itsm_auth::principal(&request)?;
        reply(group::get(self, request.into_inner()).await)
    }

    async fn list_groups(
        &self,
        request: Request<pb::ListGroupsRequest>,
    ) -> Result<Response<pb::ListGroupsResponse>, Status> {
        itsm_auth::principal(&request)?;
        reply(group::list(self, request.into_inner()).await)
    }

    async fn update_group(
        &self,
        request: Request<pb::UpdateGroupRequest>,
    ) -> Result<Response<pb::Group>, Status> {
        let call = Call::of(&request)?;
        reply(group::update(self, &call, request.into_inner()).await)
    }

    async fn delete_group(
        &self,
        request: Request<pb::DeleteGroupRequest>,
    ) -> Result<Response<pb::DeleteGroupResponse>, Status> {
        let call = Call::of(&request)?;
        reply(group::delete(self, &call, request.into_inner()).await)
    }

    async fn add_group_member(
        &self,
        request: Request<pb::AddGroupMemberRequest>,
    ) -> Result<Response<pb::Group>, Status> {
        let call = Call::of(&request)?;
        reply(group::add_member(self, &call, request.into_inner()).await)
    }

    async fn remove_group_member(
        &self,
        request: Request<pb::RemoveGroupMemberRequest>,
    ) -> Result<Response<pb::Group>, Status> {
        let call = Call::of(&request)?;
        reply(group::remove_member(self, &call, request.into_inner()).await)
    }

    async fn check_membership(
        &self,
        request: Request<pb::CheckMembershipRequest>,
    ) -> Result<Response<pb::CheckMembershipResponse>, Status> {
        itsm_auth::principal(&request)?;
        reply(group::check_membership(self, request.into_inner()).await)
    }
}
