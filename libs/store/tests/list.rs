//! List queries end to end on both backends: filter, order_by, caller
//! conditions and keyset pages, against what the rows say they should return.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use itsm_query::{Field, FieldKind, Schema, SqlBuilder};
use itsm_store::list::{ListRequest, ListSpec};
use itsm_store::page::PageTokens;
use itsm_store::{Db, db::query};
use itsm_testkit::{TestDb, backend_tests};
use sqlx::Row;

const PRIORITIES: &[(&str, i64)] = &[
    ("CRITICAL", 1),
    ("HIGH", 2),
    ("MODERATE", 3),
    ("LOW", 4),
    ("PLANNING", 5),
];

static SCHEMA: Schema = Schema {
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
            name: "create_time",
            column: "create_time",
            kind: FieldKind::Timestamp,
            sortable: true,
        },
        Field {
            name: "group",
            column: "assignment_group",
            kind: FieldKind::Text,
            sortable: true,
        },
    ],
};

static SPEC: ListSpec = ListSpec {
    schema: &SCHEMA,
    select: "SELECT id, title, priority, create_time, assignment_group FROM tickets",
    id_column: "id",
    default_order: "create_time desc",
};

#[derive(Debug, Clone, PartialEq)]
struct Ticket {
    id: i64,
    title: String,
    priority: i64,
    create_time: i64,
    group: String,
}

fn tickets() -> Vec<Ticket> {
    (1..=120)
        .map(|id: i64| Ticket {
            id,
            title: if id % 3 == 0 {
                format!("Disk FULL on db-{id}")
            } else {
                format!("printer {id}")
            },
            priority: id % 5 + 1,
            // Collisions on purpose: the id must break ties.
            create_time: 1_700_000_000_000_000 + (id / 4) * 1_000_000,
            group: if id % 2 == 0 {
                "network".into()
            } else {
                "desk".into()
            },
        })
        .collect()
}

async fn seeded(db: &TestDb) -> Db {
    let store = Db::connect(db.url()).await.unwrap();
    sqlx::query(
        "CREATE TABLE tickets (id BIGINT PRIMARY KEY, title TEXT NOT NULL, priority BIGINT NOT NULL, \
         create_time BIGINT NOT NULL, assignment_group TEXT NOT NULL)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    for t in tickets() {
        sqlx::query("INSERT INTO tickets VALUES ($1, $2, $3, $4, $5)")
            .bind(t.id)
            .bind(&t.title)
            .bind(t.priority)
            .bind(t.create_time)
            .bind(&t.group)
            .execute(store.pool())
            .await
            .unwrap();
    }
    store
}

async fn list_all(store: &Db, request: ListRequest<'_>, group: Option<&str>) -> Vec<i64> {
    let tokens = PageTokens::new(b"k");
    let mut ids = Vec::new();
    let mut token = String::new();
    loop {
        let request = ListRequest {
            page_token: &token,
            ..request
        };
        let plan = SPEC
            .plan(&request, &tokens, |sql: &mut SqlBuilder| {
                if let Some(group) = group {
                    sql.push("assignment_group = ").push_bind(group);
                }
            })
            .unwrap();
        let rows = query(plan.sql()).fetch_all(store.pool()).await.unwrap();
        let page = plan.finish(rows, &tokens).unwrap();
        assert!(page.rows.len() <= 7);
        ids.extend(page.rows.iter().map(|row| row.get::<i64, _>("id")));
        if page.next_page_token.is_empty() {
            return ids;
        }
        token = page.next_page_token;
    }
}

backend_tests!(
    filtered_ordered_pages_match_the_rows,
    default_order_is_newest_first_with_ties_broken_by_id,
    bad_filters_order_by_and_tokens_are_invalid_argument,
);

async fn filtered_ordered_pages_match_the_rows(db: TestDb) {
    let store = seeded(&db).await;
    let request = ListRequest {
        page_size: 7,
        filter: "priority <= HIGH AND title:\"disk\"",
        order_by: "priority, create_time desc",
        ..ListRequest::default()
    };
    let got = list_all(&store, request, Some("network")).await;

    let mut expected: Vec<Ticket> = tickets()
        .into_iter()
        .filter(|t| {
            t.priority <= 2 && t.title.to_lowercase().contains("disk") && t.group == "network"
        })
        .collect();
    // priority asc, create_time desc, then id asc (the tie-breaker follows the first term).
    expected.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then(b.create_time.cmp(&a.create_time))
            .then(a.id.cmp(&b.id))
    });
    let expected: Vec<i64> = expected.iter().map(|t| t.id).collect();
    assert!(expected.len() > 7, "spans pages");
    assert_eq!(got, expected, "{}", db.backend());
}

async fn default_order_is_newest_first_with_ties_broken_by_id(db: TestDb) {
    let store = seeded(&db).await;
    let got = list_all(
        &store,
        ListRequest {
            page_size: 7,
            ..ListRequest::default()
        },
        None,
    )
    .await;
    let mut expected = tickets();
    expected.sort_by(|a, b| b.create_time.cmp(&a.create_time).then(b.id.cmp(&a.id)));
    assert_eq!(got, expected.iter().map(|t| t.id).collect::<Vec<_>>());
}

async fn bad_filters_order_by_and_tokens_are_invalid_argument(db: TestDb) {
    let _store = seeded(&db).await;
    let tokens = PageTokens::new(b"k");
    let plan = |filter: &str, order_by: &str, page_token: &str| {
        let request = ListRequest {
            page_size: 5,
            filter,
            order_by,
            page_token,
        };
        SPEC.plan(&request, &tokens, |_: &mut SqlBuilder| {})
    };
    let error = plan("priority = URGENT", "", "").unwrap_err();
    assert_eq!(error.field_violations()[0].field, "filter");
    assert!(
        error.message().contains("at position"),
        "{}",
        error.message()
    );
    let error = plan("", "title", "").unwrap_err();
    assert_eq!(error.field_violations()[0].field, "order_by");
    let error = plan("", "", "forged").unwrap_err();
    assert_eq!(error.field_violations()[0].field, "page_token");

    // A token is only good for the query that issued it.
    let first = plan("group = \"desk\"", "", "").unwrap();
    let rows = query(first.sql()).fetch_all(_store.pool()).await.unwrap();
    let token = first.finish(rows, &tokens).unwrap().next_page_token;
    assert!(!token.is_empty());
    assert!(plan("group = \"desk\"", "", &token).is_ok());
    let error = plan("group = \"network\"", "", &token).unwrap_err();
    assert_eq!(error.field_violations()[0].field, "page_token");
}
