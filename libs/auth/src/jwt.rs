//! Bearer tokens (JWT): signature, issuer, audience, expiry and not-before
//! with a clock skew, then the caller's identity from the claims.
//!
//! Keys come from a JWKS (RS256 and ES256), read from a file or fetched from
//! a URL, cached, re-read every ten minutes and at once (at most every 30 s)
//! when a token names a key id the cache does not know: an identity
//! provider's key rotation needs no restart. HS256 with a shared secret is
//! for development (`itsm dev`, `itsm token`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value};
use tokio::sync::RwLock;

use crate::error::AuthError;
use crate::principal::{Principal, PrincipalKind};

/// Where the JWKS lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    File(PathBuf),
    Url(String),
}

impl JwksSource {
    /// `http(s)://...` is a URL, anything else a file path.
    pub fn parse(value: &str) -> Self {
        if value.starts_with("https://") || value.starts_with("http://") {
            Self::Url(value.to_owned())
        } else {
            Self::File(PathBuf::from(value))
        }
    }
}

/// What a token must say and which claims carry the caller's identity.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub issuer: String,
    pub audience: String,
    pub clock_skew: Duration,
    pub roles_claim: String,
    pub groups_claim: String,
}

const REFRESH_EVERY: Duration = Duration::from_secs(600);
const UNKNOWN_KID_COOLDOWN: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct KeyCache {
    keys: HashMap<String, (DecodingKey, Algorithm)>,
    fetched: Option<Instant>,
}

/// Verifies tokens against either a JWKS or an HS256 secret.
#[derive(Debug)]
pub struct JwtVerifier {
    settings: JwtSettings,
    keys: Keys,
    /// Tokens verified lately, with the principal and when to forget them: a
    /// client sends the same token on every call, and checking its signature
    /// and claims each time is most of what authentication costs.
    verified: std::sync::Mutex<HashMap<String, (Principal, u64)>>,
}

/// Longest a verified token is trusted without checking it again (its key may
/// have been withdrawn from the JWKS meanwhile).
const TRUST_VERIFIED_FOR: u64 = 300;
const MAX_VERIFIED: usize = 10_000;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

#[derive(Debug)]
enum Keys {
    Hs256(DecodingKey),
    Jwks {
        source: JwksSource,
        http: Option<reqwest::Client>,
        cache: RwLock<KeyCache>,
    },
}

impl JwtVerifier {
    /// Verifies HS256 tokens signed with `secret` (development).
    pub fn hs256(secret: &[u8], settings: JwtSettings) -> Self {
        Self {
            settings,
            keys: Keys::Hs256(DecodingKey::from_secret(secret)),
            verified: std::sync::Mutex::default(),
        }
    }

    /// Verifies RS256/ES256 tokens with the keys of a JWKS.
    pub fn jwks(source: JwksSource, settings: JwtSettings) -> Result<Self, AuthError> {
        let http = match &source {
            JwksSource::Url(_) => {
                // reqwest is built without a default TLS provider; use ring.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .map_err(|e| {
                        AuthError::Unavailable(format!("cannot build the JWKS client: {e}"))
                    })?;
                Some(client)
            }
            JwksSource::File(_) => None,
        };
        Ok(Self {
            settings,
            keys: Keys::Jwks {
                source,
                http,
                cache: RwLock::new(KeyCache {
                    keys: HashMap::new(),
                    fetched: None,
                }),
            },
            verified: std::sync::Mutex::default(),
        })
    }

    /// The caller a token names, once every check passed.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let now = unix_now();
        if let Ok(verified) = self.verified.lock()
            && let Some((principal, until)) = verified.get(token)
            && now < *until
        {
            return Ok(principal.clone());
        }
        let (principal, expires) = self.verify_uncached(token).await?;
        if let Ok(mut verified) = self.verified.lock() {
            if verified.len() >= MAX_VERIFIED {
                verified.retain(|_, (_, until)| now < *until);
                if verified.len() >= MAX_VERIFIED {
                    verified.clear();
                }
            }
            let until = expires.min(now + TRUST_VERIFIED_FOR);
            verified.insert(token.to_owned(), (principal.clone(), until));
        }
        Ok(principal)
    }

    async fn verify_uncached(&self, token: &str) -> Result<(Principal, u64), AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| unauthenticated("malformed bearer token: not a JWT"))?;
        let (key, algorithm) = match &self.keys {
            Keys::Hs256(key) => (key.clone(), Algorithm::HS256),
            Keys::Jwks { .. } => self.jwks_key(header.kid.as_deref()).await?,
        };
        if header.alg != algorithm {
            return Err(unauthenticated(&format!(
                "token signed with {:?}; this service accepts {algorithm:?} for that key",
                header.alg
            )));
        }
        let mut validation = Validation::new(algorithm);
        validation.leeway = self.settings.clock_skew.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| self.explain(e))?;
        let expires = data.claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
        Ok((self.principal(&data.claims), expires))
    }

    fn explain(&self, error: jsonwebtoken::errors::Error) -> AuthError {
        use jsonwebtoken::errors::ErrorKind as K;
        let reason = match error.kind() {
            K::ExpiredSignature => "token expired".to_owned(),
            K::ImmatureSignature => "token not valid yet (nbf is in the future)".to_owned(),
            K::InvalidSignature => "token signature does not verify".to_owned(),
            K::InvalidIssuer => format!("token issuer is not {:?}", self.settings.issuer),
            K::InvalidAudience => format!(
                "token audience does not include {:?}",
                self.settings.audience
            ),
            K::MissingRequiredClaim(claim) => format!("token lacks the {claim} claim"),
            K::InvalidAlgorithm => "token algorithm not accepted".to_owned(),
            _ => "malformed bearer token".to_owned(),
        };
        AuthError::Unauthenticated(reason)
    }

    fn principal(&self, claims: &Map<String, Value>) -> Principal {
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let list = |name: &str| match claims.get(name) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(one)) => one
                .split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        let subject = text("sub");
        let display_name = [text("name"), text("preferred_username")]
            .into_iter()
            .find(|name| !name.is_empty())
            .unwrap_or_else(|| subject.clone());
        let kind = if list(&self.settings.roles_claim)
            .iter()
            .any(|r| r == crate::roles::SERVICE)
        {
            PrincipalKind::ServiceAccount
        } else {
            PrincipalKind::User
        };
        Principal {
            display_name,
            kind,
            roles: list(&self.settings.roles_claim),
            groups: list(&self.settings.groups_claim),
            tenant: text("tenant"),
            subject,
        }
    }

    async fn jwks_key(&self, kid: Option<&str>) -> Result<(DecodingKey, Algorithm), AuthError> {
        let Keys::Jwks {
            source,
            http,
            cache,
        } = &self.keys
        else {
            return Err(unauthenticated("no JWKS configured"));
        };
        let kid =
            kid.ok_or_else(|| unauthenticated("token has no kid header; cannot pick a key"))?;
        {
            let cached = cache.read().await;
            let fresh = cached
                .fetched
                .is_some_and(|at| at.elapsed() < REFRESH_EVERY);
            if let (Some(key), true) = (cached.keys.get(kid), fresh) {
                return Ok(key.clone());
            }
        }
        let mut cached = cache.write().await;
        let stale = cached
            .fetched
            .is_none_or(|at| at.elapsed() >= REFRESH_EVERY);
        let may_retry = cached
            .fetched
            .is_none_or(|at| at.elapsed() >= UNKNOWN_KID_COOLDOWN);
        if stale || (!cached.keys.contains_key(kid) && may_retry) {
            match load(source, http.as_ref()).await {
                Ok(keys) => {
                    cached.keys = keys;
                    cached.fetched = Some(Instant::now());
                }
                // Keep serving with the keys we have; fail only if we have none.
                Err(error) if !cached.keys.is_empty() => {
                    tracing::warn!(%error, "cannot refresh the JWKS; using the cached keys");
                }
                Err(error) => return Err(error),
            }
        }
        cached
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| unauthenticated(&format!("token signed with unknown key id {kid:?}")))
    }
}

async fn load(
    source: &JwksSource,
    http: Option<&reqwest::Client>,
) -> Result<HashMap<String, (DecodingKey, Algorithm)>, AuthError> {
    let text = match (source, http) {
        (JwksSource::File(path), _) => tokio::fs::read_to_string(path).await.map_err(|e| {
            AuthError::Unavailable(format!("cannot read the JWKS file {}: {e}", path.display()))
        })?,
        (JwksSource::Url(url), Some(client)) => {
            let fetch = async {
                client
                    .get(url)
                    .send()
                    .await?
                    .error_for_status()?
                    .text()
                    .await
            };
            fetch.await.map_err(|e| {
                AuthError::Unavailable(format!("cannot fetch the JWKS from {url}: {e}"))
            })?
        }
        (JwksSource::Url(url), None) => {
            return Err(AuthError::Unavailable(format!(
                "no HTTP client for the JWKS at {url}"
            )));
        }
    };
    let set: JwkSet = serde_json::from_str(&text).map_err(|e| {
        AuthError::Unavailable(format!("the JWKS is not valid JSON Web Key Set JSON: {e}"))
    })?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        let algorithm = match &jwk.algorithm {
            jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
            jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
            // Symmetric and other keys have no place in a public key set.
            _ => continue,
        };
        match DecodingKey::from_jwk(jwk) {
            Ok(key) => {
                keys.insert(kid, (key, algorithm));
            }
            Err(error) => tracing::warn!(%kid, %error, "skipping a JWKS key that cannot be used"),
        }
    }
    Ok(keys)
}

fn unauthenticated(reason: &str) -> AuthError {
    AuthError::Unauthenticated(reason.to_owned())
}

/// What [`mint_hs256`] puts in a token.
#[derive(Debug, Clone)]
pub struct TokenRequest<'a> {
    pub subject: &'a str,
    pub name: &'a str,
    pub roles: &'a [String],
    pub groups: &'a [String],
    pub ttl: Duration,
}

/// Signs a development token with an HS256 secret (`itsm dev`, `itsm token`).
pub fn mint_hs256(
    secret: &[u8],
    settings: &JwtSettings,
    request: &TokenRequest<'_>,
) -> Result<String, AuthError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let claims = serde_json::json!({
        "iss": settings.issuer,
        "aud": settings.audience,
        "sub": request.subject,
        "name": request.name,
        "iat": now,
        "nbf": now,
        "exp": now + request.ttl.as_secs(),
        settings.roles_claim.as_str(): request.roles,
        settings.groups_claim.as_str(): request.groups,
    });
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| AuthError::Unavailable(format!("cannot sign the token: {e}")))
}
