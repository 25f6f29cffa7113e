//! W3C trace context (`traceparent`, `tracestate`) in and out of a process:
//! what an RPC server extracts, what a gRPC client injects, and what an event
//! carries through the outbox so that its consumer's work joins the
//! producer's trace.
//!
//! With no exporter configured there is no OpenTelemetry layer, spans carry no
//! context, and these functions find nothing to inject: callers then pass on
//! the context they received (the outbox keeps the caller's `traceparent`).

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The two W3C headers, empty when there is no trace to carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceHeaders {
    pub traceparent: String,
    pub tracestate: String,
}

impl TraceHeaders {
    /// True when there is no `traceparent` to send.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.traceparent.is_empty()
    }
}

/// The context of the current span, as headers for an event or a call.
#[must_use]
pub fn current() -> TraceHeaders {
    of(&Span::current())
}

/// The context of `span`, as headers; empty when the span has none (no
/// OpenTelemetry layer, or a span that is disabled).
#[must_use]
pub fn of(span: &Span) -> TraceHeaders {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return TraceHeaders::default();
    }
    let mut headers = TraceHeaders::default();
    TraceContextPropagator::new().inject_context(&context, &mut headers);
    headers
}

/// Makes the context in `traceparent` / `tracestate` the parent of `span`.
/// A missing or malformed `traceparent` leaves the span a root (W3C: a
/// receiver ignores what it cannot parse).
pub fn set_parent(span: &Span, traceparent: &str, tracestate: &str) {
    if traceparent.is_empty() {
        return;
    }
    let carrier = TraceHeaders {
        traceparent: traceparent.to_owned(),
        tracestate: tracestate.to_owned(),
    };
    let context = TraceContextPropagator::new().extract(&carrier);
    set_parent_context(span, context);
}

/// Makes the context carried by `headers` (an incoming request's) the parent of `span`.
pub fn set_parent_from_headers(span: &Span, headers: &http::HeaderMap) {
    if !headers.contains_key("traceparent") {
        return;
    }
    let context = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    set_parent_context(span, context);
}

fn set_parent_context(span: &Span, context: Context) {
    if context.span().span_context().is_valid() {
        // Only fails when the span is disabled; then there is nothing to parent.
        let _ = span.set_parent(context);
    }
}

/// Writes the context of `span` into `headers` (an outgoing request's),
/// replacing any `traceparent` / `tracestate` there. Does nothing when the
/// span has no context, so a header passed through is kept.
pub fn inject_headers(span: &Span, headers: &mut http::HeaderMap) {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return;
    }
    TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
}

impl Injector for TraceHeaders {
    fn set(&mut self, key: &str, value: String) {
        match key {
            "traceparent" => self.traceparent = value,
            "tracestate" => self.tracestate = value,
            _ => {}
        }
    }
}

impl Extractor for TraceHeaders {
    fn get(&self, key: &str) -> Option<&str> {
        let value = match key {
            "traceparent" => &self.traceparent,
            "tracestate" => &self.tracestate,
            _ => return None,
        };
        (!value.is_empty()).then_some(value.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) else {
            return;
        };
        self.0.insert(name, value);
    }
}
