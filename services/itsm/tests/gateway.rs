//! The gateway as the binary runs it: in front of `itsm dev` (gRPC and REST
//! on its own port, printed in the banner) and `itsm serve gateway`
//! (configured by ITSM_GATEWAY_*, a bad value named at start-up).
// Test helpers may unwrap and panic: that is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/process.rs"]
mod support;

use std::process::Stdio;
use std::time::Duration;

use itsm_proto::itsm::incidents::v1 as pb;
use itsm_proto::itsm::incidents::v1::incident_service_client::IncidentServiceClient;
use support::{connect, exit_code_within, itsm, output, sigterm, wait_for_line};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// `GET path` over HTTP/1.1 with a bearer token: status and body.
async fn get(addr: &str, path: &str, token: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: itsm\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

#[tokio::test]
async fn dev_serves_grpc_and_rest_through_its_gateway() {
    let data = tempfile::tempdir().unwrap();
    let mut child = itsm()
        .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let gateway = wait_for_line(&mut lines, "  gateway ")
        .await
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    let token = wait_for_line(&mut lines, "export ITSM_TOKEN=").await;
    let token = token
        .trim()
        .trim_start_matches("export ITSM_TOKEN=")
        .to_owned();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let mut client = IncidentServiceClient::new(connect(&gateway).await);
    let mut request = tonic::Request::new(pb::CreateIncidentRequest {
        incident: Some(pb::Incident {
            title: "Printer on fire".to_owned(),
            impact: 2,
            urgency: 2,
            caller: "ada".to_owned(),
            ..pb::Incident::default()
        }),
        request_id: "dev-gateway-1".to_owned(),
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let created = client.create_incident(request).await.unwrap().into_inner();

    let (status, body) = get(&gateway, "/v1/incidents", &token).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&created.name), "{body}");
    let (status, body) = get(&gateway, "/readyz", "").await;
    assert_eq!(status, 200, "{body}");

    sigterm(&child);
    assert_eq!(
        exit_code_within(&mut child, Duration::from_secs(10)).await,
        0
    );
}

#[tokio::test]
async fn serve_gateway_names_a_bad_backend_setting() {
    let serve_gateway = |backends: &str| {
        let mut command = itsm();
        command
            .args(["serve", "gateway"])
            .env("ITSM_AUTH_HS256_SECRET", support::SECRET)
            .env("ITSM_GATEWAY_ADDR", "127.0.0.1:0")
            .env("ITSM_GATEWAY_BACKENDS", backends);
        command
    };
    let (code, _, stderr) = output(&mut serve_gateway("incidents=ftp://x:1")).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with("itsm: ITSM_GATEWAY_BACKENDS: expected"),
        "{stderr}"
    );
    let (code, _, stderr) = output(&mut serve_gateway("incidentz=http://x:1")).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("\"incidentz\""), "{stderr}");
    let (code, _, stderr) = output(&mut serve_gateway("")).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("ITSM_GATEWAY_BACKENDS is empty"),
        "{stderr}"
    );
}

#[tokio::test]
async fn serve_gateway_reports_a_down_backend_on_readiness_and_drains() {
    let mut child = itsm()
        .args(["serve", "gateway"])
        .env("ITSM_AUTH_HS256_SECRET", support::SECRET)
        .env("ITSM_GATEWAY_ADDR", "127.0.0.1:0")
        // Nothing listens on port 1.
        .env("ITSM_GATEWAY_BACKENDS", "incidents=http://127.0.0.1:1")
        .env("ITSM_GATEWAY_PROBE_EVERY", "200ms")
        .env("ITSM_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = wait_for_line(&mut lines, "gateway started").await;
    let addr = line
        .split("\"addr\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let (status, body) = get(&addr, "/readyz", "").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"name\":\"incidents\""), "{body}");
    let (status, _) = get(&addr, "/healthz", "").await;
    assert_eq!(status, 200);

    sigterm(&child);
    assert_eq!(
        exit_code_within(&mut child, Duration::from_secs(10)).await,
        0
    );
}
