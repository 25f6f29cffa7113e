//! The command line: what a newcomer reads in `itsm --help`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use itsm_platform::config::{Config, ConfigError, Mode};
use itsm_platform::telemetry::{self, TelemetryError};
use itsm_platform::{Drain, ServerError};

use crate::practice::Practice;

/// An IT service management platform: incidents, problems, changes, requests
/// and the service catalog, the CMDB, SLAs and knowledge, as gRPC services.
#[derive(Debug, Parser)]
#[command(name = "itsm", version, propagate_version = true)]
#[command(
    after_help = "Start here: `itsm dev` runs the whole platform on this machine.\n\
Configuration: every setting is an ITSM_* environment variable or a key of the --config file; see the README."
)]
pub struct Cli {
    /// TOML config file; ITSM_* environment variables override its keys
    #[arg(long, global = true, value_name = "FILE", env = "ITSM_CONFIG")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole platform in one process: no PostgreSQL, Redis or Docker needed
    #[command(
        long_about = "Run every practice service in one process on this machine, with \
embedded storage under --data-dir. Prints where it listens and how to call it. Stop with Ctrl-C."
    )]
    Dev(DevArgs),
    /// Run one practice service or the gateway, configured by ITSM_* environment variables (as in Kubernetes)
    #[command(
        long_about = "Run one practice service, configured by ITSM_* environment variables \
and the --config file, as a Kubernetes pod does. SIGTERM drains in-flight calls: health turns \
NOT_SERVING, the server keeps serving for ITSM_SHUTDOWN_DELAY, then refuses new calls and gives \
in-flight ones ITSM_SHUTDOWN_GRACE to finish."
    )]
    Serve(crate::gateway::ServeArgs),
    /// Bring a practice's database schema up to date (ITSM_DATABASE_URL), e.g. as a Kubernetes Job
    #[command(
        long_about = "Apply the practice's pending migrations to the database at \
ITSM_DATABASE_URL and exit. Safe to run from several pods at once: on PostgreSQL the \
migrators take turns under an advisory lock. Services also migrate at start unless \
ITSM_MIGRATE_ON_START=false."
    )]
    Migrate(ServeArgs),
    /// List the practices and their gRPC service names
    Practices,
    /// Ask a running service whether it is SERVING (exit 0) or not (exit 1)
    Health(HealthArgs),
    /// Mint a development token for given roles (signed with the `itsm dev` key or ITSM_AUTH_HS256_SECRET)
    #[command(
        long_about = "Print a bearer token for a subject with the given roles, signed \
with ITSM_AUTH_HS256_SECRET or, when unset, the key `itsm dev` keeps in its data directory. \
For development and tests; production tokens come from your identity provider.\n\n\
Example: grpcurl -plaintext -H \"authorization: Bearer $(itsm token --role agent)\" ..."
    )]
    Token(TokenArgs),
    /// Client commands against a running platform (login, incident, ci, sla, completion)
    #[command(flatten)]
    Client(crate::client::ClientCommand),
}

#[derive(Debug, clap::Args)]
struct TokenArgs {
    /// A role to grant; repeat for several (requester, agent, problem_manager, change_manager,
    /// cab_member, catalog_admin, cmdb_admin, knowledge_author, auditor, admin, service)
    #[arg(long = "role", value_name = "ROLE", required = true)]
    roles: Vec<String>,

    /// The subject (user id) the token names
    #[arg(long, default_value = "dev-user")]
    subject: String,

    /// The display name [default: the subject]
    #[arg(long)]
    name: Option<String>,

    /// A group the subject belongs to; repeat for several
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,

    /// How long the token is valid
    #[arg(long, default_value = "8h", value_parser = humantime::parse_duration)]
    ttl: std::time::Duration,

    /// The `itsm dev` data directory holding the signing key [default: the user's data directory]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct HealthArgs {
    /// The service's address
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:50051")]
    addr: String,

    /// A gRPC service name such as itsm.incidents.v1.IncidentService; empty for the whole server
    #[arg(long, value_name = "NAME", default_value = "")]
    service: String,

    /// Give up after this long
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    timeout: std::time::Duration,
}

#[derive(Debug, clap::Args)]
struct DevArgs {
    /// Where data is kept [default: the user's data directory, e.g. ~/.local/share/itsm]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Address to listen on; port 0 picks a free one [default: ITSM_GRPC_ADDR or 127.0.0.1:50051]
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// The practice to run
    #[arg(value_enum)]
    practice: Practice,
}

impl Cli {
    pub async fn run(self) -> Result<ExitCode, CliError> {
        match self.command {
            Command::Dev(args) => {
                let mut config = Config::load(Mode::Dev, self.config.as_deref())?;
                if let Some(listen) = args.listen {
                    config.grpc_addr = listen;
                }
                let data_dir = args
                    .data_dir
                    .or_else(|| config.data_dir.clone())
                    .or_else(default_data_dir)
                    .ok_or(CliError::NoDataDir)?;
                // Dropped (traces flushed) once `dev::run` has drained every server.
                let _telemetry = telemetry::init(&config, "itsm-dev")?;
                crate::dev::run(config, data_dir).await.map(exit_code)
            }
            Command::Token(args) => {
                let config = Config::load(Mode::Dev, self.config.as_deref())?;
                let data_dir = args
                    .data_dir
                    .or_else(|| config.data_dir.clone())
                    .or_else(default_data_dir);
                let secret = crate::token::signing_secret(&config, data_dir)?;
                let name = args.name.as_deref().unwrap_or(&args.subject);
                let token = crate::token::mint(
                    &config,
                    &secret,
                    &args.subject,
                    name,
                    &args.roles,
                    &args.groups,
                    args.ttl,
                )?;
                println!("{token}");
                Ok(ExitCode::SUCCESS)
            }
            Command::Serve(args) => {
                let config = Config::load(Mode::Serve, self.config.as_deref())?;
                let service = match &args.target {
                    crate::gateway::ServeTarget::Practice(practice) => {
                        format!("itsm-{}", practice.name())
                    }
                    crate::gateway::ServeTarget::Gateway => "itsm-gateway".to_owned(),
                };
                // Dropped (traces flushed) once the server has drained, on
                // SIGTERM as on any other way out.
                let _telemetry = telemetry::init(&config, &service)?;
                match args.target {
                    crate::gateway::ServeTarget::Practice(practice) => {
                        crate::serve::run(config, practice).await.map(exit_code)
                    }
                    crate::gateway::ServeTarget::Gateway => {
                        crate::gateway::serve(config).await.map(exit_code)
                    }
                }
            }
            Command::Migrate(args) => {
                let config = Config::load(Mode::Serve, self.config.as_deref())?;
                let url = config.database_url.ok_or(CliError::NoDatabaseUrl)?;
                args.practice.open_database(url.expose(), true).await?;
                println!("{}: schema is up to date", args.practice.name());
                Ok(ExitCode::SUCCESS)
            }
            Command::Health(args) => {
                let serving = crate::health::check(&args.addr, &args.service, args.timeout).await?;
                Ok(if serving {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                })
            }
            Command::Client(command) => Ok(command.run(self.config.as_deref()).await?),
            Command::Practices => {
                for practice in Practice::ALL {
                    println!("{:<10} {}", practice.name(), practice.service_name());
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

/// `~/.local/share/itsm` and its equivalents.
pub(crate) fn default_data_dir() -> Option<PathBuf> {
    dirs::data_dir().map(|dir| dir.join("itsm"))
}

/// Exit 0 after a complete drain; 1 when calls had to be abandoned.
fn exit_code(drain: Drain) -> ExitCode {
    match drain {
        Drain::Complete => ExitCode::SUCCESS,
        Drain::Abandoned => ExitCode::FAILURE,
    }
}

/// Why `itsm` stopped with an error. Printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("no data directory: pass --data-dir or set ITSM_DATA_DIR")]
    NoDataDir,
    #[error(
        "ITSM_DATABASE_URL is not set: say which database the practice keeps its data in (postgres://... or sqlite:...)"
    )]
    NoDatabaseUrl,
    #[error(
        "no signing key: set ITSM_AUTH_HS256_SECRET, or run `itsm dev` once (it creates one in its data directory)"
    )]
    NoSigningKey,
    #[error("unknown role {0:?}; roles are: {roles}", roles = itsm_auth::roles::ALL.join(", "))]
    UnknownRole(String),
    #[error("{0}")]
    AuthConfig(#[from] itsm_auth::config::AuthConfigError),
    #[error("{0}")]
    Policy(#[from] itsm_auth::policy::PolicyError),
    #[error("{0}")]
    Auth(#[from] itsm_auth::AuthError),
    #[error("{0}")]
    Api(#[from] itsm_platform::ApiError),
    #[error("database: {0}")]
    Store(#[from] itsm_store::StoreError),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Telemetry(#[from] TelemetryError),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error(transparent)]
    Metrics(#[from] itsm_platform::metrics::MetricsError),
    #[error(transparent)]
    Gateway(#[from] crate::gateway::GatewayStartError),
    #[error("health check of {addr} failed: {reason}")]
    Health { addr: String, reason: String },
    #[error("ITSM_REDIS_URL: {0}")]
    Redis(#[from] itsm_events::BusError),
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
}

impl CliError {
    /// 2 for configuration mistakes (fix the config and retry), 1 for the rest.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Config(_)
            | Self::NoDataDir
            | Self::NoDatabaseUrl
            | Self::NoSigningKey
            | Self::UnknownRole(_)
            | Self::AuthConfig(_)
            | Self::Redis(_) => ExitCode::from(2),
            Self::Client(error) => error.exit_code(),
            Self::Gateway(error) if error.is_config() => ExitCode::from(2),
            _ => ExitCode::FAILURE,
        }
    }
}
