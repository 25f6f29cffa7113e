//! API keys checked by the identity service, for every other service.
//!
//! The call to `VerifyApiKey` carries the key being verified as its own
//! credential: whoever holds a key may ask what it grants, and nothing else,
//! so services need no account of their own for this. Answers are cached
//! briefly (a minute, never past the key's expiry; refusals five seconds),
//! so a revocation takes effect everywhere within a minute. Keys are cached
//! under their hash, never in clear.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use itsm_proto::itsm::identity::v1::VerifyApiKeyRequest;
use itsm_proto::itsm::identity::v1::identity_service_client::IdentityServiceClient;
use tonic::transport::{Channel, Endpoint};

use crate::apikey::{self, ApiKeyVerifier};
use crate::authn::API_KEY_HEADER;
use crate::error::AuthError;
use crate::principal::{Principal, PrincipalKind};

const ACCEPTED_FOR: Duration = Duration::from_secs(60);
const REFUSED_FOR: Duration = Duration::from_secs(5);
const MAX_ENTRIES: usize = 10_000;

type Entry = (Result<Principal, AuthError>, Instant);

/// Verifies API keys by asking the identity service.
#[derive(Debug)]
pub struct RemoteApiKeyVerifier {
    addr: String,
    client: IdentityServiceClient<Channel>,
    cache: Mutex<HashMap<String, Entry>>,
}

impl RemoteApiKeyVerifier {
    /// A verifier for the identity service at `addr` (`http://identity:50051`).
    /// Connects lazily: the service starts even while identity is down.
    pub fn new(addr: &str) -> Result<Self, AuthError> {
        let channel = Endpoint::from_shared(addr.to_owned())
            .map_err(|e| {
                AuthError::Unavailable(format!("bad identity service address {addr}: {e}"))
            })?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(3))
            .connect_lazy();
        Ok(Self {
            addr: addr.to_owned(),
            client: IdentityServiceClient::new(channel),
            cache: Mutex::new(HashMap::new()),
        })
    }

    fn cached(&self, hash: &str) -> Option<Result<Principal, AuthError>> {
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .get(hash)
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(answer, _)| answer.clone())
    }

    fn remember(&self, hash: String, answer: Result<Principal, AuthError>, until: Instant) {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= MAX_ENTRIES {
            let now = Instant::now();
            cache.retain(|_, (_, until)| *until > now);
            if cache.len() >= MAX_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(hash, (answer, until));
    }
}

#[async_trait]
impl ApiKeyVerifier for RemoteApiKeyVerifier {
    async fn verify(&self, key: &str) -> Result<Principal, AuthError> {
        apikey::parse(key)?;
        let hash = apikey::hash_secret(key);
        if let Some(answer) = self.cached(&hash) {
            return answer;
        }
        let mut request = tonic::Request::new(VerifyApiKeyRequest {
            key: key.to_owned(),
        });
        let value = tonic::metadata::MetadataValue::try_from(key)
            .map_err(|_| AuthError::Unauthenticated("malformed API key".into()))?;
        request.metadata_mut().insert(API_KEY_HEADER, value);
        match self.client.clone().verify_api_key(request).await {
            Ok(response) => {
                let answer = response.into_inner();
                let principal = Principal {
                    subject: answer.service_account,
                    display_name: answer.display_name,
                    kind: PrincipalKind::ServiceAccount,
                    roles: answer.roles,
                    groups: Vec::new(),
                    tenant: String::new(),
                };
                let mut until = Instant::now() + ACCEPTED_FOR;
                if let Some(expiry) = answer.expire_time {
                    let left = u64::try_from(expiry.seconds).unwrap_or(0).saturating_sub(
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap_or_default()
                            .as_secs(),
                    );
                    until = until.min(Instant::now() + Duration::from_secs(left));
                }
                self.remember(hash, Ok(principal.clone()), until);
                Ok(principal)
            }
            Err(status)
                if matches!(
                    status.code(),
                    tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
                ) =>
            {
                let refused = AuthError::Unauthenticated(status.message().to_owned());
                self.remember(hash, Err(refused.clone()), Instant::now() + REFUSED_FOR);
                Err(refused)
            }
            Err(status) => Err(AuthError::Unavailable(format!(
                "cannot verify the API key: the identity service at {} answered {:?}: {}",
                self.addr,
                status.code(),
                status.message()
            ))),
        }
    }
}
