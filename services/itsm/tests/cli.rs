//! The `itsm` binary from the outside: its help, its exit codes, `itsm dev`
//! coming up with every practice, and `itsm serve` draining on SIGTERM.
// Test helpers may unwrap and panic: that is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/process.rs"]
mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{
    connect, exit_code_within, itsm, keep_reading, output, serve, sigterm, wait_for_line,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

async fn reflected_services(channel: Channel) -> Vec<String> {
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        responses.next().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    let mut names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    names
}

#[tokio::test]
async fn help_names_every_command_and_practice() {
    let (code, stdout, _) = output(itsm().arg("--help")).await;
    assert_eq!(code, 0);
    for word in ["dev", "serve", "practices", "--config"] {
        assert!(stdout.contains(word), "--help lacks {word}:\n{stdout}");
    }
    let (code, stdout, _) = output(itsm().args(["serve", "--help"])).await;
    assert_eq!(code, 0);
    for practice in [
        "incidents",
        "problems",
        "changes",
        "requests",
        "cmdb",
        "sla",
        "knowledge",
    ] {
        assert!(
            stdout.contains(practice),
            "serve --help lacks {practice}:\n{stdout}"
        );
    }
}

#[tokio::test]
async fn practices_lists_each_service_name() {
    let (code, stdout, _) = output(itsm().arg("practices")).await;
    assert_eq!(code, 0);
    assert!(
        stdout.contains("incidents  itsm.incidents.v1.IncidentService"),
        "{stdout}"
    );
    assert!(
        stdout.contains("cmdb       itsm.cmdb.v1.CmdbService"),
        "{stdout}"
    );
    assert!(
        stdout.contains("identity   itsm.identity.v1.IdentityService"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 8);
}

#[tokio::test]
async fn a_bad_config_value_exits_2_with_one_line_naming_the_variable() {
    let (code, stdout, stderr) = output(
        itsm()
            .args(["serve", "incidents"])
            .env("ITSM_GRPC_ADDR", "nowhere"),
    )
    .await;
    assert_eq!(code, 2, "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(
        stderr.trim_end(),
        "itsm: ITSM_GRPC_ADDR: expected a socket address such as 0.0.0.0:50051, got \"nowhere\""
    );

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "shutdown_grace = \"soon\"\n").unwrap();
    let (code, _, stderr) =
        output(itsm().args(["serve", "sla", "--config"]).arg(file.path())).await;
    assert_eq!(code, 2);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("shutdown_grace in "), "{stderr}");
}

#[tokio::test]
async fn an_unknown_practice_is_refused_with_the_list() {
    let (code, _, stderr) = output(itsm().args(["serve", "billing"])).await;
    assert_eq!(code, 2);
    assert!(
        stderr.contains("incidents") && stderr.contains("knowledge"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_port_in_use_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let (code, _, stderr) =
        output(serve("incidents").env("ITSM_GRPC_ADDR", addr.to_string())).await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains(&format!("port {} is already in use", addr.port())),
        "{stderr}"
    );
}

#[tokio::test]
async fn dev_serves_every_practice_with_health_and_reflection() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("itsm-data");
    let started = Instant::now();
    let mut child = itsm()
        .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let grpc_line = wait_for_line(&mut lines, "gRPC").await;
    let addr = grpc_line.split_whitespace().nth(1).unwrap().to_owned();
    let logs = keep_reading(lines);
    let channel = connect(&addr).await;
    println!("itsm dev answered after {:?}", started.elapsed());
    for practice in [
        "incidents",
        "problems",
        "changes",
        "requests",
        "cmdb",
        "sla",
        "knowledge",
    ] {
        let file = data_dir.join(format!("{practice}.db"));
        assert!(file.is_file(), "{} is created and migrated", file.display());
    }

    assert_eq!(
        reflected_services(channel.clone()).await,
        [
            "grpc.health.v1.Health",
            "itsm.changes.v1.ChangeService",
            "itsm.cmdb.v1.CmdbService",
            "itsm.identity.v1.IdentityService",
            "itsm.incidents.v1.IncidentService",
            "itsm.knowledge.v1.KnowledgeService",
            "itsm.problems.v1.ProblemService",
            "itsm.requests.v1.RequestService",
            "itsm.sla.v1.SlaService",
        ]
    );
    let health = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "itsm.sla.v1.SlaService".to_owned(),
        })
        .await
        .unwrap();
    assert_eq!(health.into_inner().status, ServingStatus::Serving as i32);

    sigterm(&child);
    let stopping = Instant::now();
    let code = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "itsm dev did not exit within 30 s of SIGTERM; its output:\n{}",
                logs.text()
            )
        })
        .unwrap()
        .code();
    println!("itsm dev exited after {:?}", stopping.elapsed());
    assert_eq!(code, Some(0), "itsm dev output:\n{}", logs.text());
}

#[tokio::test]
async fn serve_turns_not_serving_then_drains_and_exits_0_on_sigterm() {
    let mut child = serve("incidents")
        .env("ITSM_GRPC_ADDR", "127.0.0.1:0")
        .env("ITSM_LOG_FORMAT", "json")
        .env("ITSM_SHUTDOWN_DELAY", "300ms")
        .env("ITSM_SHUTDOWN_GRACE", "5s")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = wait_for_line(&mut lines, "serving gRPC").await;
    assert!(line.starts_with('{'), "JSON logs in serve mode: {line}");
    let addr = line
        .split("\"addr\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    // Keep reading the logs so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let mut watch = HealthClient::new(connect(&addr).await)
        .watch(HealthCheckRequest {
            service: "itsm.incidents.v1.IncidentService".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.next().await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);

    sigterm(&child);
    let next = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    // A watcher that lets go is what a probe does; the drain then completes.
    drop(watch);
    assert_eq!(
        exit_code_within(&mut child, Duration::from_secs(10)).await,
        0
    );
}

#[tokio::test]
async fn health_command_reports_serving_and_fails_when_nothing_listens() {
    let data = tempfile::tempdir().unwrap();
    let mut child = itsm()
        .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let grpc_line = wait_for_line(&mut lines, "gRPC").await;
    let addr = grpc_line.split_whitespace().nth(1).unwrap().to_owned();
    let _logs = keep_reading(lines);

    let (code, stdout, _) = output(itsm().args([
        "health",
        "--addr",
        &addr,
        "--service",
        "itsm.cmdb.v1.CmdbService",
    ]))
    .await;
    assert_eq!((code, stdout.trim()), (0, "SERVING"));

    let (code, _, stderr) =
        output(itsm().args(["health", "--addr", &addr, "--service", "itsm.nope.v1.Nope"])).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("NotFound"), "{stderr}");
    sigterm(&child);
    exit_code_within(&mut child, Duration::from_secs(10)).await;

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let (code, _, stderr) =
        output(itsm().args(["health", "--timeout", "2s", "--addr", &closed_addr])).await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains(&format!("health check of {closed_addr} failed")),
        "{stderr}"
    );
}

#[tokio::test]
async fn migrate_brings_a_practice_database_up_to_date_and_needs_a_url() {
    let (code, _, stderr) = output(itsm().args(["migrate", "incidents"])).await;
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with("itsm: ITSM_DATABASE_URL is not set"),
        "{stderr}"
    );

    let db = itsm_testkit::TestDb::postgres().await;
    for _ in 0..2 {
        let (code, stdout, stderr) = output(
            itsm()
                .args(["migrate", "incidents"])
                .env("ITSM_DATABASE_URL", db.url()),
        )
        .await;
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(stdout.trim(), "incidents: schema is up to date");
    }
    let store = itsm_store::Db::connect(db.url()).await.unwrap();
    let waiting: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(waiting, 0, "platform tables exist");
    store.close().await;

    let (code, _, stderr) = output(
        itsm()
            .args(["migrate", "cmdb"])
            .env("ITSM_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none"),
    )
    .await;
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with("itsm: database: cannot connect to Postgres"),
        "{stderr}"
    );
}

#[tokio::test]
async fn serve_refuses_to_start_without_a_database_or_a_way_to_authenticate() {
    let (code, _, stderr) = output(itsm().args(["serve", "incidents"])).await;
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with("itsm: ITSM_DATABASE_URL is not set"),
        "{stderr}"
    );

    let (code, _, stderr) = output(serve("incidents").env_remove("ITSM_AUTH_HS256_SECRET")).await;
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with("itsm: no way to authenticate callers"),
        "{stderr}"
    );

    let (code, _, stderr) = output(serve("incidents").env("ITSM_AUTH_HS256_SECRET", "short")).await;
    assert_eq!(code, 2);
    assert!(
        stderr.contains(
            "ITSM_AUTH_HS256_SECRET: expected a secret of at least 32 characters, got [redacted]"
        ),
        "{stderr}"
    );
}

#[tokio::test]
async fn dev_prints_an_admin_token_and_token_mints_more() {
    use itsm_proto::itsm::identity::v1::ListApiKeysRequest;
    use itsm_proto::itsm::identity::v1::identity_service_client::IdentityServiceClient;

    let data = tempfile::tempdir().unwrap();
    let (code, _, stderr) = output(
        itsm()
            .args(["token", "--role", "agent", "--data-dir"])
            .arg(data.path()),
    )
    .await;
    assert_eq!(code, 2, "no dev key yet");
    assert!(stderr.starts_with("itsm: no signing key"), "{stderr}");

    let support::Dev {
        mut child,
        addr,
        admin_token: admin,
    } = support::start_dev(data.path()).await;
    let mut client = IdentityServiceClient::new(connect(&addr).await);

    let anonymous = client
        .list_api_keys(ListApiKeysRequest::default())
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);

    let call = |token: &str| {
        let mut request = tonic::Request::new(ListApiKeysRequest::default());
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        request
    };
    client
        .list_api_keys(call(&admin))
        .await
        .expect("the printed admin token works");

    let (code, agent, _) = output(
        itsm()
            .args(["token", "--role", "agent", "--subject", "ada", "--data-dir"])
            .arg(data.path()),
    )
    .await;
    assert_eq!(code, 0);
    let denied = client.list_api_keys(call(agent.trim())).await.unwrap_err();
    assert_eq!(
        denied.code(),
        tonic::Code::PermissionDenied,
        "agents may not list API keys"
    );
    let (code, auditor, _) = output(
        itsm()
            .args(["token", "--role", "auditor", "--data-dir"])
            .arg(data.path()),
    )
    .await;
    assert_eq!(code, 0);
    client
        .list_api_keys(call(auditor.trim()))
        .await
        .expect("auditors read");

    let (code, _, stderr) = output(
        itsm()
            .args(["token", "--role", "wizard", "--data-dir"])
            .arg(data.path()),
    )
    .await;
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with("itsm: unknown role \"wizard\"; roles are: requester, agent"),
        "{stderr}"
    );

    sigterm(&child);
    assert_eq!(
        exit_code_within(&mut child, Duration::from_secs(10)).await,
        0
    );
}
