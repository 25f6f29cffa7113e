//! Turns the credentials of a call into a principal: a bearer token
//! (`authorization: Bearer <jwt>`) or an API key (`x-api-key: <key>`, or
//! `authorization: ApiKey <key>`, or a bearer value that is an API key).

use std::sync::Arc;

use crate::apikey::ApiKeyVerifier;
use crate::error::AuthError;
use crate::jwt::JwtVerifier;
use crate::principal::Principal;

/// The credential sources a service accepts.
#[derive(Debug, Default)]
pub struct Authenticator {
    jwt: Option<JwtVerifier>,
    api_keys: Option<Arc<dyn ApiKeyVerifier>>,
}

/// A credential found on a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    Bearer(&'a str),
    ApiKey(&'a str),
}

/// The header an API key travels in.
pub const API_KEY_HEADER: &str = "x-api-key";

impl Authenticator {
    pub fn new(jwt: Option<JwtVerifier>, api_keys: Option<Arc<dyn ApiKeyVerifier>>) -> Self {
        Self { jwt, api_keys }
    }

    /// Whether any credential can be accepted at all.
    pub fn is_configured(&self) -> bool {
        self.jwt.is_some() || self.api_keys.is_some()
    }

    /// The caller, or why not.
    pub async fn authenticate(&self, headers: &http::HeaderMap) -> Result<Principal, AuthError> {
        match credential(headers)? {
            Credential::Bearer(token) => match &self.jwt {
                Some(jwt) => jwt.verify(token).await,
                None => Err(AuthError::Unauthenticated(
                    "bearer tokens are not accepted here (no issuer configured); use an API key".into(),
                )),
            },
            Credential::ApiKey(key) => match &self.api_keys {
                Some(keys) => keys.verify(key).await,
                None => Err(AuthError::Unauthenticated(
                    "API keys are not accepted here (no identity service configured); use a bearer token".into(),
                )),
            },
        }
    }
}

/// Finds the credential in the headers; none, or an unknown scheme, is UNAUTHENTICATED.
pub fn credential(headers: &http::HeaderMap) -> Result<Credential<'_>, AuthError> {
    if let Some(value) = headers.get(API_KEY_HEADER) {
        let key = value
            .to_str()
            .map_err(|_| AuthError::Unauthenticated("malformed x-api-key header".into()))?;
        return Ok(Credential::ApiKey(key.trim()));
    }
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Err(AuthError::Unauthenticated(
            "no credentials: send `authorization: Bearer <token>` or `x-api-key: <key>`".into(),
        ));
    };
    let value = value
        .to_str()
        .map_err(|_| AuthError::Unauthenticated("malformed authorization header".into()))?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if rest.is_empty() {
        return Err(AuthError::Unauthenticated(
            "malformed authorization header: expected `Bearer <token>` or `ApiKey <key>`".into(),
        ));
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        // Clients that only know bearer auth may send an API key that way.
        if rest.starts_with("itsm_") {
            Ok(Credential::ApiKey(rest))
        } else {
            Ok(Credential::Bearer(rest))
        }
    } else if scheme.eq_ignore_ascii_case("apikey") {
        Ok(Credential::ApiKey(rest))
    } else {
        Err(AuthError::Unauthenticated(format!(
            "unsupported authorization scheme {scheme:?}: use Bearer or ApiKey"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn finds_each_credential_form() {
        assert_eq!(
            credential(&headers(&[("authorization", "Bearer abc.def.ghi")])).unwrap(),
            Credential::Bearer("abc.def.ghi")
        );
        assert_eq!(
            credential(&headers(&[("authorization", "bearer itsm_k")])).unwrap(),
            Credential::ApiKey("itsm_k")
        );
        assert_eq!(
            credential(&headers(&[("authorization", "ApiKey itsm_k")])).unwrap(),
            Credential::ApiKey("itsm_k")
        );
        assert_eq!(
            credential(&headers(&[("x-api-key", "itsm_k")])).unwrap(),
            Credential::ApiKey("itsm_k")
        );
    }

    #[test]
    fn missing_or_odd_credentials_say_what_to_send() {
        let none = credential(&http::HeaderMap::new()).unwrap_err();
        assert!(none.to_string().starts_with("no credentials"), "{none}");
        let basic = credential(&headers(&[("authorization", "Basic dTpw")])).unwrap_err();
        assert!(
            basic
                .to_string()
                .contains("unsupported authorization scheme \"Basic\""),
            "{basic}"
        );
        assert!(
            !basic.to_string().contains("dTpw"),
            "the credential is not echoed"
        );
        assert!(credential(&headers(&[("authorization", "Bearer ")])).is_err());
    }
}
