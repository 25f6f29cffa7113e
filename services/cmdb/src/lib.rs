//! The configuration management database: classes, CIs, relationships and impact.
//!
//! The gRPC contract is `itsm.cmdb.v1.CmdbService` in `proto/itsm/cmdb/v1`;
//! who may call what is `policy.toml`. It may use the libs; it knows other
//! practices only through `itsm-proto`.
//!
//! - [`model`]: the class hierarchy and relationship types in memory, and the
//!   validation of attributes against a class; [`seed`]: the default model.
//! - [`store`]: the tables (see the migration for the layout: most resources
//!   keep their protobuf message whole, with copies of the columns queries need).
//! - [`write`]: the one way a CI changes: row, attribute index, version
//!   snapshot, history entry and event in the caller's transaction.
//! - [`filter`]: the CI filter language (core fields, `ci_class` with its
//!   subclasses, `attributes.<key>`), compiled to SQL or evaluated in memory.
//! - [`api`]: the handlers.
//! - [`jobs`]: background work under a lease (the health report).

pub mod api;
pub mod filter;
pub mod identify;
pub mod impact;
pub mod jobs;
pub mod model;
pub mod reconcile;
pub mod relate;
pub mod seed;
pub mod store;
pub mod write;

use std::sync::Arc;

use itsm_events::cache::Cache;
use itsm_proto::itsm::cmdb::v1::cmdb_service_server::CmdbServiceServer;
use itsm_store::Db;
use sqlx::migrate::Migrator;

pub use api::CmdbApi;

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

/// The cache key prefix of this practice in a shared cache.
pub const CACHE_PREFIX: &str = "cmdb:";

/// The tonic service to add to a server, over a migrated database, caching
/// hot reads in `cache`.
pub fn service(db: Db, cache: Arc<dyn Cache>) -> CmdbServiceServer<CmdbApi> {
    CmdbServiceServer::new(CmdbApi::new(db, cache, CACHE_PREFIX))
}

/// The cache keys a CMDB event makes stale: the CI's cached read for a CI
/// event, and the impact results for anything that can change a walk (CIs,
/// relationships, relationship types). The writer deletes them after its
/// commit; a consumer of the `cmdb` stream deletes them again from the event,
/// which covers a writer that died between commit and delete.
pub fn stale_keys(event: &itsm_proto::itsm::events::v1::Event) -> Vec<String> {
    let mut keys = Vec::new();
    if let Some(uid) = event.subject.strip_prefix("cis/") {
        keys.extend(write::stale_keys(CACHE_PREFIX, uid));
    }
    if event.subject.starts_with("cis/")
        || event.subject.starts_with("relationships/")
        || event.subject.starts_with("relationshipTypes/")
    {
        keys.extend(impact::impact_stale_keys(CACHE_PREFIX));
    }
    keys
}

/// The uid of a CI name: "cis/<uuid>" -> "<uuid>" (a UUID in its hyphenated form).
pub fn ci_uid(name: &str) -> Option<&str> {
    name.strip_prefix("cis/")
        .filter(|uid| uuid::Uuid::try_parse(uid).is_ok())
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
        assert_eq!(policy.service, "itsm.cmdb.v1.CmdbService");
        let set = prost_types::FileDescriptorSet::decode(itsm_proto::FILE_DESCRIPTOR_SET).unwrap();
        let mut contract: Vec<String> = set
            .file
            .iter()
            .filter(|f| f.package() == "itsm.cmdb.v1")
            .flat_map(|f| &f.service)
            .filter(|s| s.name() == "CmdbService")
            .flat_map(|s| &s.method)
            .map(|m| m.name().to_owned())
            .collect();
        contract.sort();
        let ruled: Vec<String> = policy.methods.keys().cloned().collect();
        assert_eq!(ruled, contract);
    }
}
