//! The incident practice through its real gRPC server, with authentication
//! and the policy table on, over PostgreSQL:
//! - create (row + audit + outbox) against pgbench running the same SQL;
//! - get by number: p99 at 8 clients, and the rate at 32 clients against
//!   pgbench's primary-key SELECT;
//! - a list page of 50 with a filter, from 1,000,000 incidents;
//! - alert intake with de-duplication.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use itsm_auth::jwt::{JwtSettings, JwtVerifier, TokenRequest, mint_hs256};
use itsm_auth::{Authenticator, Guard};
use itsm_platform::{Config, GrpcServer, Mode};
use itsm_proto::itsm::common::v1::{Impact, Urgency};
use itsm_proto::itsm::incidents::v1::incident_service_client::IncidentServiceClient;
use itsm_proto::itsm::incidents::v1::{
    Alert, AlertSeverity, AlertStatus, CreateIncidentRequest, GetIncidentRequest, Incident,
    IngestAlertsRequest, ListIncidentsRequest,
};
use itsm_store::{Db, DbOptions};
use tonic::Request;
use tonic::transport::{Channel, Endpoint};

use crate::pg::{BenchDb, percentiles, pgbench};

#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Args {
    /// Concurrent clients for create (ours and pgbench's)
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Seconds each timed run lasts
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Incidents in the table the list benchmark pages through
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: i64,
    /// Measure only this part (get also creates the incidents it reads,
    /// for at most 2 s, without pgbench): for profiling one path
    #[arg(long, value_enum)]
    pub only: Option<Part>,
}

/// A part of the incidents benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    Create,
    Get,
    List,
    Alerts,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            clients: 8,
            seconds: 10,
            rows: 1_000_000,
            only: None,
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

fn token() -> Result<String, Box<dyn std::error::Error>> {
    let roles = vec!["admin".to_owned(), "service".to_owned()];
    let request = TokenRequest {
        subject: "bench",
        name: "Bench",
        roles: &roles,
        groups: &[],
        ttl: Duration::from_secs(3600),
    };
    Ok(mint_hs256(SECRET.as_bytes(), &settings(), &request)?)
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
    let authn = Authenticator::new(
        Some(JwtVerifier::hs256(SECRET.as_bytes(), settings())),
        None,
    );
    let guard = Guard::new(Arc::new(authn));
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
        .add_service(guard.protect(service, itsm_incidents::POLICY)?)
        .bind()
        .await?;
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));
    let token = token()?;
    // One HTTP/2 connection per client, as separate callers would have.
    let mut channels = Vec::new();
    for _ in 0..32 {
        channels.push(
            Endpoint::from_shared(format!("http://{addr}"))?
                .connect()
                .await?,
        );
    }

    let runs = |part: Part| args.only.is_none_or(|only| only == part);
    let length = Duration::from_secs(args.seconds);
    let mut numbers = Vec::new();
    if runs(Part::Create) {
        println!(
            "== incidents: create through gRPC (auth on), {} clients, {} s",
            args.clients, args.seconds
        );
        let (ours, created) = create_rate(&channels[..args.clients], &token, length).await?;
        numbers = created;
        let reference = pgbench(bench, args.clients, args.seconds, &create_script())?;
        println!("  itsm          {ours:>10.0} creates/s");
        println!("  pgbench       {reference:>10.0} tx/s   (the same SQL)");
        println!(
            "  ratio         {:>10.0} %      (target: at least 60 %)",
            100.0 * ours / reference
        );
    } else if runs(Part::Get) {
        let filling = length.min(Duration::from_secs(2));
        numbers = create_rate(&channels[..args.clients], &token, filling)
            .await?
            .1;
    }

    if runs(Part::Get) {
        let length = length.min(Duration::from_secs(5));
        get_rates(bench, &channels, &token, &numbers, length).await?;
    }

    if runs(Part::List) {
        println!(
            "== incidents: list page of 50 with a filter, {} incidents",
            args.rows
        );
        list_latency(&db, &channels[0], &token, args.rows).await?;
    }

    if runs(Part::Alerts) {
        println!(
            "== incidents: alert intake, batches of 500, 4 clients, 1,000 distinct alerts repeating"
        );
        let rate = alert_rate(&channels[..4], &token, length).await?;
        println!("  {rate:.0} alerts/s   (target: 5,000/s sustained)");
    }

    let _ = stop.send(());
    let _ = serving.await;
    db.close().await;
    Ok(())
}

/// Gets by number: p99 at 8 clients, then the rate at 32 beside pgbench's
/// primary-key SELECT.
async fn get_rates(
    bench: &BenchDb,
    channels: &[Channel],
    token: &str,
    numbers: &[String],
    length: Duration,
) -> Result<(), Box<dyn std::error::Error>> {
    println!("== incidents: get by number");
    let (p50, p99, rate8) = get_latency(&channels[..8], token, numbers, length).await?;
    println!(
        "  8 clients:    p50 {p50:.2} ms, p99 {p99:.2} ms, {rate8:.0} gets/s   (target: p99 under 2 ms)"
    );
    let (_, p99_32, rate32) = get_latency(&channels[..32], token, numbers, length).await?;
    let pk = pgbench(
        bench,
        32,
        length.as_secs(),
        "\\set n random(1, 1000)\nSELECT * FROM incidents WHERE number = 'INC' || lpad(:n::text, 7, '0');\n",
    )?;
    println!(
        "  32 clients:   {rate32:.0} gets/s (p99 {p99_32:.2} ms); pgbench primary-key SELECT {pk:.0}/s; ratio {:.0} %   (target: at least 40 %)",
        100.0 * rate32 / pk
    );
    Ok(())
}

fn new_incident(i: u64) -> CreateIncidentRequest {
    CreateIncidentRequest {
        incident: Some(Incident {
            title: format!("Checkout returns 502 for customers (run {i})"),
            description: "The web tier returns 502 for every checkout since 09:41. ".repeat(4),
            caller: "u-1042".into(),
            impact: Impact::Medium as i32,
            urgency: Urgency::High as i32,
            category: "application".into(),
            ..Incident::default()
        }),
        request_id: String::new(),
    }
}

async fn create_rate(
    channels: &[Channel],
    token: &str,
    length: Duration,
) -> Result<(f64, Vec<String>), Box<dyn std::error::Error>> {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + length;
    let started = Instant::now();
    let workers: Vec<_> = channels
        .iter()
        .cloned()
        .map(|channel| {
            let done = Arc::clone(&done);
            let token = token.to_owned();
            tokio::spawn(async move {
                let mut client = IncidentServiceClient::new(channel);
                let mut numbers = Vec::new();
                while Instant::now() < deadline {
                    let n = done.fetch_add(1, Ordering::Relaxed);
                    let created = client
                        .create_incident(authorized(new_incident(n), &token))
                        .await?;
                    numbers.push(created.into_inner().number);
                }
                Ok::<_, tonic::Status>(numbers)
            })
        })
        .collect();
    let mut numbers = Vec::new();
    for worker in workers {
        numbers.extend(worker.await??);
    }
    Ok((
        numbers.len() as f64 / started.elapsed().as_secs_f64(),
        numbers,
    ))
}

async fn get_latency(
    channels: &[Channel],
    token: &str,
    numbers: &[String],
    length: Duration,
) -> Result<(f64, f64, f64), Box<dyn std::error::Error>> {
    let deadline = Instant::now() + length;
    let started = Instant::now();
    let names: Arc<Vec<String>> =
        Arc::new(numbers.iter().map(|n| format!("incidents/{n}")).collect());
    let workers: Vec<_> = channels
        .iter()
        .cloned()
        .enumerate()
        .map(|(w, channel)| {
            let names = Arc::clone(&names);
            let token = token.to_owned();
            tokio::spawn(async move {
                let mut client = IncidentServiceClient::new(channel);
                let mut latencies = Vec::new();
                let mut i = w * 7919;
                while Instant::now() < deadline {
                    let name = names[i % names.len()].clone();
                    i += 1;
                    let begin = Instant::now();
                    client
                        .get_incident(authorized(GetIncidentRequest { name }, &token))
                        .await?;
                    latencies.push(u64::try_from(begin.elapsed().as_micros()).unwrap_or(u64::MAX));
                }
                Ok::<_, tonic::Status>(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await??);
    }
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    let (p50, p99, _) = percentiles(latencies);
    Ok((p50, p99, rate))
}

async fn list_latency(
    db: &Db,
    channel: &Channel,
    token: &str,
    rows: i64,
) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    sqlx::query(
        "INSERT INTO incidents (number, title, description, state, impact, urgency, priority, caller, \
         assignment_group, created_by_subject, created_by_name, created_by_kind, created_at, updated_at, version) \
         SELECT 'BLK' || lpad(g::text, 8, '0'), 'Bulk incident ' || g, 'Loaded for the list benchmark', \
         1 + (g / 7) % 4, 1 + g % 3, 1 + (g / 3) % 3, 1 + (g / 11) % 5, 'u-' || (g % 5000), 'group-' || (g % 200), \
         'bench', 'Bench', 1, 1700000000000000 + g * 1000, 1700000000000000 + g * 1000, 1 \
         FROM generate_series(1, $1) AS g",
    )
    .bind(rows)
    .execute(db.pool())
    .await?;
    sqlx::query("ANALYZE incidents").execute(db.pool()).await?;
    println!(
        "  loaded {rows} incidents in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut client = IncidentServiceClient::new(channel.clone());
    let mut latencies = Vec::new();
    let mut page_token = String::new();
    let mut filter = String::new();
    for i in 0..2_000 {
        if i % 5 == 0 {
            filter = format!(
                "assignment_group = \"group-{}\" AND state <= IN_PROGRESS",
                (i * 37) % 200
            );
            page_token.clear();
        }
        let request = ListIncidentsRequest {
            page_size: 50,
            page_token: page_token.clone(),
            filter: filter.clone(),
            order_by: String::new(),
        };
        let begin = Instant::now();
        let page = client
            .list_incidents(authorized(request, token))
            .await?
            .into_inner();
        latencies.push(u64::try_from(begin.elapsed().as_micros()).unwrap_or(u64::MAX));
        // State and group are independent in this data set, so every page is full.
        if page.incidents.len() != 50 {
            return Err(format!("a page held {} incidents, not 50", page.incidents.len()).into());
        }
        page_token = page.next_page_token;
    }
    let (p50, p99, max) = percentiles(latencies);
    println!(
        "  2,000 pages (5 deep per group): p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms   (target: p99 under 10 ms)"
    );
    Ok(())
}

async fn alert_rate(
    channels: &[Channel],
    token: &str,
    length: Duration,
) -> Result<f64, Box<dyn std::error::Error>> {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + length;
    let started = Instant::now();
    let workers: Vec<_> = channels
        .iter()
        .cloned()
        .enumerate()
        .map(|(w, channel)| {
            let done = Arc::clone(&done);
            let token = token.to_owned();
            tokio::spawn(async move {
                let mut client = IncidentServiceClient::new(channel);
                let mut round = 0_usize;
                while Instant::now() < deadline {
                    let alerts = (0..500)
                        .map(|i| {
                            let n = (w * 250 + round * 500 + i) % 1000;
                            Alert {
                                source: "alertmanager/bench".into(),
                                fingerprint: format!("bench-{n:04}"),
                                status: AlertStatus::Firing as i32,
                                severity: AlertSeverity::Major as i32,
                                node: format!("node-{n}"),
                                metric: "HighLatency".into(),
                                summary: format!("High latency on node-{n}"),
                                ..Alert::default()
                            }
                        })
                        .collect();
                    client
                        .ingest_alerts(authorized(IngestAlertsRequest { alerts }, &token))
                        .await?;
                    done.fetch_add(500, Ordering::Relaxed);
                    round += 1;
                }
                Ok::<_, tonic::Status>(())
            })
        })
        .collect();
    for worker in workers {
        worker.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// The statements one create runs, for pgbench.
fn create_script() -> String {
    let description = "The web tier returns 502 for every checkout since 09:41. ".repeat(4);
    format!(
        "BEGIN;
SELECT version, updated_at, updated_by_subject, updated_by_name, updated_by_kind FROM priority_matrix WHERE id = 1;
SELECT impact, urgency, priority FROM priority_matrix_cells;
INSERT INTO counters (name, value) VALUES ('pgbench', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value AS n \\gset
INSERT INTO incidents (number, title, description, state, impact, urgency, priority, caller, category, created_by_subject, created_by_name, created_by_kind, created_at, updated_at, version) VALUES ('PGB' || lpad(:n::text, 7, '0'), 'Checkout returns 502 for customers', '{description}', 1, 2, 1, 2, 'u-1042', 'application', 'bench', 'Bench', 1, 1700000000000000, 1700000000000000, 1) RETURNING id;
SELECT id, position, condition FROM assignment_rules WHERE enabled = 1 ORDER BY position, id;
INSERT INTO audit_log (resource, action, actor_subject, actor_name, actor_kind, time, changes, request_id) VALUES ('incidents/PGB' || :n, 'create', 'bench', 'Bench', 1, 1700000000000000, '[{{\"field\":\"state\",\"old\":\"\",\"new\":\"NEW\"}},{{\"field\":\"title\",\"old\":\"\",\"new\":\"Checkout returns 502\"}}]', 'bench');
INSERT INTO outbox (event_id, stream, event_type, subject, payload, created_at) VALUES (gen_random_uuid()::text, 'incidents', 'incidents.incident.created', 'incidents/PGB' || :n, decode(repeat('00', 700), 'hex'), 1700000000000000);
COMMIT;
"
    )
}
