//! The gateway's overhead over calling a practice directly, gRPC: the
//! incidents server (auth on, PostgreSQL) answering GetIncident, called
//! directly and through a gateway (auth and rate limit at the edge, then
//! checked again by the backend), with the rate-limit buckets in-process and
//! in Redis, and the same call over the gateway's REST mapping (`GET
//! /v1/incidents/INC...`, canonical JSON back). Figures side by side: latency
//! at one client (p50, p99) and the rate at 32 clients, each gRPC client on
//! its own HTTP/2 connection, each REST client on its own keep-alive
//! HTTP/1.1 connection.
//!
//! Targets (issue 8): under 0.5 ms added at p50, under 15% of throughput lost
//! at 32 clients; REST within 30% of gRPC through the gateway.
//!
//! The rate depends on what else runs on the machine; the CPU time this
//! process spends per call during the rate run (clients, service and
//! gateway; PostgreSQL's own time not included) depends much less on it, so
//! it is printed too: the gateway's share of it is its cost.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use itsm_auth::jwt::{JwtSettings, JwtVerifier, TokenRequest, mint_hs256};
use itsm_auth::{Authenticator, Guard};
use itsm_gateway::backends::pool::Target;
use itsm_gateway::backends::{BackendSpec, Backends, Settings};
use itsm_gateway::edge::Edge;
use itsm_gateway::edge::ratelimit::RateLimiter;
use itsm_gateway::server::Gateway;
use itsm_platform::config::RateLimit;
use itsm_platform::{Config, GrpcServer, Mode};
use itsm_proto::itsm::incidents::v1::incident_service_client::IncidentServiceClient;
use itsm_proto::itsm::incidents::v1::{CreateIncidentRequest, GetIncidentRequest, Incident};
use itsm_store::{Db, DbOptions};
use tonic::Request;
use tonic::transport::{Channel, Endpoint};

use crate::pg::{BenchDb, percentiles};

#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Args {
    /// Calls timed one after another for the latency figures
    #[arg(long, default_value_t = 3000)]
    pub calls: usize,
    /// Concurrent clients for the throughput figures
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Seconds each throughput run lasts
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            calls: 3000,
            clients: 32,
            seconds: 5,
        }
    }
}

const SECRET: &str = "bench secret, at least 32 bytes long";

fn settings() -> JwtSettings {
    JwtSettings {
        issuer: "itsm".into(),
        audience: "itsm".into(),
        clock_skew: Duration::from_secs(60),
        roles_claim: "roles".into(),
        groups_claim: "groups".into(),
    }
}

fn authenticator() -> Arc<Authenticator> {
    Arc::new(Authenticator::new(
        Some(JwtVerifier::hs256(SECRET.as_bytes(), settings())),
        None,
    ))
}

fn authorized<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

pub async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let bench = BenchDb::create().await?;
    let result = run_on(&bench, args).await;
    bench.drop_now().await?;
    result
}

async fn run_on(bench: &BenchDb, args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let db = Db::connect_with(
        &bench.url,
        DbOptions {
            max_connections: 40,
            ..DbOptions::default()
        },
    )
    .await?;
    db.migrate(itsm_incidents::MIGRATIONS.as_ref()).await?;
    let config = Config {
        grpc_addr: ([127, 0, 0, 1], 0).into(),
        ..Config::defaults(Mode::Serve)
    };
    let service = itsm_incidents::service(
        db.clone(),
        Arc::new(itsm_incidents::NoDirectory),
        Arc::new(itsm_incidents::NoCmdb),
    );
    let server = GrpcServer::new(&config)
        .add_service(Guard::new(authenticator()).protect(service, itsm_incidents::POLICY)?)
        .bind()
        .await?;
    let direct = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));

    // Limits far above what the run reaches: the buckets are consulted on
    // every call, never empty.
    let unlimited = RateLimit {
        per_second: 1e9,
        burst: u32::MAX,
    };
    let redis_url = std::env::var("ITSM_BENCH_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let prefix = format!("itsm-bench-{}:", uuid::Uuid::new_v4().simple());
    let in_process = start_gateway(
        &config,
        direct,
        RateLimiter::in_process(unlimited, unlimited),
    )
    .await?;
    let shared = start_gateway(
        &config,
        direct,
        RateLimiter::redis(&redis_url, &prefix, unlimited, unlimited)?,
    )
    .await?;

    let roles = vec!["agent".to_owned()];
    let token = mint_hs256(
        SECRET.as_bytes(),
        &settings(),
        &TokenRequest {
            subject: "bench",
            name: "Bench",
            roles: &roles,
            groups: &[],
            ttl: Duration::from_secs(3600),
        },
    )?;
    let name = IncidentServiceClient::new(connect(direct).await?)
        .create_incident(authorized(
            CreateIncidentRequest {
                incident: Some(Incident {
                    title: "gateway bench".to_owned(),
                    impact: 2,
                    urgency: 2,
                    caller: "bench".to_owned(),
                    ..Incident::default()
                }),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            &token,
        ))
        .await?
        .into_inner()
        .name;

    println!(
        "== gateway: GetIncident over gRPC and REST, auth on (latency: {} calls at 1 client; rate: {} clients, {} s)",
        args.calls, args.clients, args.seconds
    );
    println!(
        "  {:<28} {:>10} {:>10} {:>12} {:>12}",
        "", "p50 ms", "p99 ms", "calls/s", "CPU us/call"
    );
    let mut baseline: Option<(f64, f64)> = None;
    let mut grpc_through_gateway: Option<(f64, f64)> = None;
    for (label, addr, via) in [
        ("direct", direct, Via::Grpc),
        ("gateway, in-process buckets", in_process.0, Via::Grpc),
        ("gateway, Redis buckets", shared.0, Via::Grpc),
        ("REST, in-process buckets", in_process.0, Via::Rest),
    ] {
        let (p50, p99) = latency(via, addr, &token, &name, args.calls)
            .await
            .map_err(|e| e as Box<dyn std::error::Error>)?;
        let (rate, cpu) = throughput(
            via,
            addr,
            &token,
            &name,
            args.clients,
            Duration::from_secs(args.seconds),
        )
        .await
        .map_err(|e| e as Box<dyn std::error::Error>)?;
        let against = match (via, baseline, grpc_through_gateway) {
            (Via::Grpc, None, _) => {
                baseline = Some((p50, rate));
                String::new()
            }
            (Via::Grpc, Some((base_p50, base_rate)), _) => {
                grpc_through_gateway.get_or_insert((p50, rate));
                format!(
                    "  p50 {:+.3} ms, rate {:+.1}% (vs direct)",
                    p50 - base_p50,
                    (rate / base_rate - 1.0) * 100.0
                )
            }
            (Via::Rest, _, Some((grpc_p50, grpc_rate))) => format!(
                "  p50 {:+.3} ms, rate {:+.1}% (vs gRPC through the gateway)",
                p50 - grpc_p50,
                (rate / grpc_rate - 1.0) * 100.0
            ),
            (Via::Rest, _, None) => String::new(),
        };
        let cpu = cpu.map_or_else(|| "-".to_owned(), |us| format!("{us:.0}"));
        println!("  {label:<28} {p50:>10.3} {p99:>10.3} {rate:>12.0} {cpu:>12}{against}");
    }
    println!(
        "  (targets: p50 overhead < 0.5 ms; rate at 32 clients within 15% of direct; REST within 30% of gRPC)"
    );

    let _ = in_process.1.send(());
    let _ = shared.1.send(());
    let _ = stop.send(());
    let _ = serving.await;
    db.close().await;
    Ok(())
}

type Stop = tokio::sync::oneshot::Sender<()>;

async fn start_gateway(
    config: &Config,
    backend: SocketAddr,
    limiter: RateLimiter,
) -> Result<(SocketAddr, Stop), Box<dyn std::error::Error>> {
    let backends = Backends::new(
        vec![BackendSpec {
            name: "incidents".to_owned(),
            services: vec!["itsm.incidents.v1.IncidentService".to_owned()],
            target: Target::Static(vec![format!("http://{backend}")]),
        }],
        Settings {
            // ITSM_BENCH_GATEWAY_CONNECTIONS: HTTP/2 connections per
            // replica, to compare with the configured default.
            connections_per_replica: std::env::var("ITSM_BENCH_GATEWAY_CONNECTIONS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(Settings::from_config(config).connections_per_replica),
            ..Settings::from_config(config)
        },
    )?;
    let edge = Edge::new(authenticator(), limiter);
    let gateway = Gateway::new(config, backends, edge).with_addr(([127, 0, 0, 1], 0).into());
    let rest = itsm_gateway::rest::router(gateway.state())?;
    let gateway = gateway.with_http(rest).bind().await?;
    let addr = gateway.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(gateway.serve(async {
        let _ = stopped.await;
    }));
    Ok((addr, stop))
}

async fn connect(addr: SocketAddr) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_shared(format!("http://{addr}"))?
        .tcp_nodelay(true)
        .connect()
        .await
}

fn get(name: &str, token: &str) -> Request<GetIncidentRequest> {
    authorized(
        GetIncidentRequest {
            name: name.to_owned(),
        },
        token,
    )
}

/// How the bench calls GetIncident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// gRPC, each client on its own HTTP/2 connection.
    Grpc,
    /// The gateway's REST mapping, each client on its own HTTP/1.1 connection.
    Rest,
}

type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// One client calling GetIncident on `name` again and again.
enum Caller {
    Grpc(IncidentServiceClient<Channel>),
    Rest(reqwest::Client, String),
}

impl Caller {
    async fn connect(via: Via, addr: SocketAddr, name: &str) -> Result<Self, BenchError> {
        Ok(match via {
            Via::Grpc => Self::Grpc(IncidentServiceClient::new(connect(addr).await?)),
            Via::Rest => Self::Rest(
                {
                    // reqwest is built without a default TLS provider
                    // (plain HTTP here, but the builder insists).
                    let _ = rustls::crypto::ring::default_provider().install_default();
                    reqwest::Client::builder()
                }
                .http1_only()
                .tcp_nodelay(true)
                .pool_max_idle_per_host(1)
                .build()?,
                format!("http://{addr}/v1/{name}"),
            ),
        })
    }

    async fn get(&mut self, name: &str, token: &str) -> Result<(), BenchError> {
        match self {
            Self::Grpc(client) => {
                client.get_incident(get(name, token)).await?;
            }
            Self::Rest(client, url) => {
                let reply = client.get(url.as_str()).bearer_auth(token).send().await?;
                if !reply.status().is_success() {
                    return Err(format!("GET {url}: {}", reply.status()).into());
                }
                // The whole JSON body, as a REST client reads it.
                reply.bytes().await?;
            }
        }
        Ok(())
    }
}

/// p50 and p99 in milliseconds of `calls` calls one after another (after a warm-up).
async fn latency(
    via: Via,
    addr: SocketAddr,
    token: &str,
    name: &str,
    calls: usize,
) -> Result<(f64, f64), BenchError> {
    let mut caller = Caller::connect(via, addr, name).await?;
    for _ in 0..200 {
        caller.get(name, token).await?;
    }
    let mut micros = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        caller.get(name, token).await?;
        micros.push(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
    }
    let (p50, p99, _) = percentiles(micros);
    Ok((p50, p99))
}

/// Calls per second of `clients` clients calling as fast as they can for
/// `length`, and this process's CPU time per call meanwhile (microseconds;
/// none where the kernel does not say).
async fn throughput(
    via: Via,
    addr: SocketAddr,
    token: &str,
    name: &str,
    clients: usize,
    length: Duration,
) -> Result<(f64, Option<f64>), BenchError> {
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let cpu_before = process_cpu();
    let started = Instant::now();
    for _ in 0..clients {
        let mut caller = Caller::connect(via, addr, name).await?;
        let (token, name, done) = (token.to_owned(), name.to_owned(), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            while started.elapsed() < length {
                if caller.get(&name, &token).await.is_ok() {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    let calls = done.load(Ordering::Relaxed) as f64;
    let rate = calls / started.elapsed().as_secs_f64();
    let cpu = match (cpu_before, process_cpu()) {
        (Some(before), Some(after)) if calls > 0.0 => {
            Some((after - before).as_secs_f64() * 1e6 / calls)
        }
        _ => None,
    };
    Ok((rate, cpu))
}

/// User and system CPU time of this process so far (Linux: /proc/self/stat,
/// in clock ticks of 10 ms).
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}
