//! What the alert tests share: alerts, the monitoring caller, intake calls,
//! and readers of groups and their events.

use itsm_proto::itsm::incidents::v1 as pb;
use itsm_proto::itsm::incidents::v1::AlertOutcome;
use prost::Message as _;

use crate::support::{AGENT, Harness, as_};

/// The monitoring system's service account.
pub const MONITORING: &str = "svc-monitoring:service";

/// A firing alert of `fingerprint`, severity CRITICAL.
pub fn firing(fingerprint: &str, summary: &str) -> pb::Alert {
    pb::Alert {
        source: "alertmanager/prod".into(),
        fingerprint: fingerprint.to_owned(),
        status: pb::AlertStatus::Firing as i32,
        severity: pb::AlertSeverity::Critical as i32,
        node: "web-01:9100".into(),
        resource: "node".into(),
        metric: "HostDown".into(),
        summary: summary.to_owned(),
        description: "The node exporter stopped answering.".into(),
        labels: [("alertname", "HostDown"), ("team", "ops")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        ..pb::Alert::default()
    }
}

/// The resolved alert of `fingerprint`.
pub fn resolved(fingerprint: &str, summary: &str) -> pb::Alert {
    pb::Alert {
        status: pb::AlertStatus::Resolved as i32,
        ..firing(fingerprint, summary)
    }
}

/// `alerts` ingested by the monitoring account.
pub async fn ingest(svc: &mut Harness, alerts: Vec<pb::Alert>) -> Vec<pb::AlertResult> {
    let request = pb::IngestAlertsRequest { alerts };
    svc.client
        .ingest_alerts(as_(MONITORING, request))
        .await
        .unwrap()
        .into_inner()
        .results
}

/// The outcome of each result.
pub fn outcomes(results: &[pb::AlertResult]) -> Vec<AlertOutcome> {
    results
        .iter()
        .map(|r| AlertOutcome::try_from(r.outcome).unwrap())
        .collect()
}

/// One alert's outcome and incident.
pub async fn one(svc: &mut Harness, alert: pb::Alert) -> (AlertOutcome, String) {
    let results = ingest(svc, vec![alert]).await;
    assert_eq!(results.len(), 1);
    (outcomes(&results)[0], results[0].incident.clone())
}

/// The group `alertGroups/<fingerprint>`, as an agent reads it.
pub async fn group(svc: &mut Harness, fingerprint: &str) -> pb::AlertGroup {
    let request = pb::GetAlertGroupRequest {
        name: format!("alertGroups/{fingerprint}"),
    };
    svc.client
        .get_alert_group(as_(AGENT, request))
        .await
        .unwrap()
        .into_inner()
}

/// The types of the events about `alertGroups/<fingerprint>`, in order,
/// checking their sequences increase.
pub async fn group_events(svc: &Harness, fingerprint: &str) -> Vec<String> {
    let events = svc.event_types(&format!("alertGroups/{fingerprint}")).await;
    for pair in events.windows(2) {
        assert!(pair[0].1 < pair[1].1, "sequences increase: {events:?}");
    }
    events.into_iter().map(|(t, _)| t).collect()
}

/// The `AlertGroupEvent` of the last event about `alertGroups/<fingerprint>`.
pub async fn last_group_event(svc: &Harness, fingerprint: &str) -> pb::AlertGroup {
    let subject = format!("alertGroups/{fingerprint}");
    let event = svc
        .events()
        .await
        .into_iter()
        .rev()
        .find(|e| e.subject == subject)
        .unwrap();
    let any = event.payload.unwrap();
    assert_eq!(
        any.type_url,
        "type.googleapis.com/itsm.incidents.v1.AlertGroupEvent"
    );
    pb::AlertGroupEvent::decode(any.value.as_slice())
        .unwrap()
        .alert_group
        .unwrap()
}
