//! The practices this binary can run: the one place a new practice is added.

use std::sync::Arc;

use itsm_auth::Guard;
use itsm_auth::policy::PolicyError;
use itsm_platform::GrpcServer;
use itsm_store::migrate::Migrations;
use itsm_store::{Db, StoreError};

/// What a practice is built with.
#[derive(Debug)]
pub struct Wiring<'a> {
    pub guard: &'a Guard,
    /// The practice's own database.
    pub db: &'a Db,
    /// Group membership (the identity service).
    pub directory: Arc<dyn itsm_incidents::Directory>,
    /// CI support groups (the CMDB).
    pub cmdb: Arc<dyn itsm_incidents::Cmdb>,
    /// The shared cache for hot reads (Redis in `serve` when configured,
    /// in-process in `dev`).
    pub cache: Arc<dyn itsm_events::cache::Cache>,
    /// The SLA clock engine (with the CMDB for CI-location time zones), shared
    /// by the SLA service, its ticket consumer and its timer job.
    pub sla: itsm_sla::engine::Engine,
}

/// One ITIL practice (or platform service), served by its own crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Practice {
    Incidents,
    Problems,
    Changes,
    Requests,
    Cmdb,
    Sla,
    Knowledge,
    /// API keys for service accounts (later groups and memberships).
    Identity,
}

impl Practice {
    pub const ALL: [Practice; 8] = [
        Self::Incidents,
        Self::Problems,
        Self::Changes,
        Self::Requests,
        Self::Cmdb,
        Self::Sla,
        Self::Knowledge,
        Self::Identity,
    ];

    /// The name used on the command line (`itsm serve incidents`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Incidents => "incidents",
            Self::Problems => "problems",
            Self::Changes => "changes",
            Self::Requests => "requests",
            Self::Cmdb => "cmdb",
            Self::Sla => "sla",
            Self::Knowledge => "knowledge",
            Self::Identity => "identity",
        }
    }

    /// The fully-qualified gRPC service name (checked against the served
    /// services by a test).
    pub fn service_name(self) -> &'static str {
        match self {
            Self::Incidents => "itsm.incidents.v1.IncidentService",
            Self::Problems => "itsm.problems.v1.ProblemService",
            Self::Changes => "itsm.changes.v1.ChangeService",
            Self::Requests => "itsm.requests.v1.RequestService",
            Self::Cmdb => "itsm.cmdb.v1.CmdbService",
            Self::Sla => "itsm.sla.v1.SlaService",
            Self::Knowledge => "itsm.knowledge.v1.KnowledgeService",
            Self::Identity => "itsm.identity.v1.IdentityService",
        }
    }

    /// The practice's own migrations (the platform tables come with every practice).
    pub fn migrations(self) -> Option<Migrations> {
        match self {
            Self::Incidents => itsm_incidents::MIGRATIONS,
            Self::Problems => itsm_problems::MIGRATIONS,
            Self::Changes => itsm_changes::MIGRATIONS,
            Self::Requests => itsm_requests::MIGRATIONS,
            Self::Cmdb => itsm_cmdb::MIGRATIONS,
            Self::Sla => itsm_sla::MIGRATIONS,
            Self::Knowledge => itsm_knowledge::MIGRATIONS,
            Self::Identity => itsm_identity::MIGRATIONS,
        }
    }

    /// Connects to the practice's database and, when `migrate`, brings its
    /// schema up to date.
    pub async fn open_database(self, url: &str, migrate: bool) -> Result<Db, StoreError> {
        let db = Db::connect(url).await?;
        if migrate {
            db.migrate(self.migrations().as_ref()).await?;
        }
        Ok(db)
    }

    /// Adds the practice's service, behind the guard and its policy table.
    pub fn add_to(
        self,
        server: GrpcServer,
        wiring: &Wiring<'_>,
    ) -> Result<GrpcServer, PolicyError> {
        let Wiring {
            guard,
            db,
            directory,
            cmdb,
            sla,
            cache,
        } = wiring;
        Ok(match self {
            Self::Incidents => server.add_service(guard.protect(
                itsm_incidents::service((*db).clone(), Arc::clone(directory), Arc::clone(cmdb)),
                itsm_incidents::POLICY,
            )?),
            Self::Problems => {
                server.add_service(guard.protect(itsm_problems::service(), itsm_problems::POLICY)?)
            }
            Self::Changes => {
                server.add_service(guard.protect(itsm_changes::service(), itsm_changes::POLICY)?)
            }
            Self::Requests => {
                server.add_service(guard.protect(itsm_requests::service(), itsm_requests::POLICY)?)
            }
            Self::Cmdb => server.add_service(guard.protect(
                itsm_cmdb::service((*db).clone(), Arc::clone(cache)),
                itsm_cmdb::POLICY,
            )?),
            Self::Sla => server.add_service(guard.protect(
                itsm_sla::service((*db).clone(), sla.clone()),
                itsm_sla::POLICY,
            )?),
            Self::Knowledge => server
                .add_service(guard.protect(itsm_knowledge::service(), itsm_knowledge::POLICY)?),
            Self::Identity => server.add_service(
                guard.protect(itsm_identity::service((*db).clone()), itsm_identity::POLICY)?,
            ),
        })
    }
}
