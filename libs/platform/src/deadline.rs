//! Bounds every call: the shorter of the server's request timeout and the
//! caller's own `grpc-timeout`. A call that runs out answers DEADLINE_EXCEEDED
//! (tonic's built-in timeout answers CANCELLED, which tells the caller the
//! wrong thing) and its handler future is dropped, releasing what it held.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// The layer; see the module docs.
#[derive(Debug, Clone, Copy)]
pub struct DeadlineLayer {
    limit: Duration,
}

impl DeadlineLayer {
    pub fn new(limit: Duration) -> Self {
        Self { limit }
    }
}

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline {
            inner,
            limit: self.limit,
        }
    }
}

/// The service the layer wraps around the routes.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
    limit: Duration,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for Deadline<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let limit = match caller_timeout(request.headers()) {
            Some(caller) => caller.min(self.limit),
            None => self.limit,
        };
        let path = request.uri().path().to_owned();
        let call = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout(limit, call).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::debug!(%path, ?limit, "call ran past its deadline");
                    let status = tonic::Status::deadline_exceeded(format!(
                        "the call did not complete within {}",
                        humantime::format_duration(limit)
                    ));
                    Ok(status.into_http())
                }
            }
        })
    }
}

/// The caller's `grpc-timeout` header: up to 8 digits and a unit (H, M, S, m, u, n).
fn caller_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-timeout", value.parse().unwrap());
        headers
    }

    #[test]
    fn parses_every_unit() {
        assert_eq!(
            caller_timeout(&headers("2H")),
            Some(Duration::from_secs(7200))
        );
        assert_eq!(
            caller_timeout(&headers("3M")),
            Some(Duration::from_secs(180))
        );
        assert_eq!(caller_timeout(&headers("5S")), Some(Duration::from_secs(5)));
        assert_eq!(
            caller_timeout(&headers("250m")),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            caller_timeout(&headers("7u")),
            Some(Duration::from_micros(7))
        );
        assert_eq!(
            caller_timeout(&headers("99999999n")),
            Some(Duration::from_nanos(99_999_999))
        );
    }

    #[test]
    fn ignores_malformed_values() {
        for bad in ["", "S", "10", "10x", "123456789S", "-1S", "1.5S"] {
            assert_eq!(caller_timeout(&headers(bad)), None, "{bad:?}");
        }
        assert_eq!(caller_timeout(&http::HeaderMap::new()), None);
    }
}
