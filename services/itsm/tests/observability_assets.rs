//! The Grafana dashboards and Prometheus rules in deploy/ query only metrics
//! the binary really exposes.
//!
//! `itsm dev` (every practice and the gateway in one process) and two served
//! practices on Redis (`itsm serve cmdb`, `itsm serve incidents` asking the
//! CMDB over gRPC: the Redis and client-call metrics `itsm dev` cannot have)
//! get traffic that makes their metric families appear: incidents through
//! the gateway over gRPC and REST until the rate limit refuses one, failing
//! calls, a CI, an SLA that breaches after two seconds. Their /metrics pages
//! are then handed to deploy/check_observability.py, the one place that
//! extracts metric names from PromQL (with an independent PromQL parser), so
//! a panel or alert naming a metric none of the pages has fails this test.
//!
//! Needs python3 with PyYAML, promql-parser and prometheus-client, which
//! scripts/test installs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/process.rs"]
mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use itsm_proto::itsm::cmdb::v1 as cmdb;
use itsm_proto::itsm::cmdb::v1::cmdb_service_client::CmdbServiceClient;
use itsm_proto::itsm::identity::v1 as identity;
use itsm_proto::itsm::identity::v1::identity_service_client::IdentityServiceClient;
use itsm_proto::itsm::incidents::v1 as incidents;
use itsm_proto::itsm::incidents::v1::incident_service_client::IncidentServiceClient;
use itsm_proto::itsm::sla::v1 as sla;
use itsm_proto::itsm::sla::v1::sla_service_client::SlaServiceClient;
use support::{
    SECRET, Tail, admin_token, authorized, ci_routed_to_dba, connect, itsm, keep_reading, serve,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tonic::Code;

/// How long the families may take to appear: the SLA target (2 s), the
/// timer, relays, consumers and the business gauges' sampling, on a loaded
/// 2-core CI machine.
const WITHIN: Duration = Duration::from_secs(120);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The first `host:port` in `line` (a banner line or a JSON log line).
fn socket_addr_in(line: &str) -> Option<String> {
    line.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
        .map(|word| word.trim_matches(':'))
        .find(|word| word.parse::<std::net::SocketAddr>().is_ok())
        .map(str::to_owned)
}

/// A started `itsm` process: the addresses its output announced.
struct Running {
    child: Child,
    /// Marker -> the address on the first line holding it.
    addrs: HashMap<&'static str, String>,
    tail: Tail,
}

impl Running {
    fn addr(&self, marker: &str) -> &str {
        &self.addrs[marker]
    }

    async fn stop(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// Spawns `command` with metrics on a free port and reads its output until a
/// line with an address was seen for every marker.
async fn start(mut command: Command, markers: &[&'static str]) -> Running {
    let mut child = command
        .env("ITSM_METRICS_ADDR", "127.0.0.1:0")
        // The business gauges are sampled every 15 s by default.
        .env("ITSM_METRICS_SAMPLE_EVERY", "1s")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addrs = HashMap::new();
    let mut seen = Vec::new();
    let deadline = Duration::from_secs(30);
    tokio::time::timeout(deadline, async {
        while addrs.len() < markers.len() {
            let Some(line) = lines.next_line().await.unwrap() else {
                panic!(
                    "output closed before {markers:?} were announced:\n{}",
                    seen.join("\n")
                );
            };
            for marker in markers {
                if !addrs.contains_key(marker)
                    && line.contains(marker)
                    && let Some(addr) = socket_addr_in(&line)
                {
                    addrs.insert(*marker, addr);
                }
            }
            seen.push(line);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{markers:?} not all announced within {deadline:?}"));
    let tail = keep_reading(lines);
    Running { child, addrs, tail }
}

/// `GET path` over HTTP/1.1: status and body (chunked bodies decoded).
async fn get(addr: &str, path: &str, token: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = if token.is_empty() {
        String::new()
    } else {
        format!("Authorization: Bearer {token}\r\n")
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: itsm\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    (
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        },
    )
}

fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return body;
        }
        body.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}

/// The dev platform's traffic, through its gateway: a group, an SLA that
/// breaches after two seconds, incidents (two priorities), a CI read twice,
/// calls that fail, and REST reads until the rate limit refuses one.
async fn drive_dev(gateway: &str, token: &str) {
    let channel = connect(gateway).await;
    IdentityServiceClient::new(channel.clone())
        .create_group(authorized(
            identity::CreateGroupRequest {
                group: Some(identity::Group {
                    display_name: "Network operations".into(),
                    manager: "maya".into(),
                    members: vec!["nina".into()],
                    ..identity::Group::default()
                }),
                group_id: "noc".into(),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .unwrap();
    SlaServiceClient::new(channel.clone())
        .create_sla_definition(authorized(
            sla::CreateSlaDefinitionRequest {
                sla_definition: Some(sla::SlaDefinition {
                    display_name: "Resolve within 2 seconds".into(),
                    kind: sla::SlaKind::Sla as i32,
                    ticket_type: "incidents".into(),
                    target: Some(prost_types::Duration {
                        seconds: 2,
                        nanos: 0,
                    }),
                    stop_condition: "state = RESOLVED".into(),
                    enabled: true,
                    ..sla::SlaDefinition::default()
                }),
                sla_definition_id: "fast-resolution".into(),
                request_id: String::new(),
                validate_only: false,
            },
            token,
        ))
        .await
        .unwrap();
    let mut incidents_client = IncidentServiceClient::new(channel.clone());
    for (title, impact, urgency) in [("Core switch down", 1, 1), ("Typo on intranet", 3, 3)] {
        incidents_client
            .create_incident(authorized(
                incidents::CreateIncidentRequest {
                    incident: Some(incidents::Incident {
                        title: title.into(),
                        caller: "ada".into(),
                        impact,
                        urgency,
                        assignment_group: "noc".into(),
                        ..incidents::Incident::default()
                    }),
                    request_id: String::new(),
                },
                token,
            ))
            .await
            .unwrap();
    }
    // Failing calls: the caller's mistakes, counted by code.
    let missing = incidents_client
        .get_incident(authorized(
            incidents::GetIncidentRequest {
                name: "incidents/INC9999999".into(),
            },
            token,
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    let invalid = incidents_client
        .create_incident(authorized(
            incidents::CreateIncidentRequest {
                incident: Some(incidents::Incident::default()),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument, "{invalid:?}");

    let mut cis = CmdbServiceClient::new(channel);
    let ci = cis
        .create_ci(authorized(
            cmdb::CreateCiRequest {
                ci: Some(cmdb::Ci {
                    ci_class: "classes/database".into(),
                    display_name: "orders-db".into(),
                    ..cmdb::Ci::default()
                }),
                request_id: String::new(),
                validate_only: false,
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner();
    for _ in 0..2 {
        cis.get_ci(authorized(
            cmdb::GetCiRequest {
                name: ci.name.clone(),
                ..cmdb::GetCiRequest::default()
            },
            token,
        ))
        .await
        .unwrap();
    }

    // REST through the gateway, until its read limit (ITSM_GATEWAY_RATE_READ) refuses a call.
    let mut limited = false;
    for _ in 0..200 {
        let (status, body) = get(gateway, "/v1/incidents", token).await;
        match status {
            200 => {}
            429 => {
                limited = true;
                break;
            }
            other => panic!("GET /v1/incidents answered {other}: {body}"),
        }
    }
    assert!(limited, "200 reads in a row and no 429 from the gateway");
}

/// The served pair's traffic: a CI supported by `dba`, a rule routing
/// incidents to their CI's support group, and an incident on that CI, so
/// the incidents service asks the CMDB over gRPC.
async fn drive_served(cmdb_addr: &str, incidents_addr: &str, token: &str) {
    let ci = ci_routed_to_dba(
        connect(cmdb_addr).await,
        connect(incidents_addr).await,
        "billing-db",
        token,
    )
    .await;
    let mut client = IncidentServiceClient::new(connect(incidents_addr).await);
    let created = client
        .create_incident(authorized(
            incidents::CreateIncidentRequest {
                incident: Some(incidents::Incident {
                    title: "Billing slow".into(),
                    caller: "ada".into(),
                    impact: 2,
                    urgency: 2,
                    configuration_item: ci,
                    ..incidents::Incident::default()
                }),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.assignment_group, "dba", "the CMDB was not asked");
}

/// Scrapes every page into `dir`, one file each; returns the files.
async fn scrape(pages: &[(&str, &str)], dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for (name, addr) in pages {
        let (status, body) = get(addr, "/metrics", "").await;
        assert_eq!(status, 200, "GET /metrics on {name} ({addr}): {body}");
        let file = dir.join(format!("{name}.prom"));
        std::fs::write(&file, body).unwrap();
        files.push(file);
    }
    files
}

/// Runs deploy/check_observability.py on `pages`: (passed, its report).
fn check(pages: &[PathBuf]) -> (bool, String) {
    let mut command = std::process::Command::new("python3");
    command.arg(repo().join("deploy/check_observability.py"));
    for page in pages {
        command.arg("--metrics").arg(page);
    }
    let output = command.output().unwrap_or_else(|e| {
        panic!("cannot run python3 (needed by deploy/check_observability.py): {e}")
    });
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !report.contains("is required"),
        "the checker lacks a Python package (scripts/test installs them): {report}"
    );
    (output.status.success(), report)
}

#[tokio::test]
async fn dashboards_and_alerts_name_only_metrics_the_binary_exposes() {
    let data = tempfile::tempdir().unwrap();
    let pages_dir = tempfile::tempdir().unwrap();
    let mut dev = itsm();
    dev.args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env("ITSM_AUTH_HS256_SECRET", SECRET)
        .env("ITSM_GATEWAY_RATE_READ", "5:10");
    let dev = start(dev, &["gRPC", "gateway", "metrics"]).await;

    let prefix = itsm_testkit::unique_prefix();
    let practice = |name: &str| {
        let mut command = serve(name);
        command
            .env("ITSM_GRPC_ADDR", "127.0.0.1:0")
            .env("ITSM_LOG_FORMAT", "json")
            .env("ITSM_REDIS_URL", itsm_testkit::redis_url())
            .env("ITSM_REDIS_PREFIX", &prefix);
        command
    };
    let cmdb = start(practice("cmdb"), &["serving gRPC", "metrics"]).await;
    let mut incidents = practice("incidents");
    incidents.env(
        "ITSM_CMDB_ADDR",
        format!("http://{}", cmdb.addr("serving gRPC")),
    );
    let incidents = start(incidents, &["serving gRPC", "metrics"]).await;

    let token = admin_token();
    drive_dev(dev.addr("gateway"), &token).await;
    drive_served(
        cmdb.addr("serving gRPC"),
        incidents.addr("serving gRPC"),
        &token,
    )
    .await;

    let pages = [
        ("dev", dev.addr("metrics")),
        ("cmdb", cmdb.addr("metrics")),
        ("incidents", incidents.addr("metrics")),
    ];
    // Poll: gauges are sampled, the SLA breaches after 2 s, consumers lag behind.
    let deadline = Instant::now() + WITHIN;
    let files = loop {
        let files = scrape(&pages, pages_dir.path()).await;
        let (passed, report) = check(&files);
        if passed {
            break files;
        }
        assert!(
            Instant::now() < deadline,
            "after {WITHIN:?} the dashboards and rules still name metrics none of the pages has:\n\
             {report}\n--- itsm dev:\n{}\n--- itsm serve cmdb:\n{}\n--- itsm serve incidents:\n{}",
            dev.tail.text(),
            cmdb.tail.text(),
            incidents.tail.text()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    };

    // The check can fail: the same pages without one family the incidents
    // dashboard uses are refused, naming it.
    for file in &files {
        let page = std::fs::read_to_string(file).unwrap();
        let without: String = page
            .lines()
            .filter(|line| !line.contains("itsm_incidents_open"))
            .map(|line| format!("{line}\n"))
            .collect();
        std::fs::write(file, without).unwrap();
    }
    let (passed, report) = check(&files);
    assert!(
        !passed,
        "pages without itsm_incidents_open passed: {report}"
    );
    assert!(report.contains("no itsm_incidents_open;"), "{report}");

    for running in [dev, cmdb, incidents] {
        running.stop().await;
    }
}
