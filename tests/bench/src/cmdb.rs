//! The CMDB through its real gRPC server, with authentication and the policy
//! table on, over PostgreSQL holding 1,000,000 CIs and about 5,000,000
//! relationships (generated in the database, see [`GENERATE`]):
//! - downstream impact to depth 6 from a core switch;
//! - reconciling a batch of 1,000 discovered servers (mostly unchanged);
//! - get CI, from the database and from the Redis cache.
//!
//! The data set is a data centre: 400 core switches, 4,000 access switches
//! (10 per core), 10,000 storage arrays, 400,000 Linux servers (100 per access
//! switch, each depending on 6 storage arrays and contained in one of 100
//! locations), 20,000 clusters of 5 servers (3 must be up), 500,000
//! applications (running on a server, one in 20 on a cluster, chained 10 deep
//! by depends_on), 50,000 business services (each depending on 10
//! applications and on the next service), 15,500 virtual machines.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use itsm_auth::jwt::{JwtSettings, JwtVerifier, TokenRequest, mint_hs256};
use itsm_auth::{Authenticator, Guard};
use itsm_events::cache::{Cache, RedisCache, RedisCacheConfig};
use itsm_platform::{Config, GrpcServer, Mode};
use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_proto::itsm::cmdb::v1::cmdb_service_client::CmdbServiceClient;
use itsm_store::{Db, DbOptions};
use tonic::Request;
use tonic::transport::{Channel, Endpoint};

use crate::pg::{BenchDb, percentiles};

#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Args {
    /// Impact analyses timed (from different core switches)
    #[arg(long, default_value_t = 400)]
    pub impacts: usize,
    /// Seconds each get run lasts
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            impacts: 400,
            seconds: 5,
        }
    }
}

const SECRET: &str = "bench secret, at least 32 bytes long";

/// Server ids (internal) start here; 400,000 of them.
const FIRST_SERVER: i64 = 14_501;
const SERVERS: i64 = 400_000;

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

/// A cache that never holds anything: the database path.
#[derive(Debug)]
struct NoCache;

#[async_trait]
impl Cache for NoCache {
    async fn get(&self, _key: &str) -> Option<Vec<u8>> {
        None
    }
    async fn set(&self, _key: &str, _value: &[u8], _ttl: Duration) {}
    async fn delete(&self, _keys: &[&str]) {}
}

pub async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let bench = BenchDb::create().await?;
    let result = run_on(&bench, args).await;
    bench.drop_now().await?;
    result
}

/// Serves the CMDB on `db` with `cache`; returns the address and a stopper.
async fn serve(
    db: &Db,
    cache: Arc<dyn Cache>,
) -> Result<(String, tokio::sync::oneshot::Sender<()>), Box<dyn std::error::Error>> {
    let authn = Authenticator::new(
        Some(JwtVerifier::hs256(SECRET.as_bytes(), settings())),
        None,
    );
    let guard = Guard::new(Arc::new(authn));
    let config = Config {
        grpc_addr: ([127, 0, 0, 1], 0).into(),
        ..Config::defaults(Mode::Serve)
    };
    let service = itsm_cmdb::service(db.clone(), cache);
    let server = GrpcServer::new(&config)
        .add_service(guard.protect(service, itsm_cmdb::POLICY)?)
        .bind()
        .await?;
    let addr = format!("http://{}", server.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));
    Ok((addr, stop))
}

async fn run_on(bench: &BenchDb, args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let db = Db::connect_with(
        &bench.url,
        DbOptions {
            max_connections: 20,
            ..DbOptions::default()
        },
    )
    .await?;
    db.migrate(itsm_cmdb::MIGRATIONS.as_ref()).await?;
    let token = token()?;

    // The database path (no cache) and the cached path, on two servers.
    let (plain_addr, stop_plain) = serve(&db, Arc::new(NoCache)).await?;
    let redis_url = std::env::var("ITSM_BENCH_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let prefix = format!("itsm-bench-{}:", uuid::Uuid::new_v4().simple());
    let redis = RedisCache::open(
        &redis_url,
        RedisCacheConfig {
            key_prefix: prefix,
            ..RedisCacheConfig::default()
        },
    )
    .await?;
    let (cached_addr, stop_cached) = serve(&db, Arc::new(redis)).await?;
    let plain = Endpoint::from_shared(plain_addr)?.connect().await?;
    let cached = Endpoint::from_shared(cached_addr)?.connect().await?;

    // The first call seeds the default model the generated data uses.
    let mut client = CmdbServiceClient::new(plain.clone());
    client
        .get_ci_class(authorized(
            pb::GetCiClassRequest {
                name: "classes/linux_server".into(),
            },
            &token,
        ))
        .await?;

    println!("== cmdb: generating 1,000,000 CIs and ~5,000,000 relationships in PostgreSQL");
    let started = Instant::now();
    for (what, sql) in GENERATE {
        let step = Instant::now();
        sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
            .execute(db.pool())
            .await
            .map_err(|e| format!("generating {what}: {e}"))?;
        println!("  {what:<44} {:>6.1} s", step.elapsed().as_secs_f64());
    }
    let (cis, edges): (i64, i64) =
        sqlx::query_as("SELECT (SELECT COUNT(*) FROM cis), (SELECT COUNT(*) FROM relationships)")
            .fetch_one(db.pool())
            .await?;
    println!(
        "  {cis} CIs, {edges} relationships in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let uids: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, uid FROM cis WHERE id <= 500 OR (id >= $1 AND id < $1 + 20000) ORDER BY id",
    )
    .bind(FIRST_SERVER)
    .fetch_all(db.pool())
    .await?;
    let name_of = |id: i64| -> Option<String> {
        uids.binary_search_by_key(&id, |(i, _)| *i)
            .ok()
            .map(|at| format!("cis/{}", uids[at].1))
    };

    impact(&plain, &token, args.impacts, &name_of).await?;
    reconcile(&plain, &token, &db).await?;
    let servers: Vec<String> = (0..20_000)
        .filter_map(|k| name_of(FIRST_SERVER + k))
        .collect();
    println!("== cmdb: get CI, 8 clients, {} s each", args.seconds);
    let length = Duration::from_secs(args.seconds);
    let (p50, p99, rate) = get_latency(&plain, &token, &servers, length).await?;
    println!(
        "  database:     p50 {p50:.2} ms, p99 {p99:.2} ms, {rate:.0} gets/s   (target: p99 under 2 ms)"
    );
    // Warm the cache, then measure hits.
    let _ = get_latency(&cached, &token, &servers, length).await?;
    let (p50, p99, rate) = get_latency(&cached, &token, &servers, length).await?;
    println!(
        "  Redis cache:  p50 {p50:.2} ms, p99 {p99:.2} ms, {rate:.0} gets/s   (target: p99 under 1 ms)"
    );

    let _ = stop_plain.send(());
    let _ = stop_cached.send(());
    db.close().await;
    Ok(())
}

async fn impact(
    channel: &Channel,
    token: &str,
    count: usize,
    name_of: &dyn Fn(i64) -> Option<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "== cmdb: downstream impact to depth 6 from a core switch ({count} analyses, 1 client)"
    );
    let mut client = CmdbServiceClient::new(channel.clone());
    let mut latencies = Vec::new();
    let mut reached = Vec::new();
    let mut services = Vec::new();
    for i in 0..count {
        // Core switches are ids 101..=500; each analysis starts from another one.
        let core = 101 + i64::try_from(i % 400)?;
        let name = name_of(core).ok_or("core switch uid missing")?;
        let request = pb::AnalyzeImpactRequest {
            cis: vec![name],
            direction: pb::ImpactDirection::Downstream as i32,
            max_depth: 6,
            relationship_types: Vec::new(),
            result_filter: String::new(),
            max_results: 10_000,
        };
        let begin = Instant::now();
        let analysis = client
            .analyze_impact(authorized(request, token))
            .await?
            .into_inner();
        latencies.push(u64::try_from(begin.elapsed().as_micros()).unwrap_or(u64::MAX));
        reached.push(analysis.impacted_cis.len());
        services.push(analysis.impacted_services.len());
    }
    let (p50, p99, max) = percentiles(latencies);
    let mean = |v: &[usize]| v.iter().sum::<usize>() as f64 / v.len().max(1) as f64;
    println!(
        "  each reaches {:.0} CIs on average ({:.0} business services)",
        mean(&reached),
        mean(&services)
    );
    println!(
        "  p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms   (target: p99 under 50 ms; the first call of each switch, no cache)"
    );
    Ok(())
}

/// One discovered server as the scanner reports it.
fn reported(k: i64, changed: bool) -> pb::ReportedCi {
    let id = FIRST_SERVER + (k * 397) % SERVERS;
    let text = |v: String| pb::AttributeValue {
        value: Some(pb::attribute_value::Value::StringValue(v)),
    };
    let mut attributes = std::collections::BTreeMap::new();
    attributes.insert("serial_number".to_owned(), text(format!("SN{id}")));
    attributes.insert("host_name".to_owned(), text(format!("srv-{id}")));
    attributes.insert("dns_domain".to_owned(), text("dc1.example.com".into()));
    if changed {
        attributes.insert("os_version".to_owned(), text("24.04".into()));
    }
    pb::ReportedCi {
        correlation_id: format!("agent-{id}"),
        ci: Some(pb::Ci {
            ci_class: "classes/linux_server".into(),
            display_name: format!("srv-{id}"),
            attributes,
            ..pb::Ci::default()
        }),
        cleared_fields: Vec::new(),
    }
}

async fn reconcile(
    channel: &Channel,
    token: &str,
    db: &Db,
) -> Result<(), Box<dyn std::error::Error>> {
    println!("== cmdb: reconcile a batch of 1,000 discovered servers");
    let mut client = CmdbServiceClient::new(channel.clone());
    client
        .create_discovery_source(authorized(
            pb::CreateDiscoverySourceRequest {
                discovery_source: Some(pb::DiscoverySource {
                    display_name: "Bench scanner".into(),
                    enabled: true,
                    ..pb::DiscoverySource::default()
                }),
                discovery_source_id: "scanner".into(),
                request_id: String::new(),
            },
            token,
        ))
        .await?;
    for (run, what) in [
        (0, "first report (identified by serial number)"),
        (1, "second report (by correlation id), 5 % changed"),
        (2, "third report, all unchanged"),
    ] {
        let items = (0..1_000).map(|k| reported(k, run == 1 && k % 20 == 0));
        let request = pb::ReportCisRequest {
            discovery_source: "discoverySources/scanner".into(),
            items: items.collect(),
            relationships: Vec::new(),
            request_id: String::new(),
            validate_only: false,
        };
        let begin = Instant::now();
        let response = client
            .report_cis(authorized(request, token))
            .await?
            .into_inner();
        let took = begin.elapsed().as_secs_f64();
        println!(
            "  {what:<48} {took:>6.3} s: {} created, {} updated, {} unchanged, {} parked, {} rejected   (target: under 1 s)",
            response.created_count,
            response.updated_count,
            response.unchanged_count,
            response.parked_count,
            response.rejected_count
        );
    }
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cis")
        .fetch_one(db.pool())
        .await?;
    println!("  CIs afterwards: {total} (no duplicates: 1,000,000 expected)");
    Ok(())
}

async fn get_latency(
    channel: &Channel,
    token: &str,
    names: &[String],
    length: Duration,
) -> Result<(f64, f64, f64), Box<dyn std::error::Error>> {
    let deadline = Instant::now() + length;
    let started = Instant::now();
    let names: Arc<Vec<String>> = Arc::new(names.to_vec());
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let names = Arc::clone(&names);
            let token = token.to_owned();
            let channel = channel.clone();
            tokio::spawn(async move {
                let mut client = CmdbServiceClient::new(channel);
                let mut latencies = Vec::new();
                let mut i = w * 2_503;
                while Instant::now() < deadline {
                    let name = names[i % names.len()].clone();
                    i += 1;
                    let begin = Instant::now();
                    client
                        .get_ci(authorized(
                            pb::GetCiRequest {
                                name,
                                read_mask: None,
                            },
                            &token,
                        ))
                        .await?;
                    latencies.push(u64::try_from(begin.elapsed().as_micros()).unwrap_or(u64::MAX));
                }
                Ok::<_, tonic::Status>(latencies)
            })
        })
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await??);
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    let (p50, p99, _) = percentiles(all);
    Ok((p50, p99, rate))
}

/// The data set, generated by PostgreSQL itself. CI documents are protobuf
/// `Ci` messages encoded in SQL (`pb_*` helpers, dropped at the end); uids
/// are `md5('ci-<id>')` as a UUID; relationship uids likewise.
const GENERATE: &[(&str, &str)] = &[
    (
        "protobuf helpers",
        r#"
CREATE FUNCTION pb_varint(v bigint) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN v < 128 THEN set_byte('\x00'::bytea, 0, v::int)
    WHEN v < 16384 THEN set_byte(set_byte('\x0000'::bytea, 0, ((v & 127) | 128)::int), 1, (v >> 7)::int)
    WHEN v < 2097152 THEN set_byte(set_byte(set_byte('\x000000'::bytea, 0, ((v & 127) | 128)::int), 1, (((v >> 7) & 127) | 128)::int), 2, (v >> 14)::int)
    WHEN v < 268435456 THEN set_byte(set_byte(set_byte(set_byte('\x00000000'::bytea, 0, ((v & 127) | 128)::int), 1, (((v >> 7) & 127) | 128)::int), 2, (((v >> 14) & 127) | 128)::int), 3, (v >> 21)::int)
    ELSE set_byte(set_byte(set_byte(set_byte(set_byte('\x0000000000'::bytea, 0, ((v & 127) | 128)::int), 1, (((v >> 7) & 127) | 128)::int), 2, (((v >> 14) & 127) | 128)::int), 3, (((v >> 21) & 127) | 128)::int), 4, (v >> 28)::int)
  END $$;
CREATE FUNCTION pb_bytes(tag int, b bytea) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
  SELECT pb_varint(tag * 8 + 2) || pb_varint(length(b)) || b $$;
CREATE FUNCTION pb_str(tag int, s text) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN s = '' THEN ''::bytea ELSE pb_bytes(tag, convert_to(s, 'UTF8')) END $$;
CREATE FUNCTION pb_int(tag int, v bigint) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN v = 0 THEN ''::bytea ELSE pb_varint(tag * 8) || pb_varint(v) END $$;
CREATE FUNCTION pb_time(tag int, micros bigint) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
  SELECT pb_bytes(tag, pb_int(1, micros / 1000000)) $$;
CREATE FUNCTION pb_attr(k text, v text) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN v IS NULL THEN ''::bytea ELSE pb_bytes(11, pb_str(1, k) || pb_bytes(2, pb_str(1, v))) END $$;
CREATE FUNCTION bench_uid(kind text, id bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT md5(kind || '-' || id)::uuid::text $$;
CREATE TABLE bench_cis (id bigint PRIMARY KEY, class text, name text, min_up int,
  serial text, host text, domain text);
CREATE TABLE bench_edges (type text, source_id bigint, target_id bigint);
"#,
    ),
    (
        "CI rows (plan)",
        r#"
INSERT INTO bench_cis
SELECT g, 'location', 'site-' || g, 0, NULL, NULL, NULL FROM generate_series(1, 100) g
UNION ALL SELECT g, 'network_device', 'core-sw-' || g, 0, 'SNC' || g, 'core-sw-' || g, 'net.example.com' FROM generate_series(101, 500) g
UNION ALL SELECT g, 'network_device', 'acc-sw-' || g, 0, 'SNA' || g, 'acc-sw-' || g, 'net.example.com' FROM generate_series(501, 4500) g
UNION ALL SELECT g, 'storage', 'stor-' || g, 0, 'SNS' || g, NULL, NULL FROM generate_series(4501, 14500) g
UNION ALL SELECT g, 'linux_server', 'srv-' || g, 0, 'SN' || g, 'srv-' || g, 'dc1.example.com' FROM generate_series(14501, 414500) g
UNION ALL SELECT g, 'cluster', 'cluster-' || g, 3, NULL, NULL, NULL FROM generate_series(414501, 434500) g
UNION ALL SELECT g, 'application', 'app-' || g, 0, NULL, NULL, NULL FROM generate_series(434501, 934500) g
UNION ALL SELECT g, 'business_service', 'svc-' || g, 0, NULL, NULL, NULL FROM generate_series(934501, 984500) g
UNION ALL SELECT g, 'virtual_machine', 'vm-' || g, 0, NULL, 'vm-' || g, 'dc1.example.com' FROM generate_series(984501, 1000000) g;
"#,
    ),
    (
        "relationships (plan)",
        r#"
INSERT INTO bench_edges
SELECT 'connects_to', g, 101 + (g - 501) / 10 FROM generate_series(501, 4500) g
UNION ALL SELECT 'connects_to', g, 501 + (g - 14501) / 100 FROM generate_series(14501, 414500) g
UNION ALL SELECT 'depends_on', g, 4501 + ((g * 7 + k * 131) % 10000) FROM generate_series(14501, 414500) g, generate_series(0, 5) k
UNION ALL SELECT 'contains', 1 + g % 100, g FROM generate_series(14501, 414500) g
UNION ALL SELECT 'has_member', c, 14501 + (c - 414501) * 5 + m FROM generate_series(414501, 434500) c, generate_series(0, 4) m
UNION ALL SELECT 'runs_on', p, CASE WHEN (p - 434501) % 20 = 19 THEN 414501 + ((p - 434501) / 20) % 20000
                                   ELSE 14501 + (p - 434501) % 400000 END FROM generate_series(434501, 934500) p
UNION ALL SELECT 'depends_on', p, p + 1 FROM generate_series(434501, 934500) p WHERE (p - 434501) % 10 <> 9
UNION ALL SELECT 'depends_on', b, 434501 + (b - 934501) * 10 + k FROM generate_series(934501, 984500) b, generate_series(0, 9) k
UNION ALL SELECT 'depends_on', b, b + 1 FROM generate_series(934501, 984500) b WHERE (b - 934501) % 5 <> 4
UNION ALL SELECT 'runs_on', v, 14501 + (v * 13) % 400000 FROM generate_series(984501, 1000000) v
UNION ALL SELECT 'depends_on', p, 4501 + (p * 11) % 10000 FROM generate_series(434501, 934500) p WHERE p % 5 <> 0;
"#,
    ),
    (
        "cis",
        r#"
INSERT INTO cis (id, uid, ci_class, display_name, status, criticality, min_members_up, created_at, updated_at, version, doc)
OVERRIDING SYSTEM VALUE
SELECT id, bench_uid('ci', id), class, name, 3, 3, min_up, 1700000000000000, 1700000000000000, 1,
  pb_str(1, 'cis/' || bench_uid('ci', id)) || pb_str(2, 'classes/' || class) || pb_str(3, name)
  || pb_int(5, 3) || pb_int(8, 3) || pb_int(12, min_up)
  || pb_attr('serial_number', serial) || pb_attr('host_name', host) || pb_attr('dns_domain', domain)
  || pb_time(20, 1700000000000000) || pb_time(22, 1700000000000000) || pb_str(23, 'v1')
FROM bench_cis;
SELECT setval(pg_get_serial_sequence('cis', 'id'), 1000000);
"#,
    ),
    (
        "ci_versions",
        r#"
INSERT INTO ci_versions (ci_id, version, valid_from, valid_to, doc)
SELECT id, 1, created_at, 9223372036854775807, doc FROM cis;
"#,
    ),
    (
        "ci_attributes",
        r#"
INSERT INTO ci_attributes (ci_id, key, text_value, norm_value, num_value)
SELECT id, 'serial_number', serial, lower(serial), NULL::double precision FROM bench_cis WHERE serial IS NOT NULL
UNION ALL SELECT id, 'host_name', host, lower(host), NULL FROM bench_cis WHERE host IS NOT NULL
UNION ALL SELECT id, 'dns_domain', domain, lower(domain), NULL FROM bench_cis WHERE domain IS NOT NULL;
"#,
    ),
    (
        "relationships",
        r#"
ALTER TABLE relationships DROP CONSTRAINT IF EXISTS relationships_source_id_fkey;
ALTER TABLE relationships DROP CONSTRAINT IF EXISTS relationships_target_id_fkey;
DROP INDEX relationships_edge;
DROP INDEX relationships_target;
DROP INDEX relationships_created;
INSERT INTO relationships (id, uid, type, source_id, target_id, discovery_source, created_at, doc)
OVERRIDING SYSTEM VALUE
SELECT n, uid, type, source_id, target_id, 'manual', 1700000000000000,
  -- Names have fixed lengths (a UUID is 36 characters), so their field
  -- headers are constants: 0x0a 50 "relationships/<uid>", 0x1a 40 and 0x22 40
  -- "cis/<uid>"; the type and the constant tail are encoded once per type.
  '\x0a32'::bytea || convert_to('relationships/' || uid, 'UTF8') || t.head
  || '\x1a28'::bytea || convert_to('cis/' || bench_uid('ci', source_id), 'UTF8')
  || '\x2228'::bytea || convert_to('cis/' || bench_uid('ci', target_id), 'UTF8') || t.tail
FROM (SELECT row_number() OVER () AS n, bench_uid('rel', row_number() OVER ()) AS uid, type, source_id, target_id
      FROM (SELECT DISTINCT type, source_id, target_id FROM bench_edges) d) e
JOIN (SELECT type AS t_type, pb_str(2, 'relationshipTypes/' || type) AS head,
             pb_str(6, 'discoverySources/manual') || pb_time(9, 1700000000000000) AS tail
      FROM (SELECT DISTINCT type FROM bench_edges) k) t ON t.t_type = e.type;
SELECT setval(pg_get_serial_sequence('relationships', 'id'), (SELECT max(id) FROM relationships));
"#,
    ),
    (
        "relationship indexes and constraints",
        r#"
CREATE UNIQUE INDEX relationships_edge ON relationships (source_id, type, target_id);
CREATE INDEX relationships_target ON relationships (target_id, type, source_id);
CREATE INDEX relationships_created ON relationships (created_at, id);
ALTER TABLE relationships ADD CONSTRAINT relationships_source_id_fkey FOREIGN KEY (source_id) REFERENCES cis (id);
ALTER TABLE relationships ADD CONSTRAINT relationships_target_id_fkey FOREIGN KEY (target_id) REFERENCES cis (id);
"#,
    ),
    (
        "clean up and ANALYZE",
        r#"
DROP TABLE bench_cis;
DROP TABLE bench_edges;
DROP FUNCTION pb_attr, pb_time, pb_int, pb_str, pb_bytes, pb_varint, bench_uid;
ANALYZE;
"#,
    ),
];
