//! Incident management: restore normal service as quickly as possible.
//!
//! The gRPC contract is `itsm.incidents.v1.IncidentService` in
//! `proto/itsm/incidents/v1`; who may call what is `policy.toml`. It may use
//! the libs; it knows other practices only through `itsm-proto` (the
//! identity service answers who belongs to which group, see [`directory`]).
//!
//! Every method of the contract is built: incidents (create, read, list,
//! update) and their lifecycle (assign, hold, resume, resolve, close, cancel,
//! reopen) guarded by a transition table; journal, watchers, links, the audit
//! trail; tasks; parent/child links whose holds and resolutions propagate as
//! a table says; major incidents (promoted by hand or by rules); assignment
//! rules routing new incidents (round-robin or least-loaded within a group,
//! or the CI's support group from a [`Cmdb`]); alert intake with
//! de-duplication and flapping ([`alertmanager`] maps Prometheus
//! Alertmanager's webhook); a job closing old resolved incidents; KPIs.
//!
//! - [`domain`]: the rules, no I/O.
//! - [`store`]: the tables.
//! - [`api`]: the handlers; every change writes row, audit entry and event
//!   in one transaction.
//! - [`directory`]: group membership, asked before an assignee is accepted
//!   and for the members rules pick from; CI support groups.
//! - [`jobs`]: background work under a lease: auto-close.
//! - [`escalation`]: the consumer of SLA events escalating an incident whose
//!   SLA breached (flag, escalation entry, the group's manager notified).

pub mod alertmanager;
pub mod api;
mod convert;
pub mod directory;
pub mod domain;
pub mod escalation;
pub mod gauges;
pub mod jobs;
pub mod store;

use std::sync::Arc;

use itsm_proto::itsm::incidents::v1::incident_service_server::IncidentServiceServer;
use itsm_store::Db;
use sqlx::migrate::Migrator;

pub use api::IncidentsApi;
pub use directory::{
    Cmdb, Directory, IdentityDirectory, Membership, NoCmdb, NoDirectory, RemoteCmdb,
};

static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");

/// This practice's own schema, applied after the platform tables.
pub const MIGRATIONS: Option<itsm_store::migrate::Migrations> =
    Some(itsm_store::migrate::Migrations {
        postgres: &POSTGRES,
        sqlite: &SQLITE,
    });

/// Who may call which method of this service (see `policy.toml` beside
/// `Cargo.toml`; format in `itsm_auth::policy`). Default deny.
pub const POLICY: &str = include_str!("../policy.toml");

/// The tonic service to add to a server, over a migrated database, asking
/// `directory` whether assignees belong to their groups and `cmdb` which
/// group supports a CI.
pub fn service(
    db: Db,
    directory: Arc<dyn Directory>,
    cmdb: Arc<dyn Cmdb>,
) -> IncidentServiceServer<IncidentsApi> {
    IncidentServiceServer::new(IncidentsApi::new(db, directory).with_cmdb(cmdb))
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
        assert_eq!(policy.service, "itsm.incidents.v1.IncidentService");
        let set = prost_types::FileDescriptorSet::decode(itsm_proto::FILE_DESCRIPTOR_SET).unwrap();
        let mut contract: Vec<String> = set
            .file
            .iter()
            .filter(|f| f.package() == "itsm.incidents.v1")
            .flat_map(|f| &f.service)
            .filter(|s| s.name() == "IncidentService")
            .flat_map(|s| &s.method)
            .map(|m| m.name().to_owned())
            .collect();
        contract.sort();
        let ruled: Vec<String> = policy.methods.keys().cloned().collect();
        assert_eq!(ruled, contract);
    }
}
