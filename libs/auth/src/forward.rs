//! Service-to-service calls: forward the caller's credentials (the callee
//! checks them again and sees the original caller), or use the service's own
//! account.

use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;

use crate::authn::API_KEY_HEADER;

/// The credential header a call arrived with, kept by the guard.
#[derive(Clone)]
pub struct CallerCredential {
    header: &'static str,
    value: AsciiMetadataValue,
}

impl std::fmt::Debug for CallerCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CallerCredential({}: [redacted])", self.header)
    }
}

impl CallerCredential {
    pub(crate) fn from_headers(headers: &http::HeaderMap) -> Option<Self> {
        for header in [API_KEY_HEADER, "authorization"] {
            if let Some(value) = headers.get(header).and_then(|v| v.to_str().ok()) {
                let value = MetadataValue::try_from(value).ok()?;
                return Some(Self { header, value });
            }
        }
        None
    }
}

/// A request to another service carrying the credential and request id of
/// `incoming`, the call being handled.
pub fn forward<T, U>(incoming: &tonic::Request<T>, message: U) -> tonic::Request<U> {
    let mut outgoing = tonic::Request::new(message);
    if let Some(credential) = incoming.extensions().get::<CallerCredential>() {
        outgoing
            .metadata_mut()
            .insert(credential.header, credential.value.clone());
    }
    if let Some(request_id) = incoming.metadata().get("x-request-id") {
        outgoing
            .metadata_mut()
            .insert("x-request-id", request_id.clone());
    }
    outgoing
}

/// An interceptor that sends the service's own credential on every call
/// (for work done on nobody's behalf: timers, consumers).
#[derive(Clone)]
pub struct OwnCredential {
    header: &'static str,
    value: AsciiMetadataValue,
}

impl std::fmt::Debug for OwnCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OwnCredential({}: [redacted])", self.header)
    }
}

impl OwnCredential {
    /// A bearer token.
    pub fn bearer(token: &str) -> Option<Self> {
        Some(Self {
            header: "authorization",
            value: MetadataValue::try_from(format!("Bearer {token}")).ok()?,
        })
    }

    /// An API key.
    pub fn api_key(key: &str) -> Option<Self> {
        Some(Self {
            header: API_KEY_HEADER,
            value: MetadataValue::try_from(key).ok()?,
        })
    }
}

impl Interceptor for OwnCredential {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if !request.metadata().contains_key(self.header) {
            request
                .metadata_mut()
                .insert(self.header, self.value.clone());
        }
        Ok(request)
    }
}
