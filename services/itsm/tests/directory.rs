//! `itsm dev` wires incidents to the identity service in the same process:
//! an assignment is accepted for a member of the group and refused, naming
//! the assignee, for anyone else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/process.rs"]
mod support;

use std::time::Duration;

use itsm_proto::itsm::common::v1::{Impact, Urgency};
use itsm_proto::itsm::identity::v1::identity_service_client::IdentityServiceClient;
use itsm_proto::itsm::identity::v1::{CreateGroupRequest, Group};
use itsm_proto::itsm::incidents::v1::incident_service_client::IncidentServiceClient;
use itsm_proto::itsm::incidents::v1::{AssignIncidentRequest, CreateIncidentRequest, Incident};
use support::{authorized, connect, exit_code_within, sigterm};
use tonic::Code;

#[tokio::test]
async fn dev_checks_assignees_against_identity_groups() {
    let data = tempfile::tempdir().unwrap();
    let support::Dev {
        mut child,
        addr,
        admin_token: admin,
    } = support::start_dev(data.path()).await;
    let channel = connect(&addr).await;

    IdentityServiceClient::new(channel.clone())
        .create_group(authorized(
            CreateGroupRequest {
                group: Some(Group {
                    display_name: "Network".into(),
                    members: vec!["ada".into()],
                    ..Group::default()
                }),
                group_id: "network".into(),
                request_id: String::new(),
            },
            &admin,
        ))
        .await
        .unwrap();

    let mut incidents = IncidentServiceClient::new(channel);
    let created = incidents
        .create_incident(authorized(
            CreateIncidentRequest {
                incident: Some(Incident {
                    title: "Core switch down in Building 4".into(),
                    caller: "u-1042".into(),
                    impact: Impact::High as i32,
                    urgency: Urgency::High as i32,
                    ..Incident::default()
                }),
                request_id: String::new(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.number, "INC0000001");

    let assign = |assignee: &str| AssignIncidentRequest {
        name: created.name.clone(),
        assignment_group: "network".into(),
        assignee: assignee.into(),
        etag: String::new(),
    };
    let refused = incidents
        .assign_incident(authorized(assign("bob"), &admin))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused
            .message()
            .contains("\"bob\" is not a member of the group"),
        "{}",
        refused.message()
    );
    let assigned = incidents
        .assign_incident(authorized(assign("ada"), &admin))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (assigned.assignee.as_str(), assigned.state),
        ("ada", 2),
        "assigned and IN_PROGRESS"
    );

    sigterm(&child);
    assert_eq!(
        exit_code_within(&mut child, Duration::from_secs(10)).await,
        0
    );
}

/// `itsm dev` wires incidents to the CMDB in the same process: an assignment
/// rule that uses the CI's support group routes an incident on that CI.
#[tokio::test]
async fn dev_routes_incidents_to_the_support_group_of_their_ci() {
    use itsm_proto::itsm::cmdb::v1 as cmdb;
    use itsm_proto::itsm::cmdb::v1::cmdb_service_client::CmdbServiceClient;
    use itsm_proto::itsm::incidents::v1::{
        AssignmentRule, AssignmentStrategy, CreateAssignmentRuleRequest,
    };

    let data = tempfile::tempdir().unwrap();
    let support::Dev {
        mut child,
        addr,
        admin_token: admin,
    } = support::start_dev(data.path()).await;
    let channel = connect(&addr).await;
    IdentityServiceClient::new(channel.clone())
        .create_group(authorized(
            CreateGroupRequest {
                group: Some(Group {
                    display_name: "Database team".into(),
                    members: vec!["dba".into()],
                    ..Group::default()
                }),
                group_id: "dba".into(),
                request_id: String::new(),
            },
            &admin,
        ))
        .await
        .unwrap();
    let ci = CmdbServiceClient::new(channel.clone())
        .create_ci(authorized(
            cmdb::CreateCiRequest {
                ci: Some(cmdb::Ci {
                    ci_class: "classes/database".into(),
                    display_name: "orders-db".into(),
                    support_group: "dba".into(),
                    ..cmdb::Ci::default()
                }),
                request_id: String::new(),
                validate_only: false,
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();

    let mut incidents = IncidentServiceClient::new(channel);
    incidents
        .create_assignment_rule(authorized(
            CreateAssignmentRuleRequest {
                rule: Some(AssignmentRule {
                    order: 1,
                    use_ci_support_group: true,
                    strategy: AssignmentStrategy::GroupOnly as i32,
                    enabled: true,
                    ..AssignmentRule::default()
                }),
                request_id: String::new(),
            },
            &admin,
        ))
        .await
        .unwrap();
    let opened = incidents
        .create_incident(authorized(
            CreateIncidentRequest {
                incident: Some(Incident {
                    title: "Orders database refuses connections".into(),
                    caller: "u-1042".into(),
                    impact: Impact::High as i32,
                    urgency: Urgency::High as i32,
                    configuration_item: ci.name.clone(),
                    ..Incident::default()
                }),
                request_id: String::new(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(opened.assignment_group, "dba", "{opened:?}");

    sigterm(&child);
    assert_eq!(
        exit_code_within(&mut child, Duration::from_secs(10)).await,
        0
    );
}
