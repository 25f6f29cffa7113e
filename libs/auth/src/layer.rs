//! The guard every service runs: each call is authenticated, then authorized
//! against the service's policy table, before its handler sees it. The
//! principal (and the credential, for forwarding) ride in the request's
//! extensions.
//!
//! Services are wrapped one by one ([`Guard::protect`]), so the health and
//! reflection services a server adds stay open for probes and grpcurl.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::server::NamedService;

use crate::authn::Authenticator;
use crate::forward::CallerCredential;
use crate::policy::{Policy, PolicyError};

/// Wraps services with authentication and their policy.
#[derive(Debug, Clone)]
pub struct Guard {
    authn: Arc<Authenticator>,
}

impl Guard {
    pub fn new(authn: Arc<Authenticator>) -> Self {
        Self { authn }
    }

    /// Protects `service` with the policy table `policy` (TOML), which must
    /// be the table of that very service.
    pub fn protect<S: NamedService>(
        &self,
        service: S,
        policy: &str,
    ) -> Result<Protected<S>, PolicyError> {
        let policy = Policy::from_toml(policy)?;
        if policy.service != S::NAME {
            return Err(PolicyError::Parse(format!(
                "the table is for {}, not {}",
                policy.service,
                S::NAME
            )));
        }
        Ok(Protected {
            inner: service,
            authn: Arc::clone(&self.authn),
            policy: Arc::new(policy),
        })
    }
}

/// A service behind the guard.
#[derive(Debug, Clone)]
pub struct Protected<S> {
    inner: S,
    authn: Arc<Authenticator>,
    policy: Arc<Policy>,
}

impl<S: NamedService> NamedService for Protected<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tower::Service<http::Request<B>> for Protected<S>
where
    S: tower::Service<
            http::Request<B>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The ready service handles this call; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let authn = Arc::clone(&self.authn);
        let policy = Arc::clone(&self.policy);
        Box::pin(async move {
            let method = request
                .uri()
                .path()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            let principal = match authn.authenticate(request.headers()).await {
                Ok(principal) => principal,
                Err(error) => {
                    tracing::debug!(%method, %error, "call refused: unauthenticated");
                    return Ok(tonic::Status::from(error).into_http());
                }
            };
            if let Err(error) = policy.authorize(&method, &principal) {
                tracing::info!(subject = %principal.subject, %method, %error, "call refused: permission denied");
                return Ok(tonic::Status::from(error).into_http());
            }
            if let Some(credential) = CallerCredential::from_headers(request.headers()) {
                request.extensions_mut().insert(credential);
            }
            request.extensions_mut().insert(principal);
            inner.call(request).await
        })
    }
}
