//! What a handler knows about the call it serves: the caller (put there by
//! the guard) and the ids that tie the call's changes to logs and traces.

use itsm_store::audit::Actor;
use itsm_store::change::Origin;
use tonic::Request;

use crate::principal::{Principal, principal};

/// The caller of a call and what its changes record besides.
#[derive(Debug, Clone)]
pub struct Call {
    pub caller: Principal,
    /// The caller as audit entries and events record it.
    pub actor: Actor,
    /// `x-request-id`, set by the server on every call.
    pub request_id: String,
    /// W3C trace context, carried into the events the call causes.
    pub traceparent: String,
    pub tracestate: String,
}

impl Call {
    /// The call's caller and ids; UNAUTHENTICATED when the guard put no
    /// caller on the request (a wiring bug, refused rather than run for nobody).
    pub fn of<T>(request: &Request<T>) -> Result<Self, tonic::Status> {
        let caller = principal(request)?.clone();
        let header = |name: &str| {
            request
                .metadata()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        Ok(Self {
            actor: caller.actor(),
            caller,
            request_id: header(itsm_platform::server::REQUEST_ID_HEADER),
            traceparent: header("traceparent"),
            tracestate: header("tracestate"),
        })
    }

    /// Where the changes this call makes come from, for their audit entries
    /// and events on `stream` from `source`.
    pub fn origin<'a>(&'a self, stream: &'a str, source: &'a str) -> Origin<'a> {
        Origin {
            stream,
            source,
            actor: &self.actor,
            request_id: &self.request_id,
            traceparent: &self.traceparent,
            tracestate: &self.tracestate,
        }
    }
}
