//! The harness of the gateway tests: real practice servers (incidents, SLA,
//! CMDB) on their own fresh databases behind the real auth guard and policy
//! tables, each on its own port; gateways in front of them over sockets;
//! callers signing HS256 tokens. The incidents server records the headers of
//! every call that reaches it, so a test can tell what the gateway forwarded.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use itsm_auth::jwt::{JwtSettings, JwtVerifier, TokenRequest, mint_hs256};
use itsm_auth::{Authenticator, Guard};
use itsm_gateway::backends::pool::Target;
use itsm_gateway::backends::{BackendSpec, Backends, Settings};
use itsm_gateway::edge::Edge;
use itsm_gateway::edge::ratelimit::RateLimiter;
use itsm_gateway::server::Gateway;
use itsm_platform::config::RateLimit;
use itsm_platform::{Drain, GrpcServer};
use itsm_store::Db;
use itsm_testkit::{TestDb, TestServer, test_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::server::NamedService;
use tonic::transport::{Channel, Endpoint};

const SECRET: &[u8] = b"gateway test secret, 32 bytes long!!";

pub const INCIDENTS: &str = "itsm.incidents.v1.IncidentService";
pub const SLA: &str = "itsm.sla.v1.SlaService";
pub const CMDB: &str = "itsm.cmdb.v1.CmdbService";

fn settings() -> JwtSettings {
    JwtSettings {
        issuer: "itsm".into(),
        audience: "itsm".into(),
        clock_skew: Duration::from_secs(30),
        roles_claim: "roles".into(),
        groups_claim: "groups".into(),
    }
}

fn authenticator() -> Authenticator {
    Authenticator::new(Some(JwtVerifier::hs256(SECRET, settings())), None)
}

/// A token for `subject` with `roles`.
pub fn token(subject: &str, roles: &[&str]) -> String {
    let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
    let request = TokenRequest {
        subject,
        name: subject,
        roles: &roles,
        groups: &[],
        ttl: Duration::from_secs(600),
    };
    mint_hs256(SECRET, &settings(), &request).unwrap()
}

/// `message` with `authorization: Bearer <token>`.
pub fn with_token<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// The headers of the calls that reached the incidents server.
pub type Seen = Arc<Mutex<Vec<http::HeaderMap>>>;

/// A service that notes each request's headers, then serves it.
#[derive(Debug, Clone)]
struct Recorder<S> {
    inner: S,
    seen: Seen,
}

impl<S: NamedService> NamedService for Recorder<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tower::Service<http::Request<B>> for Recorder<S>
where
    S: tower::Service<http::Request<B>, Error = Infallible>,
{
    type Response = S::Response;
    type Error = Infallible;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        self.seen.lock().unwrap().push(request.headers().clone());
        self.inner.call(request)
    }
}

/// The three practice servers, each on its own database and port.
#[derive(Debug)]
pub struct Practices {
    pub incidents: Option<TestServer>,
    /// The incidents database, for more replicas of the incidents server.
    pub incidents_db: Db,
    pub sla: Option<TestServer>,
    pub cmdb: Option<TestServer>,
    pub seen: Seen,
    _dbs: Vec<TestDb>,
}

impl Practices {
    /// Starts incidents, SLA and CMDB on fresh databases of the given kind.
    pub async fn start(postgres: bool) -> Self {
        let guard = Guard::new(Arc::new(authenticator()));
        let mut dbs = Vec::new();
        let mut open = async |migrations| {
            let test_db = if postgres {
                TestDb::postgres().await
            } else {
                TestDb::sqlite().await
            };
            let db = Db::connect(test_db.url()).await.unwrap();
            db.migrate(migrations).await.unwrap();
            dbs.push(test_db);
            db
        };
        let incidents_db = open(itsm_incidents::MIGRATIONS.as_ref()).await;
        let sla_db = open(itsm_sla::MIGRATIONS.as_ref()).await;
        let cmdb_db = open(itsm_cmdb::MIGRATIONS.as_ref()).await;

        let seen = Seen::default();
        let incidents = guard
            .protect(
                itsm_incidents::service(
                    incidents_db.clone(),
                    Arc::new(itsm_incidents::NoDirectory),
                    Arc::new(itsm_incidents::NoCmdb),
                ),
                itsm_incidents::POLICY,
            )
            .unwrap();
        let incidents = Recorder {
            inner: incidents,
            seen: Arc::clone(&seen),
        };
        let sla = guard
            .protect(
                itsm_sla::service(
                    sla_db,
                    itsm_sla::engine::Engine::new(Arc::new(itsm_sla::zones::NoZones)),
                ),
                itsm_sla::POLICY,
            )
            .unwrap();
        let cache: Arc<dyn itsm_events::cache::Cache> =
            Arc::new(itsm_events::cache::MemoryCache::new(1000));
        let cmdb = guard
            .protect(itsm_cmdb::service(cmdb_db, cache), itsm_cmdb::POLICY)
            .unwrap();
        let server = || GrpcServer::new(&test_config());
        Self {
            incidents: Some(
                TestServer::start(server().add_service(incidents))
                    .await
                    .unwrap(),
            ),
            sla: Some(TestServer::start(server().add_service(sla)).await.unwrap()),
            cmdb: Some(TestServer::start(server().add_service(cmdb)).await.unwrap()),
            incidents_db,
            seen,
            _dbs: dbs,
        }
    }

    /// Another replica of the incidents server, on the same database.
    pub async fn incidents_replica(&self) -> TestServer {
        let guard = Guard::new(Arc::new(authenticator()));
        let incidents = guard
            .protect(
                itsm_incidents::service(
                    self.incidents_db.clone(),
                    Arc::new(itsm_incidents::NoDirectory),
                    Arc::new(itsm_incidents::NoCmdb),
                ),
                itsm_incidents::POLICY,
            )
            .unwrap();
        TestServer::start(GrpcServer::new(&test_config()).add_service(incidents))
            .await
            .unwrap()
    }

    /// The backends of a gateway in front of these servers.
    pub fn specs(&self) -> Vec<BackendSpec> {
        let spec = |name: &str, service: &str, server: &Option<TestServer>| BackendSpec {
            name: name.to_owned(),
            services: vec![service.to_owned()],
            target: Target::Static(vec![format!("http://{}", server.as_ref().unwrap().addr())]),
        };
        vec![
            spec("incidents", INCIDENTS, &self.incidents),
            spec("sla", SLA, &self.sla),
            spec("cmdb", CMDB, &self.cmdb),
        ]
    }

    /// Stops the SLA server, as a crashed pod would vanish.
    pub async fn stop_sla(&mut self) {
        let server = self.sla.take().unwrap();
        assert_eq!(server.shutdown().await.unwrap(), Drain::Complete);
    }
}

/// Where rate limit buckets live.
#[derive(Debug, Clone)]
pub enum Buckets {
    InProcess,
    Redis { url: String, prefix: String },
}

/// How a test gateway is set up.
#[derive(Debug, Clone)]
pub struct Options {
    pub max_body: usize,
    pub read: RateLimit,
    pub write: RateLimit,
    pub buckets: Buckets,
    pub breaker_failures: u32,
    pub breaker_cooldown: Duration,
    pub probe_every: Duration,
    pub default_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_body: 4 * 1024 * 1024,
            read: RateLimit {
                per_second: 1000.0,
                burst: 1000,
            },
            write: RateLimit {
                per_second: 1000.0,
                burst: 1000,
            },
            buckets: Buckets::InProcess,
            breaker_failures: 3,
            breaker_cooldown: Duration::from_secs(30),
            probe_every: Duration::from_millis(200),
            default_timeout: Duration::from_secs(30),
        }
    }
}

/// A gateway serving on a background task.
#[derive(Debug)]
pub struct RunningGateway {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<Drain, itsm_gateway::server::GatewayError>>,
}

impl RunningGateway {
    /// A gateway in front of `specs`.
    pub async fn start(specs: Vec<BackendSpec>, options: Options) -> Self {
        let mut config = test_config();
        config.gateway.max_body = options.max_body;
        config.gateway.probe_every = options.probe_every;
        config.shutdown_grace = Duration::from_secs(2);
        let backends = Backends::new(
            specs,
            Settings {
                default_timeout: options.default_timeout,
                breaker_failures: options.breaker_failures,
                breaker_cooldown: options.breaker_cooldown,
                connect_timeout: Duration::from_secs(1),
                connections_per_replica: 2,
                ready_within: options.probe_every * 3,
            },
        )
        .unwrap();
        let limiter = match &options.buckets {
            Buckets::InProcess => RateLimiter::in_process(options.read, options.write),
            Buckets::Redis { url, prefix } => {
                RateLimiter::redis(url, prefix, options.read, options.write).unwrap()
            }
        };
        let edge = Edge::new(Arc::new(authenticator()), limiter);
        let gateway = Gateway::new(&config, backends, edge)
            .with_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
            .bind()
            .await
            .unwrap();
        let addr = gateway.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(gateway.serve(async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// A new HTTP/2 connection to the gateway.
    pub async fn channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .unwrap()
    }

    /// `GET path` over HTTP/1.1: the status code and the body.
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let status: u16 = response[9..12].parse().unwrap();
        let (_, body) = response.split_once("\r\n\r\n").unwrap();
        (
            status,
            serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
        )
    }

    /// Polls `GET path` until `check` holds of it, for at most `within`.
    pub async fn get_until(
        &self,
        path: &str,
        within: Duration,
        check: impl Fn(u16, &serde_json::Value) -> bool,
    ) -> (u16, serde_json::Value) {
        let deadline = Instant::now() + within;
        loop {
            let (status, body) = self.get(path).await;
            if check(status, &body) {
                return (status, body);
            }
            assert!(
                Instant::now() < deadline,
                "GET {path} still {status} {body} after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the gateway as a signal would.
    pub async fn shutdown(mut self) -> Drain {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap().unwrap()
    }
}
