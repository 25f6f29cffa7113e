//! Builds the authenticator from the service's configuration.

use std::sync::Arc;

use itsm_platform::Config;

use crate::apikey::ApiKeyVerifier;
use crate::authn::Authenticator;
use crate::error::AuthError;
use crate::jwt::{JwksSource, JwtSettings, JwtVerifier};

/// The JWT settings of a configuration.
pub fn jwt_settings(config: &Config) -> JwtSettings {
    JwtSettings {
        issuer: config.auth_issuer.clone(),
        audience: config.auth_audience.clone(),
        clock_skew: config.auth_clock_skew,
        roles_claim: config.auth_roles_claim.clone(),
        groups_claim: config.auth_groups_claim.clone(),
    }
}

/// Why no authenticator could be built. Printed at start-up, exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error(
        "ITSM_AUTH_JWKS and ITSM_AUTH_HS256_SECRET are both set: choose one token signing scheme"
    )]
    TwoSchemes,
    #[error(
        "no way to authenticate callers: set ITSM_AUTH_JWKS (your identity provider's keys) or \
         ITSM_AUTH_HS256_SECRET (development), and ITSM_IDENTITY_ADDR for API keys"
    )]
    Nothing,
    #[error("{0}")]
    Auth(#[from] AuthError),
}

/// The authenticator for `config`. `api_keys` verifies API keys (the identity
/// service's own database, or a client of the identity service).
pub fn authenticator(
    config: &Config,
    api_keys: Option<Arc<dyn ApiKeyVerifier>>,
) -> Result<Authenticator, AuthConfigError> {
    let settings = jwt_settings(config);
    let jwt = match (&config.auth_jwks, &config.auth_hs256_secret) {
        (Some(_), Some(_)) => return Err(AuthConfigError::TwoSchemes),
        (Some(jwks), None) => Some(JwtVerifier::jwks(JwksSource::parse(jwks), settings)?),
        (None, Some(secret)) => Some(JwtVerifier::hs256(secret.expose().as_bytes(), settings)),
        (None, None) => None,
    };
    let authn = Authenticator::new(jwt, api_keys);
    if authn.is_configured() {
        Ok(authn)
    } else {
        Err(AuthConfigError::Nothing)
    }
}
