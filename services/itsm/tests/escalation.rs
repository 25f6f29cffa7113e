//! The SLA breach escalation path end to end, in one `itsm dev` process: an
//! incident's events start an SLA clock, the SLA timer breaches it, the
//! breach event reaches the incidents service over the in-process bus, and
//! the incident is escalated with the assignment group's manager notified.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/process.rs"]
mod support;

use std::time::{Duration, Instant};

use itsm_proto::itsm::identity::v1 as identity;
use itsm_proto::itsm::identity::v1::identity_service_client::IdentityServiceClient;
use itsm_proto::itsm::incidents::v1 as incidents;
use itsm_proto::itsm::incidents::v1::incident_service_client::IncidentServiceClient;
use itsm_proto::itsm::sla::v1 as sla;
use itsm_proto::itsm::sla::v1::sla_service_client::SlaServiceClient;
use support::{connect, start_dev};
use tonic::Request;

/// `message` with the bearer token `token`.
fn authorized<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

#[tokio::test]
async fn dev_escalates_an_incident_whose_sla_breached_and_notifies_the_manager() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = start_dev(dir.path()).await;
    let token = dev.admin_token.clone();
    let channel = connect(&dev.addr).await;

    // The group the incident is assigned to, managed by maya.
    let mut groups = IdentityServiceClient::new(channel.clone());
    let group = identity::CreateGroupRequest {
        group: Some(identity::Group {
            display_name: "Network operations".into(),
            manager: "maya".into(),
            members: vec!["nina".into()],
            ..identity::Group::default()
        }),
        group_id: "noc".into(),
        request_id: String::new(),
    };
    groups
        .create_group(authorized(&token, group))
        .await
        .unwrap();

    // Every incident must be resolved within 2 seconds, around the clock.
    let mut slas = SlaServiceClient::new(channel.clone());
    let definition = sla::CreateSlaDefinitionRequest {
        sla_definition: Some(sla::SlaDefinition {
            display_name: "Resolve within 2 seconds".into(),
            kind: sla::SlaKind::Sla as i32,
            ticket_type: "incidents".into(),
            target: Some(prost_types::Duration {
                seconds: 2,
                nanos: 0,
            }),
            stop_condition: "state = RESOLVED".into(),
            enabled: true,
            ..sla::SlaDefinition::default()
        }),
        sla_definition_id: "fast-resolution".into(),
        request_id: String::new(),
        validate_only: false,
    };
    slas.create_sla_definition(authorized(&token, definition))
        .await
        .unwrap();

    let mut client = IncidentServiceClient::new(channel);
    let created = incidents::CreateIncidentRequest {
        incident: Some(incidents::Incident {
            title: "Core switch flapping".into(),
            caller: "ada".into(),
            impact: 2,
            urgency: 2,
            assignment_group: "noc".into(),
            caller_time_zone: "Europe/Paris".into(),
            ..incidents::Incident::default()
        }),
        request_id: String::new(),
    };
    let opened = client
        .create_incident(authorized(&token, created))
        .await
        .unwrap()
        .into_inner();
    let started = Instant::now();

    // The target (2 s), the timer (every 500 ms), two relays and two consumers.
    let deadline = started + Duration::from_secs(30);
    let escalated = loop {
        let get = incidents::GetIncidentRequest {
            name: opened.name.clone(),
        };
        let current = client
            .get_incident(authorized(&token, get))
            .await
            .unwrap()
            .into_inner();
        if current.escalated {
            break current;
        }
        assert!(
            Instant::now() < deadline,
            "{} not escalated 30 s after it opened (escalations {:?})",
            opened.name,
            current.escalations
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "escalated before the target"
    );

    let list = sla::ListTaskSlasRequest {
        page_size: 10,
        page_token: String::new(),
        filter: format!("ticket = \"{}\"", opened.name),
        order_by: String::new(),
    };
    let clocks = slas
        .list_task_slas(authorized(&token, list))
        .await
        .unwrap()
        .into_inner()
        .task_slas;
    assert_eq!(clocks.len(), 1);
    assert!(clocks[0].breached);

    assert_eq!(escalated.escalations.len(), 1);
    let escalation = &escalated.escalations[0];
    assert_eq!(escalation.task_sla, clocks[0].name);
    assert_eq!(escalation.sla_definition, "slaDefinitions/fast-resolution");
    assert_eq!(escalation.sla_display_name, "Resolve within 2 seconds");
    assert_eq!(escalation.percentage, 100);
    assert_eq!(escalation.assignment_group, "noc");
    assert_eq!(escalation.notified, ["maya"]);
    assert!(escalated.watchers.contains(&"maya".to_owned()));
    assert_eq!(escalated.caller_time_zone, "Europe/Paris");
    dev.child.kill().await.unwrap();
}
