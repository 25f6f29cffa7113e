//! Committed events leave the outbox: `itsm serve` relays a practice's
//! outbox to Redis Streams, `itsm dev` to its in-process bus.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/process.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use itsm_proto::itsm::incidents::v1::incident_service_client::IncidentServiceClient;
use itsm_proto::itsm::incidents::v1::{CreateIncidentRequest, Incident};
use sqlx::Connection;
use support::{admin_token, connect, serve, start, start_dev};
use tonic::Request;

async fn open_incident(addr: &str, bearer: &str) {
    let mut client = IncidentServiceClient::new(connect(addr).await);
    let mut request = Request::new(CreateIncidentRequest {
        incident: Some(Incident {
            title: "Mail queue stuck".into(),
            caller: "ada".into(),
            impact: 2,
            urgency: 2,
            ..Incident::default()
        }),
        request_id: String::new(),
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {bearer}").parse().unwrap());
    client.create_incident(request).await.unwrap();
}

/// `(rows, unsent rows)` of the outbox in the SQLite database at `file`.
async fn outbox(file: &Path) -> (i64, i64) {
    let url = format!("sqlite://{}", file.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let counts = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN sent_at IS NULL THEN 1 ELSE 0 END), 0) FROM outbox",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    counts
}

/// Waits until the outbox at `file` holds events and all are sent.
async fn wait_all_sent(file: &Path) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (rows, unsent) = outbox(file).await;
        if rows > 0 && unsent == 0 {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "{unsent} of {rows} events still unsent after 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn serve_relays_committed_events_to_redis_streams() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("incidents.db");
    let mut command = serve("incidents");
    command
        .env("ITSM_DATABASE_URL", format!("sqlite://{}", file.display()))
        .env("ITSM_REDIS_URL", itsm_testkit::redis_url());
    let mut served = start(command).await;
    open_incident(&served.addr, &admin_token()).await;
    assert!(wait_all_sent(&file).await >= 1);
    served.child.kill().await.unwrap();
}

#[tokio::test]
async fn dev_relays_each_practice_outbox_to_its_in_process_bus() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = start_dev(dir.path()).await;
    open_incident(&dev.addr, &dev.admin_token).await;
    assert!(wait_all_sent(&dir.path().join("incidents.db")).await >= 1);
    dev.child.kill().await.unwrap();
}

/// The whole path in one process: an incident's event leaves its outbox, the
/// SLA service consumes it from the bus and starts the clock of a matching
/// definition.
#[tokio::test]
async fn dev_starts_an_sla_clock_from_an_incident_event() {
    use itsm_proto::itsm::sla::v1 as sla;
    use itsm_proto::itsm::sla::v1::sla_service_client::SlaServiceClient;

    let dir = tempfile::tempdir().unwrap();
    let mut dev = start_dev(dir.path()).await;
    let channel = connect(&dev.addr).await;
    let mut slas = SlaServiceClient::new(channel);
    let mut request = Request::new(sla::CreateSlaDefinitionRequest {
        sla_definition: Some(sla::SlaDefinition {
            display_name: "Resolve within 8 hours".into(),
            kind: sla::SlaKind::Sla as i32,
            ticket_type: "incidents".into(),
            target: Some(prost_types::Duration {
                seconds: 8 * 3600,
                nanos: 0,
            }),
            stop_condition: "state = RESOLVED".into(),
            enabled: true,
            ..sla::SlaDefinition::default()
        }),
        sla_definition_id: "resolution".into(),
        request_id: String::new(),
        validate_only: false,
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", dev.admin_token).parse().unwrap(),
    );
    slas.create_sla_definition(request).await.unwrap();

    open_incident(&dev.addr, &dev.admin_token).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut request = Request::new(sla::ListTaskSlasRequest {
            page_size: 10,
            page_token: String::new(),
            filter: "ticket = \"incidents/INC0000001\"".into(),
            order_by: String::new(),
        });
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", dev.admin_token).parse().unwrap(),
        );
        let found = slas.list_task_slas(request).await.unwrap().into_inner();
        if let Some(clock) = found.task_slas.first() {
            assert_eq!(clock.sla_definition, "slaDefinitions/resolution");
            assert_eq!(clock.state, sla::TaskSlaState::InProgress as i32);
            break;
        }
        assert!(Instant::now() < deadline, "no task SLA after 15 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    dev.child.kill().await.unwrap();
}
