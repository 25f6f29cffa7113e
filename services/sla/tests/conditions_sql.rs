//! SLA conditions are evaluated in memory (`Expr::matches`) over ticket
//! snapshots; list filters run as SQL (`Expr::compile`). Both must mean the
//! same: for many random filters over random incidents, the rows the database
//! selects are exactly the snapshots the evaluation accepts, on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use itsm_proto::itsm::incidents::v1::Incident;
use itsm_sla::tickets::{self, TicketSnapshot};
use itsm_store::query::{FieldKind, RecordValue, parse_filter};
use itsm_store::{Db, SqlBuilder, SqlValue};
use itsm_testkit::TestDb;

itsm_testkit::backend_tests!(evaluation_agrees_with_the_compiled_sql);

/// xorshift64: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Text values: ASCII (SQLite's LOWER folds only ASCII), with LIKE's wildcards.
const WORDS: &[&str] = &[
    "", "network", "Network", "net", "db_team", "dbXteam", "50%", "5", "a b",
];
const TIMES: &[i64] = &[
    0,
    1_767_225_600_000_000,
    1_767_225_600_000_001,
    1_767_312_000_000_000,
];
const TIME_LITERALS: &[&str] = &[
    "\"2026-01-01T00:00:00Z\"",
    "\"2026-01-01T01:00:00+01:00\"",
    "\"2026-01-01T00:00:00.000001Z\"",
    "\"2026-01-02T00:00:00Z\"",
    "\"1970-01-01T00:00:00Z\"",
];

fn timestamp(micros: i64) -> Option<prost_types::Timestamp> {
    (micros != 0).then(|| prost_types::Timestamp {
        seconds: micros / 1_000_000,
        nanos: i32::try_from(micros % 1_000_000 * 1_000).unwrap(),
    })
}

fn random_incident(rng: &mut Rng, id: usize) -> Incident {
    Incident {
        name: format!("incidents/INC{id:07}"),
        number: format!("INC{id:07}"),
        title: (*rng.pick(WORDS)).into(),
        state: i32::try_from(rng.below(7)).unwrap(),
        priority: i32::try_from(rng.below(6)).unwrap(),
        impact: i32::try_from(rng.below(4)).unwrap(),
        hold_reason: i32::try_from(rng.below(5)).unwrap(),
        assignment_group: (*rng.pick(WORDS)).into(),
        assignee: (*rng.pick(WORDS)).into(),
        service: (*rng.pick(WORDS)).into(),
        reopen_count: i32::try_from(rng.below(3)).unwrap(),
        first_contact_resolution: rng.below(2) == 1,
        create_time: timestamp(*rng.pick(TIMES)),
        resolve_time: timestamp(*rng.pick(TIMES)),
        ..Incident::default()
    }
}

/// One comparison, as text; ordering operators only on non-text fields
/// (text order is the database's collation, not a shared meaning).
fn random_comparison(rng: &mut Rng) -> String {
    let schema = tickets::schema("incidents").unwrap();
    let field = rng.pick(schema.fields);
    if rng.below(8) == 0 {
        return format!("{}:*", field.name);
    }
    let ordering = ["=", "!=", "<", "<=", ">", ">=", ":"];
    let equality = ["=", "!=", ":"];
    let (op, value) = match field.kind {
        FieldKind::Text => (*rng.pick(&equality), format!("\"{}\"", rng.pick(WORDS))),
        FieldKind::Enum(values) => (*rng.pick(&ordering), rng.pick(values).0.to_owned()),
        FieldKind::Int => (*rng.pick(&ordering), rng.below(4).to_string()),
        FieldKind::Timestamp => (*rng.pick(&ordering), (*rng.pick(TIME_LITERALS)).to_owned()),
        FieldKind::Bool => (
            *rng.pick(&["=", "!="]),
            rng.pick(&["true", "false"]).to_string(),
        ),
        FieldKind::Float => (*rng.pick(&ordering), "0.5".to_owned()),
    };
    if op == ":" {
        format!("{}:{value}", field.name)
    } else {
        format!("{} {op} {value}", field.name)
    }
}

fn random_filter(rng: &mut Rng, depth: usize) -> String {
    if depth == 0 || rng.below(3) == 0 {
        return random_comparison(rng);
    }
    match rng.below(3) {
        0 => format!(
            "({} AND {})",
            random_filter(rng, depth - 1),
            random_filter(rng, depth - 1)
        ),
        1 => format!(
            "({} OR {})",
            random_filter(rng, depth - 1),
            random_filter(rng, depth - 1)
        ),
        _ => format!("NOT ({})", random_filter(rng, depth - 1)),
    }
}

fn column_type(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Text => "TEXT NOT NULL DEFAULT ''",
        FieldKind::Bool => "BOOLEAN NOT NULL DEFAULT FALSE",
        FieldKind::Float => "DOUBLE PRECISION NOT NULL DEFAULT 0",
        _ => "BIGINT NOT NULL DEFAULT 0",
    }
}

fn bound(value: &RecordValue) -> SqlValue {
    match value {
        RecordValue::Text(text) => SqlValue::Text(text.clone()),
        RecordValue::Int(n) | RecordValue::Timestamp(n) | RecordValue::Enum(n) => SqlValue::Int(*n),
        RecordValue::Float(x) => SqlValue::Float(*x),
        RecordValue::Bool(b) => SqlValue::Bool(*b),
    }
}

async fn evaluation_agrees_with_the_compiled_sql(test_db: TestDb) {
    let db = Db::connect(test_db.url()).await.unwrap();
    let schema = tickets::schema("incidents").unwrap();
    let columns: Vec<String> = schema
        .fields
        .iter()
        .map(|f| format!("{} {}", f.column, column_type(f.kind)))
        .collect();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE condition_rows (id BIGINT PRIMARY KEY, {})",
        columns.join(", ")
    )))
    .execute(db.pool())
    .await
    .unwrap();

    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut snapshots: Vec<TicketSnapshot> = Vec::new();
    for id in 0..60 {
        let snapshot = tickets::incident_snapshot(&random_incident(&mut rng, id));
        let names: Vec<&str> = schema.fields.iter().map(|f| f.column).collect();
        let mut insert = SqlBuilder::new(format!(
            "INSERT INTO condition_rows (id, {}) VALUES (",
            names.join(", ")
        ));
        insert.push_bind(i64::try_from(id).unwrap());
        for field in schema.fields {
            insert
                .push(", ")
                .push_bind(bound(&snapshot.fields[field.name]));
        }
        insert.push(")");
        itsm_store::db::query(&insert)
            .execute(db.pool())
            .await
            .unwrap();
        snapshots.push(snapshot);
    }

    let mut checked = 0;
    let mut nonempty = 0;
    for _ in 0..400 {
        let text = random_filter(&mut rng, 3);
        let expr = parse_filter(&text).unwrap().unwrap();
        expr.check(schema).unwrap_or_else(|e| panic!("{text}: {e}"));
        let expected: BTreeSet<i64> = snapshots
            .iter()
            .enumerate()
            .filter(|(_, s)| expr.matches(schema, *s))
            .map(|(id, _)| i64::try_from(id).unwrap())
            .collect();
        let mut select = SqlBuilder::new("SELECT id FROM condition_rows WHERE ");
        expr.compile(schema, &mut select).unwrap();
        let rows = itsm_store::db::query(&select)
            .fetch_all(db.pool())
            .await
            .unwrap();
        let selected: BTreeSet<i64> = rows
            .iter()
            .map(|row| sqlx::Row::get::<i64, _>(row, 0))
            .collect();
        assert_eq!(
            selected,
            expected,
            "{} on {}: {text}",
            test_db.backend(),
            select.sql()
        );
        checked += 1;
        if !expected.is_empty() && expected.len() < snapshots.len() {
            nonempty += 1;
        }
    }
    assert_eq!(checked, 400);
    // The filters discriminate: most select some rows and not others.
    assert!(nonempty > 100, "only {nonempty} filters split the rows");
    db.close().await;
}
