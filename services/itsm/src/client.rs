//! The client commands: `itsm login`, `itsm incident list --mine`, `itsm ci
//! impact`, `itsm sla show` ... for people at a terminal and for scripts.
//!
//! Every command talks gRPC to one address, the gateway's (which passes gRPC
//! through unchanged) or `itsm dev`'s, with the generated tonic clients of
//! `itsm-proto`. Tables are for people; `-o json` prints one canonical
//! protobuf JSON document (the REST mapping's shape) for scripts.
//!
//! A practice adds its commands in one place: a module with a clap
//! `Subcommand` enum implementing [`Practice`], and one variant in
//! [`ClientCommand`] (the match in [`ClientCommand::run`] follows).

#[macro_use]
mod output;
mod ci;
mod config;
mod error;
mod incident;
mod session;
mod sla;

use std::process::ExitCode;

pub use error::ClientError;
pub use session::Target;

use clap::Subcommand;

/// The commands of one practice, run against a connected [`session::Session`].
trait Practice {
    /// Runs the command and prints its result.
    async fn run(self, session: &session::Session) -> Result<(), ClientError>;
}

/// Commands that call a running platform (`itsm dev` or the gateway).
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Store the token the other commands send (from --token, stdin, or minted with the dev key)
    #[command(
        long_about = "Store the bearer token the client commands send, in the user's \
config file (readable by its owner only). ITSM_TOKEN, when set, is used instead.\n\n\
With --dev, mint one with the key of the local `itsm dev` (as `itsm token` does); \
with --token, store the one given (production tokens come from your identity provider); \
with neither, read it from standard input."
    )]
    Login(session::LoginArgs),
    /// Forget the stored token
    Logout,
    /// Show who the token names: subject, roles, groups and when it expires (decoded locally)
    Whoami(session::WhoamiArgs),
    /// Incidents: create, list, show, assign, hold, resume, resolve, close, cancel, reopen, comment
    Incident {
        #[command(subcommand)]
        command: incident::Command,
        #[command(flatten)]
        target: Target,
    },
    /// Configuration items: show one, analyse what its failure impacts
    Ci {
        #[command(subcommand)]
        command: ci::Command,
        #[command(flatten)]
        target: Target,
    },
    /// SLAs: the clocks of a ticket
    Sla {
        #[command(subcommand)]
        command: sla::Command,
        #[command(flatten)]
        target: Target,
    },
    /// Print a shell completion script: `source <(itsm completion bash)`
    Completion(CompletionArgs),
}

/// Arguments of `itsm completion`.
#[derive(Debug, clap::Args)]
pub struct CompletionArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

impl ClientCommand {
    /// Runs the command; errors are for [`ClientError::exit_code`] and the user.
    pub async fn run(self, config: Option<&std::path::Path>) -> Result<ExitCode, ClientError> {
        match self {
            Self::Login(args) => session::login(args, config)?,
            Self::Logout => session::logout()?,
            Self::Whoami(args) => session::whoami(args, config)?,
            Self::Incident { command, target } => command.run(&target.connect().await?).await?,
            Self::Ci { command, target } => command.run(&target.connect().await?).await?,
            Self::Sla { command, target } => command.run(&target.connect().await?).await?,
            Self::Completion(args) => {
                let mut command = <crate::cli::Cli as clap::CommandFactory>::command();
                let mut script = Vec::new();
                clap_complete::generate(args.shell, &mut command, "itsm", &mut script);
                output::line(String::from_utf8_lossy(&script).trim_end())?;
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
