//! Prometheus Alertmanager's webhook (payload version 4) as `IngestAlerts`
//! alerts: a pure mapping, shared by the gateway (which serves the webhook
//! over HTTP) and the incidents service (whose alert intake it feeds), so
//! neither service depends on the other.
//!
//! Per alert of `alerts[]` (the notification's top-level status, group and
//! common labels are summaries of these, and are not needed):
//!
//! | Alert field   | from |
//! |---------------|------|
//! | source        | `alertmanager/<receiver>` |
//! | fingerprint   | `fingerprint` (Alertmanager's hash of the labels) |
//! | status        | `status`: firing, resolved; anything else is left unspecified, so intake rejects that alert alone |
//! | severity      | `labels.severity`, see [`severity`] |
//! | node          | `labels.instance` |
//! | resource      | `labels.job` |
//! | metric        | `labels.alertname` |
//! | summary       | `annotations.summary`, else `labels.alertname` |
//! | description   | `annotations.description` |
//! | labels, annotations | as sent |
//! | starts_at, ends_at | `startsAt`, `endsAt` (Go's zero time `0001-01-01T00:00:00Z` is unset) |
//! | generator_url | `generatorURL` |

use std::collections::HashMap;

use itsm_platform::ApiError;
use itsm_proto::itsm::incidents::v1 as pb;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The webhook's body, the parts the mapping reads.
#[derive(Debug, Deserialize)]
struct Webhook {
    #[serde(default)]
    version: String,
    #[serde(default)]
    receiver: String,
    alerts: Vec<WebhookAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookAlert {
    #[serde(default)]
    status: String,
    #[serde(default)]
    labels: HashMap<String, String>,
    #[serde(default)]
    annotations: HashMap<String, String>,
    #[serde(default)]
    starts_at: String,
    #[serde(default)]
    ends_at: String,
    #[serde(default, rename = "generatorURL")]
    generator_url: String,
    #[serde(default)]
    fingerprint: String,
}

/// The alerts of an Alertmanager webhook body. INVALID_ARGUMENT (field
/// `body`) when it is not JSON of that shape, naming the line and column
/// where reading stopped; on `version` when it is not "4"; on
/// `alerts[i].startsAt`/`endsAt` when a time is not RFC 3339.
pub fn alerts_from_webhook(json: &[u8]) -> Result<Vec<pb::Alert>, ApiError> {
    let webhook: Webhook = serde_json::from_slice(json).map_err(|error| {
        // serde_json appends " at line L column C"; say it once, up front.
        let (line, column) = (error.line(), error.column());
        let text = error.to_string();
        let what = text
            .strip_suffix(&format!(" at line {line} column {column}"))
            .unwrap_or(&text);
        ApiError::invalid_field(
            "body",
            format!("is not an Alertmanager webhook: at line {line}, column {column}: {what}"),
        )
    })?;
    if !webhook.version.is_empty() && webhook.version != "4" {
        return Err(ApiError::invalid_field(
            "version",
            format!(
                "Alertmanager webhook version {:?} is not supported; version \"4\" is",
                webhook.version
            ),
        ));
    }
    let source = if webhook.receiver.is_empty() {
        "alertmanager".to_owned()
    } else {
        format!("alertmanager/{}", webhook.receiver)
    };
    webhook
        .alerts
        .into_iter()
        .enumerate()
        .map(|(i, alert)| to_alert(&source, i, alert))
        .collect()
}

fn to_alert(source: &str, i: usize, a: WebhookAlert) -> Result<pb::Alert, ApiError> {
    let label = |name: &str| a.labels.get(name).cloned().unwrap_or_default();
    let status = match a.status.as_str() {
        "firing" => pb::AlertStatus::Firing,
        "resolved" => pb::AlertStatus::Resolved,
        _ => pb::AlertStatus::Unspecified,
    };
    let summary = a
        .annotations
        .get("summary")
        .filter(|s| !s.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| label("alertname"));
    Ok(pb::Alert {
        source: source.to_owned(),
        fingerprint: a.fingerprint.clone(),
        status: status as i32,
        severity: severity(&label("severity")) as i32,
        node: label("instance"),
        resource: label("job"),
        metric: label("alertname"),
        summary,
        description: a
            .annotations
            .get("description")
            .cloned()
            .unwrap_or_default(),
        starts_at: time(&a.starts_at, &format!("alerts[{i}].startsAt"))?,
        ends_at: time(&a.ends_at, &format!("alerts[{i}].endsAt"))?,
        generator_url: a.generator_url,
        labels: a.labels.into_iter().collect(),
        annotations: a.annotations.into_iter().collect(),
    })
}

/// The severity a `severity` label names, case-insensitively:
/// critical, fatal, emergency, page -> CRITICAL; major, high, error -> MAJOR;
/// minor, medium -> MINOR; warning, warn -> WARNING; info, informational,
/// notice, low, none -> INFO; anything else (or no label) -> unspecified.
pub fn severity(label: &str) -> pb::AlertSeverity {
    match label.trim().to_ascii_lowercase().as_str() {
        "critical" | "fatal" | "emergency" | "page" => pb::AlertSeverity::Critical,
        "major" | "high" | "error" => pb::AlertSeverity::Major,
        "minor" | "medium" => pb::AlertSeverity::Minor,
        "warning" | "warn" => pb::AlertSeverity::Warning,
        "info" | "informational" | "notice" | "low" | "none" => pb::AlertSeverity::Info,
        _ => pb::AlertSeverity::Unspecified,
    }
}

/// An RFC 3339 time; `None` for "" and for Go's zero time (year 1), which
/// Alertmanager sends as `endsAt` of an alert still firing.
fn time(text: &str, field: &str) -> Result<Option<prost_types::Timestamp>, ApiError> {
    if text.is_empty() {
        return Ok(None);
    }
    let parsed = OffsetDateTime::parse(text, &Rfc3339).map_err(|error| {
        ApiError::invalid_field(field, format!("{text:?} is not an RFC 3339 time: {error}"))
    })?;
    if parsed.year() <= 1 {
        return Ok(None);
    }
    Ok(Some(prost_types::Timestamp {
        seconds: parsed.unix_timestamp(),
        nanos: i32::try_from(parsed.nanosecond()).unwrap_or(0),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_are_read_loosely() {
        assert_eq!(severity("Critical"), pb::AlertSeverity::Critical);
        assert_eq!(severity(" warning "), pb::AlertSeverity::Warning);
        assert_eq!(severity("page"), pb::AlertSeverity::Critical);
        assert_eq!(severity("info"), pb::AlertSeverity::Info);
        assert_eq!(severity("sev-9"), pb::AlertSeverity::Unspecified);
        assert_eq!(severity(""), pb::AlertSeverity::Unspecified);
    }

    #[test]
    fn go_zero_time_is_unset() {
        assert_eq!(time("0001-01-01T00:00:00Z", "t").unwrap(), None);
        assert_eq!(time("", "t").unwrap(), None);
        let t = time("2024-05-01T10:00:00.5+02:00", "t").unwrap().unwrap();
        assert_eq!((t.seconds, t.nanos), (1_714_550_400, 500_000_000));
        let error = time("yesterday", "alerts[0].startsAt").unwrap_err();
        assert_eq!(error.field_violations()[0].field, "alerts[0].startsAt");
    }

    #[test]
    fn other_versions_and_shapes_are_refused() {
        let error = alerts_from_webhook(br#"{"version": "3", "alerts": []}"#).unwrap_err();
        assert_eq!(error.field_violations()[0].field, "version");
        let error = alerts_from_webhook(br#"{"version": "4"}"#).unwrap_err();
        let violation = &error.field_violations()[0];
        assert_eq!(violation.field, "body");
        assert!(
            violation.description.contains("missing field `alerts`"),
            "{violation:?}"
        );
        assert!(
            alerts_from_webhook(br#"{"alerts": []}"#)
                .unwrap()
                .is_empty()
        );
    }
}
