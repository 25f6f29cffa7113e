//! Typed, layered configuration: built-in defaults, then an optional TOML
//! file, then `ITSM_*` environment variables, the later winning.
//!
//! Every setting has one key. In the file it is written as is (`grpc_addr`),
//! in the environment upper-cased behind `ITSM_` (`ITSM_GRPC_ADDR`). A bad
//! value stops start-up with one line that names the variable (or the file
//! and key) and what was expected; secrets are never echoed back.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// The environment variable naming a config file, when `--config` is not given.
pub const CONFIG_FILE_VAR: &str = "ITSM_CONFIG";

/// How the process runs; decides the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `itsm dev`: everything in one process on a laptop, human logs, loopback only.
    Dev,
    /// `itsm serve`: one practice in a container, JSON logs, all interfaces.
    Serve,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    Text,
    /// One JSON object per line, for a log pipeline.
    Json,
}

/// A value that must never reach a log: `Debug` and `Display` print a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it (a connection).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The settings every service process needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the gRPC server listens (`grpc_addr`).
    pub grpc_addr: SocketAddr,
    /// Tracing filter, e.g. `info` or `info,itsm_incidents=debug` (`log`).
    pub log: String,
    pub log_format: LogFormat,
    /// Longest a single call may run before it is cancelled with DEADLINE_EXCEEDED.
    pub request_timeout: Duration,
    /// After SIGTERM, how long health reports NOT_SERVING while calls are still
    /// accepted, so load balancers stop routing here first (`shutdown_delay`).
    pub shutdown_delay: Duration,
    /// How long in-flight calls get to finish once new ones are refused (`shutdown_grace`).
    pub shutdown_grace: Duration,
    /// Where Prometheus scrapes `GET /metrics` (`metrics_addr`); `None` when
    /// set to `off`. Its own port: no token needed, and not exposed outside.
    pub metrics_addr: Option<SocketAddr>,
    /// How often gauges read from the database (open incidents, pending SLA
    /// timers, pool usage...) are sampled (`metrics_sample_every`).
    pub metrics_sample_every: Duration,
    /// PostgreSQL or SQLite URL; unset means the embedded default.
    pub database_url: Option<Secret>,
    /// Run the service's migrations when it starts (`migrate_on_start`); turn
    /// off where a Kubernetes Job runs `itsm migrate` before the rollout.
    pub migrate_on_start: bool,
    /// Redis URL; unset means in-process queues and cache.
    pub redis_url: Option<Secret>,
    /// Put in front of every stream and cache key in Redis (`redis_prefix`),
    /// so several deployments (or tests) can share one Redis.
    pub redis_prefix: String,
    /// Where `itsm dev` keeps its data.
    pub data_dir: Option<PathBuf>,
    /// Bearer tokens must name this issuer (`auth_issuer`).
    pub auth_issuer: String,
    /// ... and include this audience (`auth_audience`).
    pub auth_audience: String,
    /// JWKS file path or http(s) URL with the identity provider's keys (`auth_jwks`).
    pub auth_jwks: Option<String>,
    /// HS256 secret for development tokens (`auth_hs256_secret`); at least 32 characters.
    pub auth_hs256_secret: Option<Secret>,
    /// Tolerated clock difference for exp/nbf (`auth_clock_skew`).
    pub auth_clock_skew: Duration,
    /// The claim holding role names (`auth_roles_claim`).
    pub auth_roles_claim: String,
    /// The claim holding group names (`auth_groups_claim`).
    pub auth_groups_claim: String,
    /// The identity service, which verifies API keys (`identity_addr`, e.g. http://identity:50051).
    pub identity_addr: Option<String>,
    /// The CMDB service, asked for CIs' support groups (`cmdb_addr`, e.g. http://cmdb:50051).
    pub cmdb_addr: Option<String>,
    /// This service's own API key, for calls it makes on nobody's behalf
    /// (checking group membership, timers) (`service_api_key`).
    pub service_api_key: Option<Secret>,
    /// The API gateway's settings (`gateway_*` keys).
    pub gateway: GatewayConfig,
}

/// The API gateway's settings (`itsm serve gateway`, and the gateway of `itsm dev`).
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayConfig {
    /// Where the gateway listens for gRPC and HTTP/JSON on one port (`gateway_addr`).
    pub addr: SocketAddr,
    /// The backends, by practice name (`gateway_backends`: comma-separated
    /// `name=target`; a target is `http://host:port` (several joined by `|`)
    /// or `dns://name:port`, a Kubernetes headless service re-resolved
    /// periodically). Empty in `itsm dev`, which uses its own server.
    pub backends: Vec<GatewayBackend>,
    /// Token bucket for reading methods, per principal (`gateway_rate_read`, `RATE:BURST`).
    pub rate_read: RateLimit,
    /// Token bucket for every other method, per principal (`gateway_rate_write`).
    pub rate_write: RateLimit,
    /// Prefix of the rate-limit keys in Redis, shared by every replica (`gateway_rate_prefix`).
    pub rate_prefix: String,
    /// Largest request body accepted, in bytes (`gateway_max_body`, e.g. 4MiB).
    pub max_body: usize,
    /// Consecutive failures (unreachable, timed out, UNAVAILABLE) that open
    /// a backend's circuit (`gateway_breaker_failures`).
    pub breaker_failures: u32,
    /// How long an open circuit refuses calls before one probe is let through
    /// (`gateway_breaker_cooldown`).
    pub breaker_cooldown: Duration,
    /// How often each backend's health is checked and DNS targets re-resolved
    /// (`gateway_probe_every`).
    pub probe_every: Duration,
}

/// One backend of the gateway: a practice name and where it is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayBackend {
    /// The practice name (`incidents`), or a full gRPC service name.
    pub name: String,
    /// `http://host:port` (several joined by `|`) or `dns://name:port`.
    pub target: String,
}

/// A token bucket: a steady rate and the burst allowed above it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Tokens added per second.
    pub per_second: f64,
    /// Bucket size: calls allowed at once after a quiet spell.
    pub burst: u32,
}

impl Config {
    /// The built-in defaults of a mode.
    pub fn defaults(mode: Mode) -> Self {
        let (host, log_format) = match mode {
            Mode::Dev => ([127, 0, 0, 1], LogFormat::Text),
            Mode::Serve => ([0, 0, 0, 0], LogFormat::Json),
        };
        Self {
            grpc_addr: SocketAddr::from((host, 50051)),
            log: "info".to_owned(),
            log_format,
            request_timeout: Duration::from_secs(30),
            shutdown_delay: Duration::ZERO,
            shutdown_grace: Duration::from_secs(25),
            metrics_addr: Some(SocketAddr::from((host, 9464))),
            metrics_sample_every: Duration::from_secs(15),
            database_url: None,
            migrate_on_start: true,
            redis_url: None,
            redis_prefix: "itsm:".to_owned(),
            data_dir: None,
            auth_issuer: "itsm".to_owned(),
            auth_audience: "itsm".to_owned(),
            auth_jwks: None,
            auth_hs256_secret: None,
            auth_clock_skew: Duration::from_secs(60),
            auth_roles_claim: "roles".to_owned(),
            auth_groups_claim: "groups".to_owned(),
            identity_addr: None,
            cmdb_addr: None,
            service_api_key: None,
            gateway: GatewayConfig {
                addr: SocketAddr::from((host, 8080)),
                backends: Vec::new(),
                rate_read: RateLimit {
                    per_second: 100.0,
                    burst: 200,
                },
                rate_write: RateLimit {
                    per_second: 20.0,
                    burst: 40,
                },
                rate_prefix: "itsm:gateway:rate:".to_owned(),
                max_body: 4 * 1024 * 1024,
                breaker_failures: 5,
                breaker_cooldown: Duration::from_secs(10),
                probe_every: Duration::from_secs(5),
            },
        }
    }

    /// Loads the configuration of a mode from the process environment and the
    /// config file named by `file`, else by `ITSM_CONFIG`.
    pub fn load(mode: Mode, file: Option<&Path>) -> Result<Self, ConfigError> {
        let sources = Sources::from_process(file)?;
        Self::from_sources(mode, &sources)
    }

    /// Builds the configuration from explicit sources (what `load` does after
    /// reading the environment and the file; tests call it directly).
    pub fn from_sources(mode: Mode, sources: &Sources) -> Result<Self, ConfigError> {
        let d = Self::defaults(mode);
        let config = Self {
            grpc_addr: sources
                .get(
                    "grpc_addr",
                    "a socket address such as 0.0.0.0:50051",
                    parse_from_str,
                )?
                .unwrap_or(d.grpc_addr),
            log: sources
                .get(
                    "log",
                    "a tracing filter such as info or info,itsm_incidents=debug",
                    parse_log_filter,
                )?
                .unwrap_or(d.log),
            log_format: sources
                .get("log_format", "text or json", parse_log_format)?
                .unwrap_or(d.log_format),
            request_timeout: sources
                .get(
                    "request_timeout",
                    "a positive duration such as 30s or 2m",
                    parse_positive_duration,
                )?
                .unwrap_or(d.request_timeout),
            shutdown_delay: sources
                .get(
                    "shutdown_delay",
                    "a duration such as 0s or 5s",
                    parse_duration,
                )?
                .unwrap_or(d.shutdown_delay),
            shutdown_grace: sources
                .get(
                    "shutdown_grace",
                    "a positive duration such as 25s",
                    parse_positive_duration,
                )?
                .unwrap_or(d.shutdown_grace),
            metrics_addr: sources
                .get(
                    "metrics_addr",
                    "a socket address such as 0.0.0.0:9464, or off",
                    parse_metrics_addr,
                )?
                .unwrap_or(d.metrics_addr),
            metrics_sample_every: sources
                .get(
                    "metrics_sample_every",
                    "a positive duration such as 15s",
                    parse_positive_duration,
                )?
                .unwrap_or(d.metrics_sample_every),
            database_url: sources
                .get_secret(
                    "database_url",
                    "a postgres://, postgresql:// or sqlite: URL",
                    parse_database_url,
                )?
                .or(d.database_url),
            migrate_on_start: sources
                .get("migrate_on_start", "true or false", parse_bool)?
                .unwrap_or(d.migrate_on_start),
            redis_url: sources
                .get_secret("redis_url", "a redis:// or rediss:// URL", parse_redis_url)?
                .or(d.redis_url),
            redis_prefix: sources
                .get(
                    "redis_prefix",
                    "a Redis key prefix such as itsm:",
                    parse_nonempty,
                )?
                .unwrap_or(d.redis_prefix),
            data_dir: sources
                .get("data_dir", "a directory path", parse_path)?
                .or(d.data_dir),
            auth_issuer: sources
                .get("auth_issuer", "the issuer tokens must name", parse_nonempty)?
                .unwrap_or(d.auth_issuer),
            auth_audience: sources
                .get(
                    "auth_audience",
                    "the audience tokens must include",
                    parse_nonempty,
                )?
                .unwrap_or(d.auth_audience),
            auth_jwks: sources
                .get(
                    "auth_jwks",
                    "a JWKS file path or an http(s):// URL",
                    parse_nonempty,
                )?
                .or(d.auth_jwks),
            auth_hs256_secret: sources
                .get_secret(
                    "auth_hs256_secret",
                    "a secret of at least 32 characters",
                    |raw| (raw.len() >= 32).then(|| Secret::new(raw)),
                )?
                .or(d.auth_hs256_secret),
            auth_clock_skew: sources
                .get("auth_clock_skew", "a duration such as 60s", parse_duration)?
                .unwrap_or(d.auth_clock_skew),
            auth_roles_claim: sources
                .get(
                    "auth_roles_claim",
                    "a claim name such as roles",
                    parse_nonempty,
                )?
                .unwrap_or(d.auth_roles_claim),
            auth_groups_claim: sources
                .get(
                    "auth_groups_claim",
                    "a claim name such as groups",
                    parse_nonempty,
                )?
                .unwrap_or(d.auth_groups_claim),
            identity_addr: sources
                .get(
                    "identity_addr",
                    "an http:// or https:// address such as http://identity:50051",
                    |raw| {
                        (raw.starts_with("http://") || raw.starts_with("https://"))
                            .then(|| raw.to_owned())
                    },
                )?
                .or(d.identity_addr),
            cmdb_addr: sources
                .get(
                    "cmdb_addr",
                    "an http:// or https:// address such as http://cmdb:50051",
                    |raw| {
                        (raw.starts_with("http://") || raw.starts_with("https://"))
                            .then(|| raw.to_owned())
                    },
                )?
                .or(d.cmdb_addr),
            service_api_key: sources
                .get_secret(
                    "service_api_key",
                    "an API key such as itsm_<id>_<secret>",
                    |raw| raw.starts_with("itsm_").then(|| Secret::new(raw)),
                )?
                .or(d.service_api_key),
            gateway: GatewayConfig::from_sources(sources, d.gateway)?,
        };
        sources.reject_unknown_file_keys(KNOWN_KEYS)?;
        Ok(config)
    }
}

/// Every key [`Config`] reads; a file key outside this list is a typo and refused.
const KNOWN_KEYS: &[&str] = &[
    "grpc_addr",
    "log",
    "log_format",
    "request_timeout",
    "shutdown_delay",
    "shutdown_grace",
    "metrics_addr",
    "metrics_sample_every",
    "database_url",
    "migrate_on_start",
    "redis_url",
    "redis_prefix",
    "data_dir",
    "auth_issuer",
    "auth_audience",
    "auth_jwks",
    "auth_hs256_secret",
    "auth_clock_skew",
    "auth_roles_claim",
    "auth_groups_claim",
    "identity_addr",
    "cmdb_addr",
    "service_api_key",
    "gateway_addr",
    "gateway_backends",
    "gateway_rate_read",
    "gateway_rate_write",
    "gateway_rate_prefix",
    "gateway_max_body",
    "gateway_breaker_failures",
    "gateway_breaker_cooldown",
    "gateway_probe_every",
];

impl GatewayConfig {
    fn from_sources(sources: &Sources, d: Self) -> Result<Self, ConfigError> {
        Ok(Self {
            addr: sources
                .get(
                    "gateway_addr",
                    "a socket address such as 0.0.0.0:8080",
                    parse_from_str,
                )?
                .unwrap_or(d.addr),
            backends: sources
                .get(
                    "gateway_backends",
                    "comma-separated name=target pairs such as incidents=http://incidents:50051,cmdb=dns://cmdb-headless:50051",
                    parse_gateway_backends,
                )?
                .unwrap_or(d.backends),
            rate_read: sources
                .get(
                    "gateway_rate_read",
                    "RATE:BURST, calls per second and burst, such as 100:200",
                    parse_rate_limit,
                )?
                .unwrap_or(d.rate_read),
            rate_write: sources
                .get(
                    "gateway_rate_write",
                    "RATE:BURST, calls per second and burst, such as 20:40",
                    parse_rate_limit,
                )?
                .unwrap_or(d.rate_write),
            rate_prefix: sources
                .get(
                    "gateway_rate_prefix",
                    "a Redis key prefix such as itsm:gateway:rate:",
                    parse_nonempty,
                )?
                .unwrap_or(d.rate_prefix),
            max_body: sources
                .get(
                    "gateway_max_body",
                    "a positive size such as 4MiB, 512KiB or 1048576",
                    parse_size,
                )?
                .unwrap_or(d.max_body),
            breaker_failures: sources
                .get(
                    "gateway_breaker_failures",
                    "a positive count such as 5",
                    |raw| raw.parse::<u32>().ok().filter(|n| *n > 0),
                )?
                .unwrap_or(d.breaker_failures),
            breaker_cooldown: sources
                .get(
                    "gateway_breaker_cooldown",
                    "a positive duration such as 10s",
                    parse_positive_duration,
                )?
                .unwrap_or(d.breaker_cooldown),
            probe_every: sources
                .get(
                    "gateway_probe_every",
                    "a positive duration such as 5s",
                    parse_positive_duration,
                )?
                .unwrap_or(d.probe_every),
        })
    }
}

/// `incidents=http://a:50051|http://b:50051,cmdb=dns://cmdb-headless:50051`.
fn parse_gateway_backends(raw: &str) -> Option<Vec<GatewayBackend>> {
    let mut backends: Vec<GatewayBackend> = Vec::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, target) = pair.split_once('=')?;
        let (name, target) = (name.trim(), target.trim());
        let valid_target = target.split('|').all(|t| {
            let t = t.trim();
            let rest = t
                .strip_prefix("http://")
                .or_else(|| t.strip_prefix("https://"))
                .or_else(|| t.strip_prefix("dns://").filter(|_| !target.contains('|')));
            rest.is_some_and(|r| {
                r.rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
            })
        });
        if name.is_empty() || !valid_target || backends.iter().any(|b| b.name == name) {
            return None;
        }
        backends.push(GatewayBackend {
            name: name.to_owned(),
            target: target.to_owned(),
        });
    }
    Some(backends)
}

/// `100:200` (rate per second, burst), or `100` (burst equal to the rate).
fn parse_rate_limit(raw: &str) -> Option<RateLimit> {
    let (rate, burst) = match raw.split_once(':') {
        Some((rate, burst)) => (rate.trim(), Some(burst.trim())),
        None => (raw, None),
    };
    let per_second: f64 = rate
        .parse()
        .ok()
        .filter(|r: &f64| r.is_finite() && *r > 0.0)?;
    let burst = match burst {
        Some(b) => b.parse::<u32>().ok().filter(|b| *b > 0)?,
        None => per_second.ceil().max(1.0) as u32,
    };
    Some(RateLimit { per_second, burst })
}

/// `4MiB`, `512KiB`, `1MB`, `1048576`.
fn parse_size(raw: &str) -> Option<usize> {
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (digits, unit) = raw.split_at(split);
    let n: usize = digits.parse().ok()?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" | "kb" => 1024,
        "mib" | "m" | "mb" => 1024 * 1024,
        "gib" | "g" | "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(factor).filter(|n| *n > 0)
}

/// Why the configuration was refused. Its `Display` is the one line printed before exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{origin}: expected {expected}, got {got}")]
    Invalid {
        /// `ITSM_GRPC_ADDR` or `grpc_addr in /etc/itsm.toml`.
        origin: String,
        expected: &'static str,
        /// The value quoted, or `[redacted]` for secrets.
        got: String,
    },
    #[error("config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("config file {path}: unknown key {key:?} (known keys: {known})")]
    UnknownKey {
        path: PathBuf,
        key: String,
        known: String,
    },
}

/// Where settings come from: a parsed config file and the environment.
#[derive(Debug, Default)]
pub struct Sources {
    file: Option<(PathBuf, toml::Table)>,
    env: HashMap<String, String>,
}

impl Sources {
    /// Reads the process environment (only `ITSM_*` variables) and the config file.
    pub fn from_process(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars()
            .filter(|(key, _)| key.starts_with("ITSM_"))
            .collect();
        let path = file
            .map(Path::to_path_buf)
            .or_else(|| env.get(CONFIG_FILE_VAR).map(PathBuf::from));
        let mut sources = Self::default().with_env(env);
        if let Some(path) = path {
            let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::File {
                path: path.clone(),
                reason: format!("cannot be read: {e}"),
            })?;
            sources = sources.with_file_text(path, &text)?;
        }
        Ok(sources)
    }

    /// Uses these variables as the environment.
    pub fn with_env(mut self, env: HashMap<String, String>) -> Self {
        self.env = env;
        self
    }

    /// Uses this TOML text as the config file found at `path`.
    pub fn with_file_text(mut self, path: PathBuf, text: &str) -> Result<Self, ConfigError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::File {
                path: path.clone(),
                reason: e.message().to_owned(),
            })?;
        self.file = Some((path, table));
        Ok(self)
    }

    /// The value of `key`, from the environment first, then the file; `None`
    /// when neither sets it. Services read their own keys through this too.
    pub fn get<T>(
        &self,
        key: &str,
        expected: &'static str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, ConfigError> {
        self.lookup(key, expected, parse, false)
    }

    /// Like [`Sources::get`] for a secret: a bad value is not echoed.
    pub fn get_secret(
        &self,
        key: &str,
        expected: &'static str,
        parse: impl Fn(&str) -> Option<Secret>,
    ) -> Result<Option<Secret>, ConfigError> {
        self.lookup(key, expected, parse, true)
    }

    fn lookup<T>(
        &self,
        key: &str,
        expected: &'static str,
        parse: impl Fn(&str) -> Option<T>,
        secret: bool,
    ) -> Result<Option<T>, ConfigError> {
        let var = format!("ITSM_{}", key.to_ascii_uppercase());
        let (origin, raw) = if let Some(value) = self.env.get(&var) {
            (var, value.clone())
        } else if let Some((path, value)) = self
            .file
            .as_ref()
            .and_then(|(path, table)| table.get(key).map(|value| (path, value)))
        {
            let raw = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Datetime(d) => d.to_string(),
                // Never a valid setting; the parser refuses it with the key named.
                toml::Value::Array(_) | toml::Value::Table(_) => String::from("[a list or table]"),
            };
            (format!("{key} in {}", path.display()), raw)
        } else {
            return Ok(None);
        };
        match parse(raw.trim()) {
            Some(value) => Ok(Some(value)),
            None => Err(ConfigError::Invalid {
                origin,
                expected,
                got: if secret {
                    "[redacted]".to_owned()
                } else {
                    format!("{raw:?}")
                },
            }),
        }
    }

    /// Refuses file keys no one reads: a typo must not be silently ignored.
    pub fn reject_unknown_file_keys(&self, known: &[&str]) -> Result<(), ConfigError> {
        let Some((path, table)) = &self.file else {
            return Ok(());
        };
        match table.keys().find(|key| !known.contains(&key.as_str())) {
            None => Ok(()),
            Some(key) => Err(ConfigError::UnknownKey {
                path: path.clone(),
                key: key.clone(),
                known: known.join(", "),
            }),
        }
    }
}

/// Parses with `FromStr`.
pub fn parse_from_str<T: FromStr>(raw: &str) -> Option<T> {
    raw.parse().ok()
}

/// Parses a duration such as `30s`, `1m 30s` or `250ms`.
pub fn parse_duration(raw: &str) -> Option<Duration> {
    humantime::parse_duration(raw).ok()
}

fn parse_positive_duration(raw: &str) -> Option<Duration> {
    parse_duration(raw).filter(|d| !d.is_zero())
}

/// A socket address, or `off` (only that word: a typo must be an error,
/// not metrics silently turned off).
fn parse_metrics_addr(raw: &str) -> Option<Option<SocketAddr>> {
    if raw.eq_ignore_ascii_case("off") {
        return Some(None);
    }
    raw.parse().ok().map(Some)
}

fn parse_log_format(raw: &str) -> Option<LogFormat> {
    match raw.to_ascii_lowercase().as_str() {
        "text" => Some(LogFormat::Text),
        "json" => Some(LogFormat::Json),
        _ => None,
    }
}

fn parse_log_filter(raw: &str) -> Option<String> {
    tracing_subscriber::EnvFilter::try_new(raw)
        .ok()
        .map(|_| raw.to_owned())
}

fn parse_nonempty(raw: &str) -> Option<String> {
    (!raw.is_empty()).then(|| raw.to_owned())
}

fn parse_bool(raw: &str) -> Option<bool> {
    match raw.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

fn parse_database_url(raw: &str) -> Option<Secret> {
    let known = ["postgres://", "postgresql://", "sqlite:"];
    known
        .iter()
        .any(|scheme| raw.starts_with(scheme))
        .then(|| Secret::new(raw))
}

fn parse_redis_url(raw: &str) -> Option<Secret> {
    (raw.starts_with("redis://") || raw.starts_with("rediss://")).then(|| Secret::new(raw))
}

fn parse_path(raw: &str) -> Option<PathBuf> {
    (!raw.is_empty()).then(|| PathBuf::from(raw))
}

#[cfg(test)]
mod tests;
