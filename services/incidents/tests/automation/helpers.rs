//! What the automation tests add to the API harness: a CMDB answering from a
//! table, assignment rules, incidents of a category, and the settings,
//! times and audit rows the auto-close job and KPIs work on.

use std::collections::HashMap;

use async_trait::async_trait;
use itsm_incidents::directory::Cmdb;
use itsm_platform::ApiError;
use itsm_proto::itsm::incidents::v1 as pb;
use tonic::Status;

use crate::support::{ADMIN, AGENT, Harness, as_};

/// A CMDB answering from a table: CIs it does not list have no support group.
#[derive(Debug, Default)]
pub struct TableCmdb(pub HashMap<String, String>);

#[async_trait]
impl Cmdb for TableCmdb {
    async fn support_group(&self, ci: &str) -> Result<Option<String>, ApiError> {
        Ok(self.0.get(ci).cloned())
    }
}

/// A rule sending incidents matching `condition` to `group`.
pub fn rule(
    order: i32,
    condition: &str,
    group: &str,
    strategy: pb::AssignmentStrategy,
) -> pb::AssignmentRule {
    pb::AssignmentRule {
        order,
        condition: condition.to_owned(),
        assignment_group: group.to_owned(),
        strategy: strategy as i32,
        enabled: true,
        ..pb::AssignmentRule::default()
    }
}

/// An incident of category `category` (impact and urgency MEDIUM), ada's.
pub fn incident(title: &str, category: &str) -> pb::Incident {
    pb::Incident {
        category: category.to_owned(),
        ..crate::support::incident(title, 2, 2)
    }
}

/// `(field, description)` of an INVALID_ARGUMENT's violations.
pub fn violations(status: &Status) -> Vec<(String, String)> {
    use tonic_types::StatusExt as _;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let details = status.get_error_details();
    let bad = details.bad_request().unwrap();
    bad.field_violations
        .iter()
        .map(|v| (v.field.clone(), v.description.clone()))
        .collect()
}

impl Harness {
    pub async fn create_rule(
        &mut self,
        rule: pb::AssignmentRule,
    ) -> Result<pb::AssignmentRule, Status> {
        let request = pb::CreateAssignmentRuleRequest {
            rule: Some(rule),
            request_id: String::new(),
        };
        let reply = self
            .client
            .create_assignment_rule(as_(ADMIN, request))
            .await;
        reply.map(tonic::Response::into_inner)
    }

    pub async fn list_rules(&mut self) -> Vec<pb::AssignmentRule> {
        let request = pb::ListAssignmentRulesRequest::default();
        let reply = self.client.list_assignment_rules(as_(AGENT, request)).await;
        reply.unwrap().into_inner().rules
    }

    /// Opens `incident` as `who`.
    pub async fn create(
        &mut self,
        who: &str,
        incident: pb::Incident,
    ) -> Result<pb::Incident, Status> {
        let request = crate::support::create_request(incident, "");
        let reply = self.client.create_incident(as_(who, request)).await;
        reply.map(tonic::Response::into_inner)
    }

    /// Opens `incident` as an agent.
    pub async fn open_incident(&mut self, incident: pb::Incident) -> pb::Incident {
        self.create(AGENT, incident).await.unwrap()
    }

    /// Sets the settings' auto_close_after, as an admin.
    pub async fn auto_close_after(&mut self, seconds: i64) {
        let current = self
            .client
            .get_incident_settings(as_(AGENT, pb::GetIncidentSettingsRequest {}))
            .await
            .unwrap()
            .into_inner();
        let request = pb::UpdateIncidentSettingsRequest {
            settings: Some(pb::IncidentSettings {
                auto_close_after: Some(prost_types::Duration { seconds, nanos: 0 }),
                ..pb::IncidentSettings::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["auto_close_after".into()],
            }),
            etag: current.etag,
        };
        self.client
            .update_incident_settings(as_(ADMIN, request))
            .await
            .unwrap();
    }

    /// Runs one statement on the incidents database (to put times in the past).
    pub async fn execute(&self, sql: &str, binds: &[i64], number: &str) {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
        for bind in binds {
            query = query.bind(*bind);
        }
        let done = query.bind(number).execute(self.db.pool()).await.unwrap();
        assert_eq!(done.rows_affected(), 1, "{sql} for {number}");
    }

    /// `(action, actor subject, changes)` of the audit entries of `resource`, in order.
    pub async fn audit(&self, resource: &str) -> Vec<(String, String, String)> {
        sqlx::query_as(
            "SELECT action, actor_subject, changes FROM audit_log WHERE resource = $1 ORDER BY id",
        )
        .bind(resource)
        .fetch_all(self.db.pool())
        .await
        .unwrap()
    }
}
