//! The harness starts and an unbuilt method answers (temporary; replaced by the API tests).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/mod.rs"]
mod support;

use itsm_testkit::{TestDb, backend_tests};

backend_tests!(the_server_starts);

async fn the_server_starts(db: TestDb) {
    let svc = support::start(&db).await;
    assert_eq!(svc.count("ci_classes").await, 0);
}
