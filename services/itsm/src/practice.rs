//! The practices this binary can run: the one place a new practice is added.

use itsm_platform::GrpcServer;
use itsm_store::migrate::Migrations;

/// One ITIL practice, served by its own crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Practice {
    Incidents,
    Problems,
    Changes,
    Requests,
    Cmdb,
    Sla,
    Knowledge,
}

impl Practice {
    pub const ALL: [Practice; 7] = [
        Self::Incidents,
        Self::Problems,
        Self::Changes,
        Self::Requests,
        Self::Cmdb,
        Self::Sla,
        Self::Knowledge,
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
        }
    }

    /// Adds this practice's gRPC service to a server.
    pub fn add_to(self, server: GrpcServer) -> GrpcServer {
        match self {
            Self::Incidents => server.add_service(itsm_incidents::service()),
            Self::Problems => server.add_service(itsm_problems::service()),
            Self::Changes => server.add_service(itsm_changes::service()),
            Self::Requests => server.add_service(itsm_requests::service()),
            Self::Cmdb => server.add_service(itsm_cmdb::service()),
            Self::Sla => server.add_service(itsm_sla::service()),
            Self::Knowledge => server.add_service(itsm_knowledge::service()),
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
        }
    }

    /// Connects to the practice's database and brings its schema up to date.
    pub async fn open_database(self, url: &str) -> Result<itsm_store::Db, itsm_store::StoreError> {
        let db = itsm_store::Db::connect(url).await?;
        db.migrate(self.migrations().as_ref()).await?;
        Ok(db)
    }

    /// The fully-qualified gRPC service name, e.g. `itsm.incidents.v1.IncidentService`.
    pub fn service_name(self) -> &'static str {
        let config = itsm_platform::config::Config::defaults(itsm_platform::Mode::Serve);
        let server = self.add_to(GrpcServer::new(&config));
        server.service_names().first().copied().unwrap_or_default()
    }
}
