//! Turning a presented API key into the service account it authenticates,
//! from this service's own database: what `VerifyApiKey` answers, and what
//! the identity service's own auth layer will use (other services call
//! `VerifyApiKey` instead).
//!
//! The checks run in an order that tells a caller nothing it does not
//! already hold: the key's shape, whether its id exists, whether the secret
//! matches (in constant time), and only then whether it is revoked or
//! expired. Messages never echo the key.

use async_trait::async_trait;
use itsm_auth::apikey::{self, ApiKeyVerifier};
use itsm_auth::{AuthError, Principal, PrincipalKind};
use itsm_store::{Db, StoreError};

use crate::domain::{ApiKey, KeyState, rfc3339};
use crate::store;

/// How stale `last_used_time` may be before a verification refreshes it:
/// coarse on purpose, so verifying stays a read almost every time.
const LAST_USED_GRANULARITY_MICROS: i64 = 3600 * 1_000_000;

/// Verifies keys against the identity database.
#[derive(Debug, Clone)]
pub struct LocalApiKeyVerifier {
    db: Db,
}

impl LocalApiKeyVerifier {
    /// A verifier reading the `api_keys` table of `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The key `presented` names, if it authenticates its holder now.
    pub async fn verify_key(&self, presented: &str) -> Result<ApiKey, AuthError> {
        let parsed = apikey::parse(presented)?;
        let mut conn = self
            .db
            .pool()
            .acquire()
            .await
            .map_err(|e| unavailable(e.into()))?;
        let stored = store::select_api_key(&mut conn, parsed.key_id, "")
            .await
            .map_err(unavailable)?
            .ok_or_else(|| {
                AuthError::Unauthenticated("unknown API key: no key has this key id".into())
            })?;
        if !apikey::verify_secret(parsed.secret, &stored.secret_hash) {
            return Err(AuthError::Unauthenticated(
                "API key rejected: the secret does not match the key id".into(),
            ));
        }
        let now = itsm_store::now_micros();
        let mut key = stored.key;
        // The presenter holds the whole key here, so naming it tells them nothing new.
        match key.state(now) {
            KeyState::Revoked => {
                return Err(AuthError::Unauthenticated(format!(
                    "API key {} was revoked; ask an admin for a new key",
                    key.name()
                )));
            }
            KeyState::Expired => {
                return Err(AuthError::Unauthenticated(format!(
                    "API key {} expired at {}; ask an admin for a new key",
                    key.name(),
                    rfc3339(key.expire_time)
                )));
            }
            KeyState::Active => {}
        }
        let last_used = key.last_used_time.unwrap_or(0);
        if now.saturating_sub(last_used) >= LAST_USED_GRANULARITY_MICROS {
            // Bookkeeping only: a failure here must not refuse a valid key.
            match store::update_last_used(&mut conn, stored.id, now).await {
                Ok(()) => key.last_used_time = Some(now),
                Err(error) => {
                    tracing::warn!(%error, key = %key.name(), "cannot record api key use")
                }
            }
        }
        Ok(key)
    }
}

#[async_trait]
impl ApiKeyVerifier for LocalApiKeyVerifier {
    async fn verify(&self, key: &str) -> Result<Principal, AuthError> {
        self.verify_key(key).await.map(|key| principal_of(&key))
    }
}

/// The principal a verified key authenticates: its service account, with
/// the key's roles and nothing else.
pub fn principal_of(key: &ApiKey) -> Principal {
    Principal {
        subject: key.service_account.clone(),
        display_name: key.display_name.clone(),
        kind: PrincipalKind::ServiceAccount,
        roles: key.roles.clone(),
        groups: Vec::new(),
        tenant: String::new(),
    }
}

fn unavailable(error: StoreError) -> AuthError {
    tracing::error!(%error, "cannot read api keys");
    AuthError::Unavailable(
        "API keys cannot be checked now: the identity database is unreachable; retry with backoff"
            .into(),
    )
}
