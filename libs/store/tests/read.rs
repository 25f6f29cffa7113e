//! Read connections (`Db::read`) against real PostgreSQL and SQLite: reused
//! when done, checked when dropped mid-use, never handing out a broken one,
//! bounded in number, closed with the `Db`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use itsm_store::{Backend, Db, DbOptions};
use itsm_testkit::{TestDb, backend_tests};
use sqlx::Executor;

backend_tests!(
    a_done_read_connection_is_reused_as_it_is,
    a_read_connection_dropped_mid_use_is_checked_before_reuse,
    read_connections_are_bounded_and_wait_their_turn,
    closing_the_db_closes_its_read_connections,
);

#[tokio::test]
async fn a_connection_broken_under_a_reader_is_replaced_postgres() {
    a_connection_broken_under_a_reader_is_replaced(TestDb::postgres().await).await;
}

/// 8 connections: 2 for reads, 6 for the pool.
async fn connect(db: &TestDb, acquire_timeout: Duration) -> Db {
    Db::connect_with(
        db.url(),
        DbOptions {
            max_connections: 8,
            acquire_timeout,
        },
    )
    .await
    .unwrap()
}

/// Waits until `db` has `parked` read connections parked and none in use:
/// a dropped connection is parked once its check answers, which waits for
/// the cancelled statement (2 s) and may take longer on a loaded machine.
async fn settled(db: &Db, parked: u32) {
    for _ in 0..1000 {
        let (_, now_parked, in_use) = db.read_connections();
        if now_parked == parked && in_use == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "read connections never settled at {parked} parked: {:?}",
        db.read_connections()
    );
}

/// The server's id of the session behind a connection.
async fn session(db: &Db, conn: &mut sqlx::AnyConnection) -> String {
    let sql = match db.backend() {
        Backend::Postgres => "SELECT CAST(pg_backend_pid() AS TEXT)",
        // The temp schema is per connection: a table made in one is invisible to others.
        Backend::Sqlite => "SELECT COALESCE((SELECT name FROM temp.sqlite_master LIMIT 1), '')",
    };
    sqlx::query_scalar(sql).fetch_one(conn).await.unwrap()
}

async fn a_done_read_connection_is_reused_as_it_is(db: TestDb) {
    let store = connect(&db, Duration::from_secs(5)).await;
    assert_eq!(store.read_connections(), (2, 0, 0));
    let mut conn = store.read().await.unwrap();
    if store.backend() == Backend::Sqlite {
        conn.execute("CREATE TEMP TABLE marker_first (x)")
            .await
            .unwrap();
    }
    let first = session(&store, &mut conn).await;
    assert_eq!(store.read_connections(), (2, 0, 1));
    conn.done();
    assert_eq!(store.read_connections(), (2, 1, 0));

    let mut again = store.read().await.unwrap();
    assert_eq!(session(&store, &mut again).await, first);
    again.done();
    assert_eq!(store.read_connections(), (2, 1, 0));
}

async fn a_read_connection_dropped_mid_use_is_checked_before_reuse(db: TestDb) {
    let store = connect(&db, Duration::from_secs(5)).await;
    // A statement cancelled halfway (the caller's deadline passed): the
    // connection is dropped without `done`, pinged in the background, parked.
    let mut conn = store.read().await.unwrap();
    let slow = match store.backend() {
        Backend::Postgres => "SELECT pg_sleep(2)",
        Backend::Sqlite => {
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000000) \
             SELECT COUNT(*) FROM n"
        }
    };
    let cancelled = tokio::time::timeout(Duration::from_millis(100), conn.execute(slow)).await;
    assert!(cancelled.is_err(), "the statement finished within 100 ms");
    drop(conn);
    // Not parked as it is: held (in use) until its check answers, which is
    // after the cancelled statement ends.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(store.read_connections(), (2, 0, 1), "parked unchecked");
    settled(&store, 1).await;

    // What it hands out next answers its own statement, not the cancelled one's.
    let mut conn = store.read().await.unwrap();
    let answer: i64 = sqlx::query_scalar("SELECT 42")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(answer, 42);
    conn.done();
}

async fn a_connection_broken_under_a_reader_is_replaced(db: TestDb) {
    let store = connect(&db, Duration::from_secs(5)).await;
    let mut conn = store.read().await.unwrap();
    let pid = session(&store, &mut conn).await;
    conn.done();

    // The server ends the parked session (a restart, a failover, an admin).
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend(CAST($1 AS INT))")
        .bind(&pid)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(killed);

    // The next reader's statement fails; it drops the connection (no `done`)...
    let mut conn = store.read().await.unwrap();
    let failed = sqlx::query_scalar::<_, i64>("SELECT 1")
        .fetch_one(&mut *conn)
        .await;
    assert!(failed.is_err(), "a terminated session answered");
    drop(conn);
    // ...whose check fails, so it is closed, not parked.
    settled(&store, 0).await;

    // The one after gets a new session that works.
    let mut conn = store.read().await.unwrap();
    let fresh = session(&store, &mut conn).await;
    assert_ne!(fresh, pid);
    conn.done();
}

async fn read_connections_are_bounded_and_wait_their_turn(db: TestDb) {
    let store = connect(&db, Duration::from_millis(300)).await;
    let first = store.read().await.unwrap();
    let second = store.read().await.unwrap();
    assert_eq!(store.read_connections(), (2, 0, 2));

    // A third waits, and gives up after the acquire timeout as the pool does.
    let error = store.read().await.unwrap_err();
    assert!(
        error.to_string().contains("timed out"),
        "a third reader got: {error}"
    );

    // It gets one as soon as one is done.
    let store_for_third = store.clone();
    let third = tokio::spawn(async move {
        let mut conn = store_for_third.read().await.unwrap();
        let one: i64 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        conn.done();
        one
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    first.done();
    assert_eq!(third.await.unwrap(), 1);
    second.done();
    assert_eq!(store.read_connections(), (2, 2, 0));
}

async fn closing_the_db_closes_its_read_connections(db: TestDb) {
    let store = connect(&db, Duration::from_secs(5)).await;
    let conn = store.read().await.unwrap();
    conn.done();
    assert_eq!(store.read_connections(), (2, 1, 0));
    store.close().await;
    assert_eq!(store.read_connections().1, 0);
    let error = store.read().await.unwrap_err();
    assert!(error.to_string().contains("closed"), "after close: {error}");
}
