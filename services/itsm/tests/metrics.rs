//! `/metrics` of the real binary, scraped over HTTP and read with an
//! independent parser of the Prometheus text format (the Python
//! `prometheus_client`, which scripts/test installs): `itsm serve incidents`
//! and `itsm dev` expose the RPC, pool, business and build metrics with the
//! names, types and labels the dashboards and alerts use.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/process.rs"]
mod support;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use itsm_proto::itsm::incidents::v1::incident_service_client::IncidentServiceClient;
use itsm_proto::itsm::incidents::v1::{CreateIncidentRequest, GetIncidentRequest, Incident};
use support::{admin_token, authorized, connect, serve, wait_for_line};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// One sample: its full name (`..._bucket`, `..._count`...), labels, value.
#[derive(Debug, Clone, serde::Deserialize)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// One metric family as the parser read it.
#[derive(Debug, Clone, serde::Deserialize)]
struct Family {
    #[serde(rename = "type")]
    kind: String,
    samples: Vec<Sample>,
}

/// A scrape: the families by name (the parser's names: counters lose `_total`).
#[derive(Debug)]
struct Scrape {
    families: BTreeMap<String, Family>,
}

impl Scrape {
    fn family(&self, name: &str, kind: &str) -> &Family {
        let family = self
            .families
            .get(name)
            .unwrap_or_else(|| panic!("no family {name}; have {:?}", self.families.keys()));
        assert_eq!(family.kind, kind, "type of {name}");
        family
    }

    /// The value of the sample `name` whose labels include `labels`.
    fn value(&self, family: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.families.get(family)?.samples.iter().find_map(|s| {
            (s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
            .then_some(s.value)
        })
    }
}

/// Parses exposition text with `prometheus_client.parser` (not our code).
fn parse(text: &str) -> Scrape {
    const SCRIPT: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for f in text_string_to_metric_families(sys.stdin.read()):
    out[f.name] = {"type": f.type, "samples": [
        {"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]}
print(json.dumps(out))
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed to parse /metrics (scripts/test installs prometheus_client)");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the Prometheus parser refused the page: {}\n--- page ---\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    Scrape {
        families: serde_json::from_slice(&output.stdout).unwrap(),
    }
}

/// A plain HTTP/1.1 GET: `(status, content type, body)`.
async fn get(addr: &str, path: &str) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, content_type, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

async fn scrape(addr: &str) -> Scrape {
    let (status, content_type, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    parse(&body)
}

/// Scrapes until `ready` holds (gauges are sampled periodically).
async fn scrape_until(addr: &str, what: &str, ready: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = scrape(addr).await;
        if ready(&page) {
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not seen within 30 s: {page:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The value of `"key":"..."` in a JSON log line.
fn json_field(line: &str, key: &str) -> String {
    line.split(&format!("\"{key}\":\""))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        .to_owned()
}

#[tokio::test]
async fn serve_exposes_rpc_pool_business_and_build_metrics() {
    let mut child = serve("incidents")
        .env("ITSM_GRPC_ADDR", "127.0.0.1:0")
        .env("ITSM_METRICS_ADDR", "127.0.0.1:0")
        .env("ITSM_METRICS_SAMPLE_EVERY", "200ms")
        .env("ITSM_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let metrics = json_field(&wait_for_line(&mut lines, "serving metrics").await, "addr");
    let grpc = json_field(&wait_for_line(&mut lines, "serving gRPC").await, "addr");
    let _tail = support::keep_reading(lines);

    // Nothing but /metrics is served there.
    assert_eq!(get(&metrics, "/healthz").await.0, 404);

    let token = admin_token();
    let mut incidents = IncidentServiceClient::new(connect(&grpc).await);
    let mut priorities = BTreeMap::<String, f64>::new();
    for (impact, urgency) in [(1, 1), (1, 1), (3, 3)] {
        let created = incidents
            .create_incident(authorized(
                CreateIncidentRequest {
                    incident: Some(Incident {
                        title: "Mail queue stuck".into(),
                        caller: "ada".into(),
                        impact,
                        urgency,
                        ..Incident::default()
                    }),
                    request_id: String::new(),
                },
                &token,
            ))
            .await
            .unwrap()
            .into_inner();
        *priorities
            .entry(format!("P{}", created.priority))
            .or_default() += 1.0;
    }
    let missing = incidents
        .get_incident(authorized(
            GetIncidentRequest {
                name: "incidents/INC9999999".into(),
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    let duration = "itsm_rpc_server_duration_seconds";
    let service = "itsm.incidents.v1.IncidentService";
    let page = scrape_until(&metrics, "open incidents by priority", |page| {
        priorities.iter().all(|(priority, n)| {
            page.value(
                "itsm_incidents_open",
                "itsm_incidents_open",
                &[("priority", priority)],
            ) == Some(*n)
        })
    })
    .await;

    // The RPC histogram: one series per method and code, real buckets.
    let histogram = page.family(duration, "histogram");
    let count = |method: &str, code: &str| {
        page.value(
            duration,
            &format!("{duration}_count"),
            &[("service", service), ("method", method), ("code", code)],
        )
    };
    assert_eq!(count("CreateIncident", "OK"), Some(3.0));
    assert_eq!(count("GetIncident", "NOT_FOUND"), Some(1.0));
    assert_eq!(count("GetIncident", "OK"), None);
    let buckets: Vec<&Sample> = histogram
        .samples
        .iter()
        .filter(|s| {
            s.name.ends_with("_bucket")
                && s.labels.get("method").map(String::as_str) == Some("GetIncident")
        })
        .collect();
    assert!(buckets.len() > 10, "{buckets:?}");
    assert!(buckets.iter().any(|s| s.labels["le"] == "0.0005"));
    assert!(
        buckets
            .iter()
            .any(|s| s.labels["le"] == "+Inf" && s.value == 1.0)
    );

    // Nothing is in flight between calls.
    page.family("itsm_rpc_server_in_flight", "gauge");
    assert_eq!(
        page.value(
            "itsm_rpc_server_in_flight",
            "itsm_rpc_server_in_flight",
            &[("service", service)]
        ),
        Some(0.0)
    );

    // Every priority is present, those with no open incident at 0.
    let open = page.family("itsm_incidents_open", "gauge");
    let labels: Vec<&str> = open
        .samples
        .iter()
        .map(|s| s.labels["priority"].as_str())
        .collect();
    assert_eq!(labels.len(), 5, "{labels:?}");
    for p in ["P1", "P2", "P3", "P4", "P5"] {
        assert!(labels.contains(&p), "{labels:?}");
    }

    // The pool of the practice.
    page.family("itsm_db_pool_connections", "gauge");
    for state in ["idle", "in_use"] {
        assert!(
            page.value(
                "itsm_db_pool_connections",
                "itsm_db_pool_connections",
                &[("practice", "incidents"), ("state", state)]
            )
            .is_some(),
            "pool {state}"
        );
    }
    page.family("itsm_db_pool_max_connections", "gauge");
    assert!(
        page.value(
            "itsm_db_pool_max_connections",
            "itsm_db_pool_max_connections",
            &[("practice", "incidents")]
        )
        .is_some_and(|max| max >= 1.0)
    );
    page.family("itsm_outbox_backlog", "gauge");

    page.family("itsm_build_info", "gauge");
    assert_eq!(
        page.value(
            "itsm_build_info",
            "itsm_build_info",
            &[
                ("practice", "incidents"),
                ("version", env!("CARGO_PKG_VERSION"))
            ]
        ),
        Some(1.0)
    );
    child.kill().await.unwrap();
}

#[tokio::test]
async fn dev_serves_every_practice_metrics_on_one_port() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = support::itsm()
        .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("ITSM_METRICS_SAMPLE_EVERY", "200ms")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let grpc = wait_for_line(&mut lines, "  gRPC ")
        .await
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    // "  metrics    http://127.0.0.1:PORT/metrics  (...)"
    let metrics = wait_for_line(&mut lines, "  metrics ")
        .await
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_owned();
    let _tail = support::keep_reading(lines);

    // A health check: served (and measured) without a token.
    let mut health = tonic_health::pb::health_client::HealthClient::new(connect(&grpc).await);
    health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();

    let page = scrape_until(
        &metrics,
        "every practice's pool and the SLA gauges",
        |page| {
            ["incidents", "cmdb", "sla", "identity"]
                .iter()
                .all(|practice| {
                    page.value(
                        "itsm_db_pool_max_connections",
                        "itsm_db_pool_max_connections",
                        &[("practice", practice)],
                    )
                    .is_some()
                })
                && page
                    .value("itsm_sla_timers_pending", "itsm_sla_timers_pending", &[])
                    .is_some()
        },
    )
    .await;
    page.family("itsm_rpc_server_duration_seconds", "histogram");
    // Our check, and any the dev gateway's health probes made meanwhile.
    let checks = page
        .value(
            "itsm_rpc_server_duration_seconds",
            "itsm_rpc_server_duration_seconds_count",
            &[
                ("service", "grpc.health.v1.Health"),
                ("method", "Check"),
                ("code", "OK"),
            ],
        )
        .unwrap_or_default();
    assert!(checks >= 1.0, "health checks counted: {checks}");
    page.family("itsm_sla_timers_pending", "gauge");
    page.family("itsm_sla_task_slas", "gauge");
    assert_eq!(
        page.value(
            "itsm_sla_task_slas",
            "itsm_sla_task_slas",
            &[("state", "IN_PROGRESS")]
        ),
        Some(0.0)
    );
    // One recorder for the process: one build_info, labelled dev.
    let build = page.family("itsm_build_info", "gauge");
    assert_eq!(build.samples.len(), 1, "{build:?}");
    assert_eq!(build.samples[0].labels["practice"], "dev");
    child.kill().await.unwrap();
}
