//! Prometheus Alertmanager's webhook (version 4) mapped onto alerts, and
//! those alerts through intake.

use itsm_incidents::alertmanager::alerts_from_webhook;
use itsm_platform::ErrorCode;
use itsm_proto::itsm::common::v1 as common;
use itsm_proto::itsm::incidents::v1 as pb;
use itsm_proto::itsm::incidents::v1::AlertOutcome::{Opened, Resolved};
use itsm_testkit::{TestDb, backend_tests};

use crate::helpers::{ingest, outcomes};
use crate::support::{AGENT, start};

backend_tests!(webhook_alerts_open_and_resolve_incidents);

/// A notification with two alerts: one firing, one resolved.
const WEBHOOK: &[u8] = include_bytes!("alertmanager.json");

#[test]
fn a_webhook_maps_onto_alerts() {
    let alerts = alerts_from_webhook(WEBHOOK).unwrap();
    assert_eq!(alerts.len(), 2);

    let cpu = &alerts[0];
    assert_eq!(cpu.source, "alertmanager/itsm-prod");
    assert_eq!(cpu.fingerprint, "2d3f7a9c1b4e5f60");
    assert_eq!(cpu.status, pb::AlertStatus::Firing as i32);
    assert_eq!(cpu.severity, pb::AlertSeverity::Warning as i32);
    assert_eq!(
        (
            cpu.node.as_str(),
            cpu.resource.as_str(),
            cpu.metric.as_str()
        ),
        ("db-02.prod.example.com:9100", "node", "HostHighCpuLoad")
    );
    assert_eq!(cpu.summary, "Host high CPU load on db-02");
    assert!(
        cpu.description
            .starts_with("CPU load is > 80%\n  VALUE = 93.2")
    );
    assert_eq!(cpu.labels.get("team").map(String::as_str), Some("dba"));
    assert_eq!(cpu.labels.len(), 5);
    assert_eq!(
        cpu.annotations.get("runbook_url").map(String::as_str),
        Some("https://runbooks.example.com/node/HostHighCpuLoad")
    );
    let starts = cpu.starts_at.unwrap();
    assert_eq!((starts.seconds, starts.nanos), (1_714_557_600, 123_000_000));
    assert_eq!(cpu.ends_at, None, "Go's zero time: still firing");
    assert!(
        cpu.generator_url
            .starts_with("http://prometheus.prod.example.com:9090/graph?")
    );

    let crash = &alerts[1];
    assert_eq!(crash.status, pb::AlertStatus::Resolved as i32);
    assert_eq!(crash.severity, pb::AlertSeverity::Critical as i32);
    assert_eq!(
        crash.summary, "KubePodCrashLooping",
        "no summary: the alert name"
    );
    assert_eq!(crash.description, "");
    assert_eq!((crash.node.as_str(), crash.resource.as_str()), ("", ""));
    assert_eq!(crash.ends_at.unwrap().seconds, 1_714_557_330);
}

#[test]
fn malformed_json_is_refused_naming_where() {
    let broken =
        b"{\n  \"version\": \"4\",\n  \"alerts\": [ {\"status\": \"firing\" \"labels\": {}} ]\n}";
    let error = alerts_from_webhook(broken).unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidArgument);
    let violation = &error.field_violations()[0];
    assert_eq!(violation.field, "body");
    assert!(
        violation
            .description
            .contains("at line 3, column 35: expected `,` or `}`"),
        "{violation:?}"
    );

    let error = alerts_from_webhook(b"").unwrap_err();
    assert!(
        error.field_violations()[0]
            .description
            .contains("line 1, column 0")
    );
    let wrong_type = br#"{"version": "4", "alerts": [{"labels": ["not", "a", "map"]}]}"#;
    let error = alerts_from_webhook(wrong_type).unwrap_err();
    assert!(
        error.field_violations()[0]
            .description
            .contains("invalid type")
    );
    let bad_time = br#"{"alerts": [{"status": "firing", "startsAt": "May 1st"}]}"#;
    let error = alerts_from_webhook(bad_time).unwrap_err();
    assert_eq!(error.field_violations()[0].field, "alerts[0].startsAt");
}

async fn webhook_alerts_open_and_resolve_incidents(db: TestDb) {
    let mut svc = start(&db).await;
    let mut alerts = alerts_from_webhook(WEBHOOK).unwrap();
    // The crash loop fired before it resolved.
    let fired = pb::Alert {
        status: pb::AlertStatus::Firing as i32,
        ends_at: None,
        ..alerts[1].clone()
    };
    alerts.insert(1, fired);
    let results = ingest(&mut svc, alerts).await;
    assert_eq!(outcomes(&results), [Opened, Opened, Resolved]);
    assert_eq!(results[0].alert_group, "alertGroups/2d3f7a9c1b4e5f60");

    let cpu = svc.get(AGENT, &results[0].incident).await.unwrap();
    assert_eq!(cpu.title, "Host high CPU load on db-02");
    assert_eq!(
        cpu.priority,
        common::Priority::Low as i32,
        "warning: LOW x MEDIUM"
    );
    assert_eq!(cpu.labels.get("team").map(String::as_str), Some("dba"));
    let crash = svc.get(AGENT, &results[2].incident).await.unwrap();
    assert_eq!(crash.state, pb::IncidentState::Resolved as i32);
    assert_eq!(crash.priority, common::Priority::Critical as i32);
}
