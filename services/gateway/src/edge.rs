//! The door: every call through the gateway (gRPC or REST) is admitted here
//! first. [`Edge::admit`] authenticates the caller with the same
//! [`itsm_auth::Authenticator`] the services run (the credentials then go on
//! to the backend unchanged, which checks them again and authorizes the
//! method), takes a token from the caller's bucket for the method's class
//! ([`ratelimit`]), and settles the request id.

pub mod ratelimit;

use std::sync::Arc;
use std::time::Duration;

use itsm_auth::{Authenticator, Principal};
use itsm_platform::Config;

use self::ratelimit::{RateLimitError, RateLimiter};

/// The metadata key (and HTTP header) carrying the seconds to wait after
/// RESOURCE_EXHAUSTED; the REST side answers it as `Retry-After` with 429.
pub const RETRY_AFTER: &str = "retry-after";

/// The request id header, taken from the caller or made here.
pub const REQUEST_ID: &str = itsm_platform::server::REQUEST_ID_HEADER;

/// Which bucket a method draws from.
///
/// A method is a read when its name starts with a verb that only looks:
/// Get, List, BatchGet, Search, Explain, Measure, Analyze, Check, Compare,
/// Detect, Diff, Evaluate, Match, Report, Suggest, Verify (the verbs the
/// contracts use for methods without side effects). Every other method
/// changes something and is a write. Reads get the larger bucket: a console
/// polling a list must not starve the same user's updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MethodClass {
    Read,
    Write,
}

const READ_VERBS: &[&str] = &[
    "Get", "List", "BatchGet", "Search", "Explain", "Measure", "Analyze", "Check", "Compare",
    "Detect", "Diff", "Evaluate", "Match", "Report", "Suggest", "Verify",
];

impl MethodClass {
    /// The class of the gRPC method at `path` (`/pkg.Service/GetThing`) or named `GetThing`.
    pub fn of(path: &str) -> Self {
        let method = path.rsplit('/').next().unwrap_or(path);
        let verb_ends = method
            .char_indices()
            .skip(1)
            .find(|(_, c)| c.is_ascii_uppercase())
            .map_or(method.len(), |(i, _)| i);
        let verb = &method[..verb_ends];
        // BatchGetCis: "Batch" then "Get".
        let read = READ_VERBS.contains(&verb)
            || (verb == "Batch" && method[verb_ends..].starts_with("Get"));
        if read { Self::Read } else { Self::Write }
    }

    /// `read` or `write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

/// A call let in.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub principal: Principal,
    /// The caller's `x-request-id`, or one made here; forward it on.
    pub request_id: String,
    pub class: MethodClass,
}

/// The door. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Edge {
    authn: Arc<Authenticator>,
    limiter: Arc<RateLimiter>,
}

impl Edge {
    pub fn new(authn: Arc<Authenticator>, limiter: RateLimiter) -> Self {
        Self {
            authn,
            limiter: Arc::new(limiter),
        }
    }

    /// The edge of a configuration: rate limits in Redis when `redis_url` is
    /// set, else in this process.
    pub fn from_config(config: &Config, authn: Arc<Authenticator>) -> Result<Self, RateLimitError> {
        let gateway = &config.gateway;
        let limiter = match &config.redis_url {
            Some(url) => RateLimiter::redis(
                url.expose(),
                &gateway.rate_prefix,
                gateway.rate_read,
                gateway.rate_write,
            )?,
            None => RateLimiter::in_process(gateway.rate_read, gateway.rate_write),
        };
        Ok(Self::new(authn, limiter))
    }

    /// Authenticates the caller and takes a token for the method at `path`.
    ///
    /// UNAUTHENTICATED saying what is wrong with the credential (never
    /// echoing it); UNAVAILABLE when the credential cannot be checked now;
    /// RESOURCE_EXHAUSTED with `retry-after` (whole seconds) in its metadata
    /// when the caller's bucket for the method's class is empty.
    pub async fn admit(
        &self,
        headers: &http::HeaderMap,
        path: &str,
    ) -> Result<Admitted, tonic::Status> {
        let principal = self
            .authn
            .authenticate(headers)
            .await
            .map_err(tonic::Status::from)?;
        let class = MethodClass::of(path);
        let key = if principal.tenant.is_empty() {
            principal.subject.clone()
        } else {
            format!("{}/{}", principal.tenant, principal.subject)
        };
        if let Err(wait) = self.limiter.check(&key, class).await {
            metrics::counter!(crate::telemetry::RATE_LIMITED, "class" => class.as_str())
                .increment(1);
            return Err(rate_limited(class, &self.limiter, wait));
        }
        let request_id = headers
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .map_or_else(new_request_id, str::to_owned);
        Ok(Admitted {
            principal,
            request_id,
            class,
        })
    }
}

/// A random (version 4) UUID from the thread's generator: `Uuid::new_v4`
/// asks the kernel for every one, a system call on each call through.
fn new_request_id() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
}

fn rate_limited(class: MethodClass, limiter: &RateLimiter, wait: Duration) -> tonic::Status {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    let limit = limiter.limit(class);
    let mut metadata = tonic::metadata::MetadataMap::new();
    metadata.insert(RETRY_AFTER, tonic::metadata::MetadataValue::from(seconds));
    tonic::Status::with_metadata(
        tonic::Code::ResourceExhausted,
        format!(
            "rate limit for {} methods exceeded ({}/s, burst {}): retry after {seconds}s",
            class.as_str(),
            limit.per_second,
            limit.burst
        ),
        metadata,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_fall_into_classes() {
        for read in [
            "/itsm.incidents.v1.IncidentService/GetIncident",
            "ListIncidents",
            "BatchGetCis",
            "SearchArticles",
            "ExplainTaskSla",
            "AnalyzeImpact",
            "MeasureBusinessTime",
        ] {
            assert_eq!(MethodClass::of(read), MethodClass::Read, "{read}");
        }
        for write in [
            "/itsm.incidents.v1.IncidentService/CreateIncident",
            "ResolveIncident",
            "Getaway",
            "BatchCreateThings",
            "RecomputeTaskSlas",
        ] {
            assert_eq!(MethodClass::of(write), MethodClass::Write, "{write}");
        }
    }
}
