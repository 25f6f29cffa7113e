//! What went wrong, in sentences for the person at the terminal: each gRPC
//! code says what to do next, with the server's field violations and
//! precondition failures listed.

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;

use itsm_platform::ApiError;
use tonic::Code;

pub(super) const LOGIN_HINT: &str = "run `itsm login --dev` (itsm dev) or `itsm login --token ...`";

/// Why a client command failed. Printed after `itsm: `.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("not logged in: {LOGIN_HINT}")]
    NotLoggedIn,
    #[error("the token expired at {at}: {LOGIN_HINT} to get a new one")]
    Expired { at: String },
    #[error("cannot reach the ITSM server at {addr}: is `itsm dev` running? ({reason})")]
    Unreachable { addr: String, reason: String },
    #[error("{0}")]
    Status(Box<StatusError>),
    /// What the user named does not exist, or not only once.
    #[error("{0}")]
    Lookup(String),
    /// A value the command line accepted but the command cannot use.
    #[error("{0}")]
    Usage(String),
    #[error("no config directory for this user: set ITSM_SERVER and ITSM_TOKEN instead")]
    NoConfigDir,
    #[error("{}: {reason}", path.display())]
    ConfigFile { path: PathBuf, reason: String },
    #[error("cannot read the token from standard input: {0}")]
    Stdin(std::io::Error),
    #[error("cannot print the result: {0}")]
    Output(String),
    #[error("{0}")]
    Token(Box<crate::cli::CliError>),
}

impl From<crate::cli::CliError> for ClientError {
    fn from(error: crate::cli::CliError) -> Self {
        Self::Token(Box::new(error))
    }
}

impl ClientError {
    /// 2 for usage mistakes (fix the command line), 1 for the rest.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Usage(_) => ExitCode::from(2),
            Self::Token(error) => error.exit_code(),
            _ => ExitCode::FAILURE,
        }
    }

    /// A status a call to `addr` returned.
    pub fn status(addr: &str, status: &tonic::Status) -> Self {
        if status.code() == Code::Unavailable {
            return Self::Unreachable {
                addr: addr.to_owned(),
                reason: status.message().to_owned(),
            };
        }
        Self::Status(Box::new(StatusError {
            addr: addr.to_owned(),
            error: ApiError::from_status(status),
            code: status.code(),
        }))
    }
}

/// A gRPC error status, with its details decoded.
#[derive(Debug)]
pub struct StatusError {
    addr: String,
    code: Code,
    error: ApiError,
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = self.error.message();
        match self.code {
            Code::Unauthenticated => {
                write!(
                    f,
                    "not logged in or token expired: {LOGIN_HINT} (the server said: {message})"
                )
            }
            Code::PermissionDenied => write!(
                f,
                "permission denied: {message}; `itsm whoami` shows the roles your token has"
            ),
            Code::InvalidArgument | Code::OutOfRange => {
                let violations = self.error.field_violations();
                if violations.is_empty() {
                    return write!(f, "the request was refused: {message}");
                }
                f.write_str("the request was refused:")?;
                for v in violations {
                    write!(f, "\n  {}: {}", v.field, v.description)?;
                }
                Ok(())
            }
            Code::NotFound => write!(f, "not found: {message}"),
            Code::FailedPrecondition => {
                write!(f, "not allowed now: {message}")?;
                for v in self.error.precondition_violations() {
                    if v.description != message {
                        write!(f, "\n  {} {}: {}", v.kind, v.subject, v.description)?;
                    }
                }
                Ok(())
            }
            Code::Aborted => write!(f, "{message}"),
            Code::AlreadyExists => write!(f, "already exists: {message}"),
            Code::ResourceExhausted => match self.error.retry_after() {
                Some(delay) => write!(
                    f,
                    "rate limited: {message}; retry in {}",
                    humantime::format_duration(delay)
                ),
                None => write!(f, "rate limited: {message}"),
            },
            Code::DeadlineExceeded => write!(
                f,
                "the ITSM server at {} did not answer in time: {message}",
                self.addr
            ),
            Code::Unimplemented => write!(
                f,
                "the ITSM server at {} does not offer this (yet): {message}",
                self.addr
            ),
            Code::Internal | Code::Unknown | Code::DataLoss => write!(
                f,
                "the ITSM server at {} failed: {message} (give this to the on-call engineer)",
                self.addr
            ),
            code => write!(f, "{code:?}: {message}"),
        }
    }
}
