//! JSON log lines that carry the trace: `trace_id` and `span_id` of the
//! innermost span with an OpenTelemetry context, so a log pipeline can jump
//! from a line to its trace. Everything else is the standard JSON format
//! (timestamp, level, fields, target, current span).

use std::fmt;

use opentelemetry::trace::TraceContextExt as _;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::DispatchCell;

/// Wraps the JSON event format and appends the trace ids.
#[derive(Debug)]
pub(super) struct WithTraceIds<E> {
    inner: E,
    dispatch: DispatchCell,
}

impl<E> WithTraceIds<E> {
    pub(super) fn new(inner: E, dispatch: DispatchCell) -> Self {
        Self { inner, dispatch }
    }

    /// The ids of the innermost span around `event` that has a trace.
    fn ids<S, N>(&self, ctx: &FmtContext<'_, S, N>) -> Option<(String, String)>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'w> FormatFields<'w> + 'static,
    {
        let scope = ctx.event_scope()?;
        scope.into_iter().find_map(|span| {
            let context = self.dispatch.context_of(&span.id())?;
            let span = context.span();
            let ids = span.span_context();
            Some((ids.trace_id().to_string(), ids.span_id().to_string()))
        })
    }
}

impl<S, N, E> FormatEvent<S, N> for WithTraceIds<E>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
    E: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some((trace_id, span_id)) = self.ids(ctx) else {
            return self.inner.format_event(ctx, writer, event);
        };
        // The JSON format writes one object and a newline: the ids go in
        // before its closing brace.
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        match line.trim_end().strip_suffix('}') {
            Some(object) => writeln!(
                writer,
                r#"{object},"trace_id":"{trace_id}","span_id":"{span_id}"}}"#
            ),
            None => writer.write_str(&line),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex, PoisonError};

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    use super::*;
    use crate::config::{Config, LogFormat, Mode};
    use crate::telemetry::{DbSystem, Tracing, subscriber};

    /// Log output captured in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Captured {
        fn lines(&self) -> Vec<serde_json::Value> {
            let bytes = self
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            String::from_utf8_lossy(&bytes)
                .lines()
                .map(|line| match serde_json::from_str(line) {
                    Ok(value) => value,
                    Err(error) => panic!("not a JSON line ({error}): {line}"),
                })
                .collect()
        }
    }

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn json_config() -> Config {
        Config {
            log: "info".to_owned(),
            log_format: LogFormat::Json,
            ..Config::defaults(Mode::Serve)
        }
    }

    #[test]
    fn lines_inside_a_traced_span_carry_its_trace_and_span_ids() {
        // A provider with no exporter still gives spans real ids.
        let provider = SdkTracerProvider::builder().build();
        let tracing = Tracing {
            tracer: provider.tracer("test"),
            database: DbSystem::Sqlite,
        };
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = match subscriber(&json_config(), Some(tracing), move || writer.clone()) {
            Ok(subscriber) => subscriber,
            Err(error) => panic!("{error}"),
        };
        let (trace_id, span_id) = tracing::subscriber::with_default(subscriber, || {
            tracing::info!(answer = 42, "outside");
            let span = tracing::info_span!("rpc", request_id = "r-1");
            let ids = {
                let context = span.context();
                let otel = context.span();
                let ids = otel.span_context();
                (ids.trace_id().to_string(), ids.span_id().to_string())
            };
            span.in_scope(|| {
                tracing::info!(answer = 43, "inside");
                tracing::debug!("below the log level: not written");
            });
            ids
        });

        let lines = captured.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        let (outside, inside) = (&lines[0], &lines[1]);
        assert_eq!(outside["fields"]["message"], "outside");
        assert_eq!(outside["fields"]["answer"], 42);
        assert!(outside.get("trace_id").is_none(), "{outside}");
        assert!(outside.get("span_id").is_none(), "{outside}");

        assert_eq!(inside["fields"]["message"], "inside");
        assert_eq!(inside["fields"]["answer"], 43);
        assert_eq!(inside["level"], "INFO");
        assert!(inside["timestamp"].is_string(), "{inside}");
        assert_eq!(inside["span"]["name"], "rpc");
        assert_eq!(inside["span"]["request_id"], "r-1");
        assert_eq!(inside["trace_id"], trace_id.as_str());
        assert_eq!(inside["span_id"], span_id.as_str());
        assert_eq!(trace_id.len(), 32);
        assert_ne!(trace_id, "0".repeat(32));
    }

    #[test]
    fn without_an_exporter_lines_have_no_trace_ids() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = match subscriber(&json_config(), None, move || writer.clone()) {
            Ok(subscriber) => subscriber,
            Err(error) => panic!("{error}"),
        };
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("rpc");
            span.in_scope(|| tracing::info!("inside"));
        });
        let lines = captured.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["span"]["name"], "rpc");
        assert!(lines[0].get("trace_id").is_none(), "{}", lines[0]);
    }
}
