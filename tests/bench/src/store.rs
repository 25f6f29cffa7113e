//! Storage benchmarks on PostgreSQL:
//! - a ticket-sized insert with its audit entry and outbox event in one
//!   transaction, through `itsm-store`, against pgbench running the same
//!   statements at the same concurrency in the same run;
//! - keyset pages of 50 with a filter on an indexed field, over 1,000,000 rows.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use itsm_query::{Field, FieldKind, Schema};
use itsm_store::audit::{self, Actor, AuditRecord, FieldChange};
use itsm_store::list::{ListRequest, ListSpec};
use itsm_store::outbox::{self, NewEvent};
use itsm_store::page::PageTokens;
use itsm_store::{Db, DbOptions, counter};

use crate::pg::{BenchDb, percentiles};

#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Args {
    /// Concurrent clients for the insert benchmark (ours and pgbench's)
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Seconds each insert run lasts
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Rows in the table the list benchmark pages through
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: i64,
    /// List queries measured
    #[arg(long, default_value_t = 2_000)]
    pub queries: usize,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            clients: 8,
            seconds: 10,
            rows: 1_000_000,
            queries: 2_000,
        }
    }
}

const TICKETS: &str = "CREATE TABLE bench_tickets (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    state INTEGER NOT NULL,
    impact INTEGER NOT NULL,
    urgency INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    caller TEXT NOT NULL,
    assignment_group TEXT NOT NULL,
    category TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    version BIGINT NOT NULL)";

const INSERT_TICKET: &str = "INSERT INTO bench_tickets (number, title, description, state, impact, urgency, \
    priority, caller, assignment_group, category, create_time, update_time, version) \
    VALUES ($1, $2, $3, 1, 2, 2, 3, $4, $5, $6, $7, $7, 1)";

fn description() -> String {
    "The database server db-prod-07 stopped answering at 09:41; the web tier returns 502 \
     for every checkout. Restarting the pool did not help. "
        .repeat(3)
}

pub async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let bench = BenchDb::create().await?;
    let result = run_on(&bench, args).await;
    bench.drop_now().await?;
    result
}

async fn run_on(bench: &BenchDb, args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let options = DbOptions {
        max_connections: u32::try_from(args.clients).unwrap_or(8) + 2,
        ..DbOptions::default()
    };
    let db = Db::connect_with(&bench.url, options).await?;
    db.migrate(None).await?;
    sqlx::query(TICKETS).execute(db.pool()).await?;

    println!(
        "== insert: ticket row + audit entry + outbox event, one transaction, {} clients, {} s",
        args.clients, args.seconds
    );
    let ours = insert_rate(&db, args.clients, Duration::from_secs(args.seconds)).await?;
    let reference = pgbench_rate(bench, args.clients, args.seconds)?;
    println!("  itsm-store   {ours:>10.0} tx/s");
    println!("  pgbench      {reference:>10.0} tx/s   (same statements, prepared, same clients)");
    println!(
        "  ratio        {:>10.0} %     (target: at least 70 %)",
        100.0 * ours / reference
    );

    println!(
        "== list: keyset pages of 50, filter on an indexed field, {} rows",
        args.rows
    );
    list_latency(&db, args.rows, args.queries).await?;
    db.close().await;
    Ok(())
}

async fn insert_rate(
    db: &Db,
    clients: usize,
    length: Duration,
) -> Result<f64, Box<dyn std::error::Error>> {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + length;
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let db = db.clone();
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                let actor = Actor {
                    subject: "bench".into(),
                    display_name: "Bench".into(),
                    kind: 1,
                };
                let description = description();
                while Instant::now() < deadline {
                    create_ticket(&db, &actor, &description).await?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<_, itsm_store::StoreError>(())
            })
        })
        .collect();
    for worker in workers {
        worker.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// What a create does, minus the gRPC layer: number, row, audit, event, commit.
async fn create_ticket(
    db: &Db,
    actor: &Actor,
    description: &str,
) -> Result<(), itsm_store::StoreError> {
    let now = itsm_store::now_micros();
    let mut tx = db.begin().await?;
    let number = counter::format_number("INC", counter::next(&mut tx, "bench").await?);
    let name = format!("incidents/{number}");
    sqlx::query(INSERT_TICKET)
        .bind(&number)
        .bind("Checkout returns 502 for every customer")
        .bind(description)
        .bind("u-1042")
        .bind("database-oncall")
        .bind("database")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let record = AuditRecord {
        resource: name.clone(),
        action: "create".into(),
        actor: actor.clone(),
        time: now,
        changes: vec![FieldChange::new("state", "", "NEW")],
        request_id: "bench".into(),
    };
    audit::insert(&mut tx, &record).await?;
    let payload = prost_types::Any {
        type_url: "type.googleapis.com/itsm.incidents.v1.IncidentEvent".into(),
        value: vec![0; 300],
    };
    let event = NewEvent {
        stream: "incidents",
        source: "itsm.incidents",
        event_type: "incidents.incident.created",
        subject: &name,
        sequence: 1,
        payload,
        actor,
        request_id: "bench",
        traceparent: "",
        tracestate: "",
        time: now,
    };
    outbox::insert(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(())
}

/// pgbench running the same five statements (counter, row, audit, outbox, commit).
fn pgbench_rate(
    bench: &BenchDb,
    clients: usize,
    seconds: u64,
) -> Result<f64, Box<dyn std::error::Error>> {
    let script = format!(
        "BEGIN;
INSERT INTO counters (name, value) VALUES ('pgbench', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value AS n \\gset
INSERT INTO bench_tickets (number, title, description, state, impact, urgency, priority, caller, assignment_group, category, create_time, update_time, version) VALUES ('PGB' || lpad(:n::text, 7, '0'), 'Checkout returns 502 for every customer', '{description}', 1, 2, 2, 3, 'u-1042', 'database-oncall', 'database', 1700000000000000, 1700000000000000, 1);
INSERT INTO audit_log (resource, action, actor_subject, actor_name, actor_kind, time, changes, request_id) VALUES ('incidents/PGB' || :n, 'create', 'bench', 'Bench', 1, 1700000000000000, '[{{\"field\":\"state\",\"old\":\"\",\"new\":\"NEW\"}}]', 'bench');
INSERT INTO outbox (event_id, stream, event_type, subject, payload, created_at) VALUES (gen_random_uuid()::text, 'incidents', 'incidents.incident.created', 'incidents/PGB' || :n, decode(repeat('00', 420), 'hex'), 1700000000000000);
COMMIT;
",
        description = description()
    );
    crate::pg::pgbench(bench, clients, seconds, &script)
}

const PRIORITIES: &[(&str, i64)] = &[
    ("CRITICAL", 1),
    ("HIGH", 2),
    ("MODERATE", 3),
    ("LOW", 4),
    ("PLANNING", 5),
];

static LIST_SCHEMA: Schema = Schema {
    resource: "ticket",
    fields: &[
        Field {
            name: "title",
            column: "title",
            kind: FieldKind::Text,
            sortable: false,
        },
        Field {
            name: "priority",
            column: "priority",
            kind: FieldKind::Enum(PRIORITIES),
            sortable: true,
        },
        Field {
            name: "assignment_group",
            column: "assignment_group",
            kind: FieldKind::Text,
            sortable: true,
        },
        Field {
            name: "create_time",
            column: "create_time",
            kind: FieldKind::Timestamp,
            sortable: true,
        },
    ],
};

static LIST: ListSpec = ListSpec {
    schema: &LIST_SCHEMA,
    select: "SELECT id, title, state, priority, assignment_group, create_time FROM bench_list",
    id_column: "id",
    default_order: "create_time desc",
};

async fn list_latency(
    db: &Db,
    rows: i64,
    queries: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    sqlx::query(
        "CREATE TABLE bench_list (id BIGINT PRIMARY KEY, title TEXT NOT NULL, state INTEGER NOT NULL, \
         priority INTEGER NOT NULL, assignment_group TEXT NOT NULL, create_time BIGINT NOT NULL)",
    )
    .execute(db.pool())
    .await?;
    sqlx::query(
        "INSERT INTO bench_list SELECT g, 'Ticket number ' || g, g % 6, g % 5 + 1, 'group-' || (g % 200), \
         1700000000000000 + g * 1000 FROM generate_series(1, $1) AS g",
    )
    .bind(rows)
    .execute(db.pool())
    .await?;
    sqlx::query("CREATE INDEX bench_list_group_time ON bench_list (assignment_group, create_time DESC, id DESC)")
        .execute(db.pool())
        .await?;
    sqlx::query("ANALYZE bench_list").execute(db.pool()).await?;
    println!(
        "  loaded {rows} rows in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let tokens = PageTokens::new(b"bench");
    let mut latencies = Vec::with_capacity(queries);
    let mut token = String::new();
    let mut filter = String::new();
    for i in 0..queries {
        // Five pages deep into one group, then another group.
        if i % 5 == 0 {
            filter = format!("assignment_group = \"group-{}\"", (i * 37) % 200);
            token.clear();
        }
        let begin = Instant::now();
        let request = ListRequest {
            page_size: 50,
            page_token: &token,
            filter: &filter,
            order_by: "",
        };
        let plan = LIST.plan(&request, &tokens, |_| {})?;
        let fetched = itsm_store::db::query(plan.sql())
            .fetch_all(db.pool())
            .await?;
        let page = plan.finish(fetched, &tokens)?;
        latencies.push(u64::try_from(begin.elapsed().as_micros()).unwrap_or(u64::MAX));
        assert_eq!(page.rows.len(), 50, "every page is full in this data set");
        token = page.next_page_token;
    }
    let (p50, p99, max) = percentiles(latencies);
    println!(
        "  {queries} pages: p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms   (target: p99 under 5 ms)"
    );
    Ok(())
}
