//! Whether and where traces are exported, from the standard OpenTelemetry
//! environment variables, and the tracer provider that exports them.

use opentelemetry::KeyValue;
use opentelemetry_otlp::{SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider};

use super::TelemetryError;

/// Where traces go: an OTLP/gRPC collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSettings {
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub endpoint: String,
}

impl ExportSettings {
    /// `None` (export nothing) unless an OTLP endpoint is set, or when
    /// `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`. Only gRPC is
    /// shipped: another `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL`, or an exporter
    /// other than `otlp`, is an error naming the variable.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, TelemetryError> {
        let get = |name: &str| {
            env(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        if get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        match get("OTEL_TRACES_EXPORTER").as_deref() {
            None | Some("otlp") => {}
            Some("none") => return Ok(None),
            Some(other) => {
                return Err(TelemetryError(format!(
                    "OTEL_TRACES_EXPORTER={other} is not supported: use otlp (or none)"
                )));
            }
        }
        let Some(endpoint) = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| get("OTEL_EXPORTER_OTLP_ENDPOINT"))
        else {
            return Ok(None);
        };
        for name in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            if let Some(protocol) = get(name) {
                if protocol != "grpc" {
                    return Err(TelemetryError(format!(
                        "{name}={protocol} is not supported: this build exports traces over grpc only"
                    )));
                }
                break;
            }
        }
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(TelemetryError(format!(
                "the OTLP endpoint {endpoint:?} must be a URL such as http://otel-collector:4317"
            )));
        }
        Ok(Some(Self { endpoint }))
    }
}

/// A provider exporting in batches (`OTEL_BSP_*`) to the collector, sampling
/// as `OTEL_TRACES_SAMPLER` says (parent-based always-on by default).
pub(super) fn provider(
    settings: &ExportSettings,
    service: &str,
) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(settings.endpoint.clone())
        .build()
        .map_err(|e| {
            TelemetryError(format!(
                "cannot create the OTLP exporter for {}: {e}",
                settings.endpoint
            ))
        })?;
    Ok(SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exporter).build())
        .with_resource(resource(service))
        .build())
}

/// `service.name` (`OTEL_SERVICE_NAME`, else `service.name` in
/// `OTEL_RESOURCE_ATTRIBUTES`, else `service`), `service.version`,
/// `service.instance.id` and the rest of `OTEL_RESOURCE_ATTRIBUTES`.
fn resource(service: &str) -> Resource {
    let detected = Resource::builder().build();
    let named = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    let mut builder = Resource::builder().with_attributes([
        KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
        KeyValue::new("service.instance.id", uuid::Uuid::new_v4().to_string()),
    ]);
    if !named {
        builder = builder.with_service_name(service.to_owned());
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Option<ExportSettings>, TelemetryError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ExportSettings::from_env(|name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn nothing_is_exported_without_an_endpoint() {
        assert_eq!(settings(&[]).ok().flatten(), None);
        assert_eq!(settings(&[("OTEL_SERVICE_NAME", "x")]).ok().flatten(), None);
    }

    #[test]
    fn the_traces_endpoint_wins_over_the_generic_one() {
        let chosen = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4317"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4317"),
        ]);
        assert_eq!(
            chosen.ok().flatten().map(|s| s.endpoint).as_deref(),
            Some("http://traces:4317")
        );
    }

    #[test]
    fn disabled_sdk_or_none_exporter_export_nothing() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317");
        assert_eq!(
            settings(&[endpoint, ("OTEL_SDK_DISABLED", "true")])
                .ok()
                .flatten(),
            None
        );
        assert_eq!(
            settings(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")])
                .ok()
                .flatten(),
            None
        );
    }

    #[test]
    fn a_protocol_other_than_grpc_is_an_error_naming_the_variable() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        let error = settings(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"),
            "{error}"
        );
        let error = settings(&[
            endpoint,
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
        ])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            error.contains("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"),
            "{error}"
        );
        assert!(settings(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]).is_ok());
    }

    #[test]
    fn an_endpoint_that_is_not_a_url_is_an_error() {
        let error = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("collector:4317"), "{error}");
    }
}
