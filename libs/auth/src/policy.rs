//! Who may call what: one table per service, as data, reviewable in one place
//! (`services/<practice>/policy.toml`). Default deny: a method the table does
//! not name is refused to everyone, so a new RPC cannot ship unprotected.
//!
//! ```toml
//! service = "itsm.incidents.v1.IncidentService"
//!
//! [methods]
//! CreateIncident = { permission = "incidents.incident.create", roles = ["requester", "agent", "service"] }
//! GetIncident = { permission = "incidents.incident.get", read = true, roles = ["requester", "agent"] }
//! ```
//! `admin` may call every method; `auditor` every method marked `read = true`.
//! Row-level rules (a requester sees only their own tickets) are the
//! handlers' job, on top of this table.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::AuthError;
use crate::principal::Principal;
use crate::roles;

/// One method's rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodRule {
    /// The permission's name, shown in PERMISSION_DENIED: `incidents.incident.create`.
    pub permission: String,
    /// Roles that hold the permission (besides admin, and auditor when `read`).
    #[serde(default)]
    pub roles: Vec<String>,
    /// The method changes nothing: auditors may call it.
    #[serde(default)]
    pub read: bool,
}

/// A service's table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Fully-qualified gRPC service name.
    pub service: String,
    pub methods: BTreeMap<String, MethodRule>,
}

/// A table that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("policy table: {0}")]
    Parse(String),
    #[error("policy table of {service}: method {method} grants the unknown role {role:?}")]
    UnknownRole {
        service: String,
        method: String,
        role: String,
    },
}

impl Policy {
    /// Parses and checks a table: every role named must exist.
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        let policy: Policy = toml::from_str(text).map_err(|e| PolicyError::Parse(e.to_string()))?;
        for (method, rule) in &policy.methods {
            if let Some(role) = rule
                .roles
                .iter()
                .find(|r| !roles::ALL.contains(&r.as_str()))
            {
                return Err(PolicyError::UnknownRole {
                    service: policy.service.clone(),
                    method: method.clone(),
                    role: role.clone(),
                });
            }
        }
        Ok(policy)
    }

    /// Whether `principal` may call `method` of this service.
    pub fn authorize(&self, method: &str, principal: &Principal) -> Result<(), AuthError> {
        let Some(rule) = self.methods.get(method) else {
            // Default deny, and say so: the fix is a line in the table.
            return Err(AuthError::PermissionDenied {
                permission: format!(
                    "(none: {method} has no rule in the policy table, so it is refused)"
                ),
                method: format!("{}/{method}", self.service),
            });
        };
        let allowed = principal.is_admin()
            || (rule.read && principal.has_role(roles::AUDITOR))
            || rule.roles.iter().any(|role| principal.has_role(role));
        if allowed {
            Ok(())
        } else {
            Err(AuthError::PermissionDenied {
                permission: rule.permission.clone(),
                method: format!("{}/{method}", self.service),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::PrincipalKind;

    const TABLE: &str = r#"
service = "itsm.test.v1.TestService"

[methods]
CreateThing = { permission = "test.thing.create", roles = ["agent"] }
GetThing = { permission = "test.thing.get", read = true, roles = ["requester", "agent"] }
"#;

    fn caller(roles: &[&str]) -> Principal {
        Principal {
            subject: "u1".into(),
            display_name: "U".into(),
            kind: PrincipalKind::User,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            groups: vec![],
            tenant: String::new(),
        }
    }

    #[test]
    fn roles_grant_their_methods_only() {
        let policy = Policy::from_toml(TABLE).unwrap();
        assert!(policy.authorize("CreateThing", &caller(&["agent"])).is_ok());
        let denied = policy
            .authorize("CreateThing", &caller(&["requester"]))
            .unwrap_err();
        assert_eq!(
            denied.to_string(),
            "the caller lacks the permission test.thing.create needed for itsm.test.v1.TestService/CreateThing"
        );
        assert!(
            policy
                .authorize("GetThing", &caller(&["requester"]))
                .is_ok()
        );
        assert!(
            policy.authorize("GetThing", &caller(&[])).is_err(),
            "no roles, no access"
        );
    }

    #[test]
    fn admin_calls_everything_auditor_reads_only() {
        let policy = Policy::from_toml(TABLE).unwrap();
        assert!(policy.authorize("CreateThing", &caller(&["admin"])).is_ok());
        assert!(policy.authorize("GetThing", &caller(&["auditor"])).is_ok());
        assert!(
            policy
                .authorize("CreateThing", &caller(&["auditor"]))
                .is_err()
        );
    }

    #[test]
    fn methods_without_a_rule_are_refused_even_to_admins() {
        let policy = Policy::from_toml(TABLE).unwrap();
        // Admin passes every *listed* method; an unlisted one is a table bug to fix.
        let error = policy
            .authorize("DeleteThing", &caller(&["admin"]))
            .unwrap_err();
        assert!(error.to_string().contains("has no rule"), "{error}");
    }

    #[test]
    fn unknown_roles_and_fields_are_refused() {
        let bad = TABLE.replace("[\"agent\"]", "[\"agnet\"]");
        assert!(matches!(
            Policy::from_toml(&bad),
            Err(PolicyError::UnknownRole { .. })
        ));
        let bad = TABLE.replace("read = true", "raed = true");
        assert!(matches!(
            Policy::from_toml(&bad),
            Err(PolicyError::Parse(_))
        ));
    }
}
