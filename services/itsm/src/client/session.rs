//! Who calls and where: the server address and the token, from flags, the
//! environment or what `itsm login` stored; `login`, `logout` and `whoami`.

use std::io::{BufRead as _, IsTerminal as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use itsm_platform::config::{Config, Mode};
use tonic::transport::{Channel, Endpoint};

use super::ClientError;
use super::config::{self, ClientConfig};
use super::output::{self, Format};

/// Where `itsm dev` runs its gateway unless told otherwise: the address a
/// developer's commands reach without configuring anything.
fn default_server() -> String {
    Config::defaults(Mode::Dev).gateway.addr.to_string()
}

/// How long one call may take before the command gives up.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The options every practice command takes.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The ITSM server's gRPC address: the gateway's [default: the address `itsm login --server`
    /// stored, else 127.0.0.1:8080, the gateway of `itsm dev`]
    #[arg(long, global = true, env = "ITSM_SERVER", value_name = "ADDR")]
    server: Option<String>,

    /// A table for people, or one JSON document for scripts: canonical protobuf JSON, as the
    /// REST API answers (fields at their default left out)
    #[arg(short, long, global = true, value_enum, default_value_t = Format::Table)]
    output: Format,
}

/// A connection to the server with the caller's token: what commands call through.
pub struct Session {
    addr: String,
    channel: Channel,
    token: String,
    subject: Option<String>,
    format: Format,
}

impl std::fmt::Debug for Session {
    // The token is a credential: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("addr", &self.addr)
            .field("subject", &self.subject)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// Finds the token (refusing an expired one before any call), then
    /// connects to the server.
    pub async fn connect(self) -> Result<Session, ClientError> {
        // Flags and the environment suffice without a config directory.
        let stored = match config::path() {
            Ok(path) => ClientConfig::load(&path)?,
            Err(_) => ClientConfig::default(),
        };
        let token = match std::env::var("ITSM_TOKEN") {
            Ok(token) if !token.trim().is_empty() => token.trim().to_owned(),
            _ => stored.token.clone().ok_or(ClientError::NotLoggedIn)?,
        };
        let claims = Claims::decode(&token, "roles", "groups");
        if let Some(claims) = &claims {
            claims.check_not_expired()?;
        }
        let addr = self.server.or(stored.server).unwrap_or_else(default_server);
        let url = if addr.contains("://") {
            addr.clone()
        } else {
            format!("http://{addr}")
        };
        let unreachable = |reason: String| ClientError::Unreachable {
            addr: addr.clone(),
            reason,
        };
        let endpoint = Endpoint::from_shared(url)
            .map_err(|error| ClientError::Usage(format!("--server {addr:?}: {error}")))?
            .connect_timeout(CONNECT_TIMEOUT);
        let channel = endpoint
            .connect()
            .await
            .map_err(|error| unreachable(error_chain(&error)))?;
        Ok(Session {
            addr,
            channel,
            token,
            subject: claims.map(|c| c.subject),
            format: self.output,
        })
    }
}

impl Session {
    /// The channel, for a generated client.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// `message` with the bearer token and a deadline.
    pub fn request<T>(&self, message: T) -> Result<tonic::Request<T>, ClientError> {
        let mut request = tonic::Request::new(message);
        let value = format!("Bearer {}", self.token).parse().map_err(|_| {
            ClientError::Usage(
                "the token has characters a header cannot carry: log in again".into(),
            )
        })?;
        request.metadata_mut().insert("authorization", value);
        request.set_timeout(CALL_TIMEOUT);
        Ok(request)
    }

    /// A failed call, as a sentence.
    pub fn fail(&self, status: tonic::Status) -> ClientError {
        ClientError::status(&self.addr, &status)
    }

    /// The token's subject, for `--mine`.
    pub fn subject(&self) -> Result<&str, ClientError> {
        self.subject.as_deref().ok_or_else(|| {
            ClientError::Usage(
                "--mine needs a token that names its subject (a JWT); this one does not".into(),
            )
        })
    }

    pub fn format(&self) -> Format {
        self.format
    }
}

/// The causes of a transport error, joined: tonic's own text is only "transport error".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Arguments of `itsm login`.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The token to store [default: read from standard input]
    #[arg(long, value_name = "TOKEN", conflicts_with = "dev")]
    token: Option<String>,

    /// Mint a token with the signing key of the local `itsm dev` (development only)
    #[arg(long)]
    dev: bool,

    /// With --dev: the subject the token names [default: $USER]
    #[arg(long, requires = "dev")]
    subject: Option<String>,

    /// With --dev: a role to grant; repeat for several [default: agent]
    #[arg(long = "role", value_name = "ROLE", requires = "dev")]
    roles: Vec<String>,

    /// With --dev: a group the subject belongs to; repeat for several
    #[arg(long = "group", value_name = "GROUP", requires = "dev")]
    groups: Vec<String>,

    /// With --dev: how long the token is valid [default: 12h]
    #[arg(long, requires = "dev", value_parser = humantime::parse_duration)]
    ttl: Option<Duration>,

    /// With --dev: the `itsm dev` data directory holding the key [default: the user's data directory]
    #[arg(long, value_name = "DIR", requires = "dev")]
    data_dir: Option<PathBuf>,

    /// Also remember this server address for the other commands
    #[arg(long, value_name = "ADDR")]
    server: Option<String>,
}

/// `itsm login`.
pub fn login(args: LoginArgs, config_file: Option<&Path>) -> Result<(), ClientError> {
    let token = if args.dev {
        let config = Config::load(Mode::Dev, config_file).map_err(crate::cli::CliError::from)?;
        let data_dir = args
            .data_dir
            .or_else(|| config.data_dir.clone())
            .or_else(crate::cli::default_data_dir);
        let secret = crate::token::signing_secret(&config, data_dir)?;
        let subject = args
            .subject
            .or_else(|| std::env::var("USER").ok().filter(|user| !user.is_empty()))
            .unwrap_or_else(|| "dev-user".to_owned());
        let roles = if args.roles.is_empty() {
            vec![itsm_auth::roles::AGENT.to_owned()]
        } else {
            args.roles
        };
        let ttl = args.ttl.unwrap_or(Duration::from_secs(12 * 3600));
        crate::token::mint(
            &config,
            &secret,
            &subject,
            &subject,
            &roles,
            &args.groups,
            ttl,
        )?
    } else {
        match args.token {
            Some(token) => token,
            None => read_token()?,
        }
    };
    let token = token.trim().to_owned();
    if token.is_empty() {
        return Err(ClientError::Usage("the token is empty".into()));
    }
    let claims = Claims::decode(&token, "roles", "groups");
    if let Some(claims) = &claims {
        claims.check_not_expired()?;
    }
    let path = config::path()?;
    let mut stored = ClientConfig::load(&path)?;
    stored.token = Some(token);
    if let Some(server) = args.server {
        stored.server = Some(server);
    }
    stored.store(&path)?;
    match claims {
        Some(claims) => out!(
            "Logged in as {} ({}) until {}; token stored in {}",
            claims.subject,
            claims.roles.join(", "),
            claims.expires(),
            path.display()
        ),
        None => out!("Token stored in {}", path.display()),
    }
    if std::env::var_os("ITSM_TOKEN").is_some() {
        eprintln!("note: ITSM_TOKEN is set in this shell and is used instead of the stored token");
    }
    Ok(())
}

fn read_token() -> Result<String, ClientError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("Paste the token and press Enter:");
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(ClientError::Stdin)?;
    Ok(line)
}

/// `itsm logout`: forgets the stored token, keeps the server address.
pub fn logout() -> Result<(), ClientError> {
    let path = config::path()?;
    let mut stored = ClientConfig::load(&path)?;
    if stored.token.take().is_some() {
        stored.store(&path)?;
        out!("Logged out: token removed from {}", path.display());
    } else {
        out!("Not logged in: no token stored in {}", path.display());
    }
    if std::env::var_os("ITSM_TOKEN").is_some() {
        eprintln!(
            "note: ITSM_TOKEN is still set in this shell: `unset ITSM_TOKEN` to stop using it"
        );
    }
    Ok(())
}

/// Arguments of `itsm whoami`.
#[derive(Debug, clap::Args)]
pub struct WhoamiArgs {
    /// A table for people, or one JSON document for scripts
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

/// `itsm whoami`: what the token says, decoded locally (not verified: only
/// the server can tell whether it accepts it).
pub fn whoami(args: WhoamiArgs, config_file: Option<&Path>) -> Result<(), ClientError> {
    let (token, source) = match std::env::var("ITSM_TOKEN") {
        Ok(token) if !token.trim().is_empty() => (token.trim().to_owned(), "ITSM_TOKEN".to_owned()),
        _ => {
            let path = config::path()?;
            let token = ClientConfig::load(&path)?
                .token
                .ok_or(ClientError::NotLoggedIn)?;
            (token, path.display().to_string())
        }
    };
    let config = Config::load(Mode::Dev, config_file).map_err(crate::cli::CliError::from)?;
    let claims = Claims::decode(&token, &config.auth_roles_claim, &config.auth_groups_claim)
        .ok_or_else(|| {
            ClientError::Usage(format!(
                "the token from {source} is not a JWT (an API key?): only the server knows whom it names"
            ))
        })?;
    match args.output {
        Format::Json => output::print_json_value(&serde_json::json!({
            "subject": claims.subject,
            "name": claims.name,
            "roles": claims.roles,
            "groups": claims.groups,
            "expireTime": claims.expire_rfc3339(),
            "expired": claims.expired(),
            "source": source,
        }))?,
        Format::Table => {
            let state = if claims.expired() {
                format!("expired; {}", super::error::LOGIN_HINT)
            } else {
                format!("in {}", claims.remaining())
            };
            output::print_fields(&[
                ("Subject", claims.subject.clone()),
                ("Name", claims.name.clone()),
                ("Roles", claims.roles.join(", ")),
                ("Groups", claims.groups.join(", ")),
                ("Expires", format!("{} ({state})", claims.expires())),
                ("Token from", source),
            ])?;
        }
    }
    if claims.expired() {
        return Err(ClientError::Expired {
            at: claims.expires(),
        });
    }
    Ok(())
}

/// What a JWT says about its holder, read without verifying the signature.
#[derive(Debug)]
struct Claims {
    subject: String,
    name: String,
    roles: Vec<String>,
    groups: Vec<String>,
    /// Seconds since the epoch; 0 when the token does not say.
    expires_at: i64,
}

impl Claims {
    /// `None` when the token is not a JWT (an API key, say).
    fn decode(token: &str, roles_claim: &str, groups_claim: &str) -> Option<Self> {
        let mut parts = token.split('.');
        let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        let claims: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&bytes).ok()?;
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let list = |name: &str| match claims.get(name) {
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect(),
            Some(serde_json::Value::String(one)) => {
                one.split_whitespace().map(str::to_owned).collect()
            }
            _ => Vec::new(),
        };
        Some(Self {
            subject: text("sub"),
            name: text("name"),
            roles: list(roles_claim),
            groups: list(groups_claim),
            expires_at: claims
                .get("exp")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0),
        })
    }

    fn expired(&self) -> bool {
        self.expires_at != 0 && self.expires_at <= jiff::Timestamp::now().as_second()
    }

    fn check_not_expired(&self) -> Result<(), ClientError> {
        if self.expired() {
            return Err(ClientError::Expired { at: self.expires() });
        }
        Ok(())
    }

    fn expires(&self) -> String {
        if self.expires_at == 0 {
            return "never".to_owned();
        }
        output::local_time_of(self.expires_at, 0)
    }

    fn expire_rfc3339(&self) -> Option<String> {
        (self.expires_at != 0)
            .then(|| jiff::Timestamp::from_second(self.expires_at).ok())
            .flatten()
            .map(|at| at.to_string())
    }

    fn remaining(&self) -> String {
        let left = self.expires_at - jiff::Timestamp::now().as_second();
        output::seconds(left)
    }
}
