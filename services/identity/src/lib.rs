//! Identity: the platform's own record of who may call it and who works
//! where. API keys for service accounts (monitoring, CI/CD, HR systems):
//! issued with a random secret shown once, stored as a hash, listed,
//! revoked, expiring; and verified, for every other service's auth layer,
//! through `VerifyApiKey`. Assignment groups and their members, which every
//! ticket practice checks assignees against through `CheckMembership`.
//!
//! The gRPC contract is `itsm.identity.v1.IdentityService` in
//! `proto/itsm/identity/v1`; who may call what is `policy.toml`. It may use
//! the libs; it knows other practices only through `itsm-proto`.
//!
//! - [`domain`]: validation, states, the revoke rule; group rules in
//!   [`domain::group`] (no I/O).
//! - [`store`]: the `api_keys` table; [`store::group`] the `groups` and
//!   `group_members` tables.
//! - [`api`]: the handlers; every change writes row, audit entry and event
//!   in one transaction.
//! - [`verify`]: [`LocalApiKeyVerifier`], a key to a principal.

pub mod api;
mod convert;
pub mod domain;
pub mod store;
pub mod verify;

use itsm_proto::itsm::identity::v1::identity_service_server::IdentityServiceServer;
use itsm_store::Db;
use sqlx::migrate::Migrator;

pub use api::IdentityApi;
pub use verify::LocalApiKeyVerifier;

static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");

/// This service's own schema (API keys, groups), applied after the platform tables.
pub const MIGRATIONS: Option<itsm_store::migrate::Migrations> =
    Some(itsm_store::migrate::Migrations {
        postgres: &POSTGRES,
        sqlite: &SQLITE,
    });

/// Who may call which method (`itsm_auth::policy::Policy::from_toml`).
pub const POLICY: &str = include_str!("../policy.toml");

/// The tonic service to add to a server, over a migrated database.
pub fn service(db: Db) -> IdentityServiceServer<IdentityApi> {
    IdentityServiceServer::new(IdentityApi::new(db))
}

#[cfg(test)]
mod tests {
    use itsm_auth::policy::Policy;
    use prost::Message as _;

    /// Default deny would refuse a method the table forgets, even to admins:
    /// every RPC of the contract must have a rule, and no rule may name a
    /// method the contract does not have.
    #[test]
    fn the_policy_table_covers_exactly_the_contract() {
        let policy = Policy::from_toml(super::POLICY).unwrap();
        assert_eq!(policy.service, "itsm.identity.v1.IdentityService");
        let set = prost_types::FileDescriptorSet::decode(itsm_proto::FILE_DESCRIPTOR_SET).unwrap();
        let methods: Vec<String> = set
            .file
            .iter()
            .filter(|f| f.package() == "itsm.identity.v1")
            .flat_map(|f| &f.service)
            .filter(|s| s.name() == "IdentityService")
            .flat_map(|s| &s.method)
            .map(|m| m.name().to_owned())
            .collect();
        let mut contract = methods.clone();
        contract.sort();
        let ruled: Vec<String> = policy.methods.keys().cloned().collect();
        assert_eq!(ruled, contract);
    }

    /// Group membership decides who may be assigned tickets: only admins
    /// change it. Those who work tickets, and the practices checking
    /// assignees, read it; requesters do not.
    #[test]
    fn groups_are_changed_by_admins_and_read_by_those_who_work_tickets() {
        use itsm_auth::{Principal, PrincipalKind, roles};
        let policy = Policy::from_toml(super::POLICY).unwrap();
        let caller = |role: &str| Principal {
            subject: "u1".into(),
            display_name: "U".into(),
            kind: PrincipalKind::User,
            roles: vec![role.to_owned()],
            groups: vec![],
            tenant: String::new(),
        };
        let changes = [
            "CreateGroup",
            "UpdateGroup",
            "DeleteGroup",
            "AddGroupMember",
            "RemoveGroupMember",
        ];
        for method in changes {
            for role in roles::ALL {
                let allowed = policy.authorize(method, &caller(role)).is_ok();
                assert_eq!(allowed, *role == roles::ADMIN, "{method} as {role}");
            }
        }
        for method in ["GetGroup", "ListGroups", "CheckMembership"] {
            for role in roles::ALL {
                let allowed = policy.authorize(method, &caller(role)).is_ok();
                assert_eq!(allowed, *role != roles::REQUESTER, "{method} as {role}");
            }
        }
    }
}
