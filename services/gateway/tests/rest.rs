//! REST/JSON through the gateway: real incidents, SLA and CMDB servers behind
//! the real auth guard (each on its own database and port), a gateway in
//! front of them serving `rest::router`, and plain HTTP/1.1 over sockets.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use itsm_auth::Authenticator;
use itsm_auth::jwt::{JwtSettings, JwtVerifier};
use itsm_gateway::backends::{Backends, Settings};
use itsm_gateway::edge::Edge;
use itsm_gateway::edge::ratelimit::RateLimiter;
use itsm_gateway::server::Gateway;
use itsm_platform::Drain;
use itsm_platform::config::RateLimit;
use itsm_testkit::test_config;
use serde_json::{Value, json};
use support::{INCIDENTS, Practices, token};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The secret and settings the harness signs tokens with (tests/support).
fn authenticator() -> Authenticator {
    let settings = JwtSettings {
        issuer: "itsm".into(),
        audience: "itsm".into(),
        clock_skew: Duration::from_secs(30),
        roles_claim: "roles".into(),
        groups_claim: "groups".into(),
    };
    Authenticator::new(
        Some(JwtVerifier::hs256(
            b"gateway test secret, 32 bytes long!!",
            settings,
        )),
        None,
    )
}

const PLENTY: RateLimit = RateLimit {
    per_second: 1000.0,
    burst: 1000,
};

/// A gateway serving REST in front of the practices.
struct RestGateway {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<Drain, itsm_gateway::server::GatewayError>>,
}

/// An HTTP answer.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first field violation's field and description.
    fn violation(&self) -> (String, String) {
        let details = self.body["details"].as_array().cloned().unwrap_or_default();
        let bad = details
            .iter()
            .find(|d| d["@type"] == "type.googleapis.com/google.rpc.BadRequest")
            .unwrap_or_else(|| panic!("no BadRequest in {}", self.body));
        let v = &bad["fieldViolations"][0];
        (
            v["field"].as_str().unwrap().to_owned(),
            v["description"].as_str().unwrap().to_owned(),
        )
    }
}

impl RestGateway {
    async fn start(practices: &Practices, read: RateLimit, write: RateLimit) -> Self {
        let mut config = test_config();
        config.shutdown_grace = Duration::from_secs(2);
        let mut settings = Settings::from_config(&config);
        settings.default_timeout = Duration::from_secs(30);
        settings.connect_timeout = Duration::from_secs(1);
        settings.ready_within = Duration::from_secs(1);
        let backends = Backends::new(practices.specs(), settings).unwrap();
        let edge = Edge::new(
            Arc::new(authenticator()),
            RateLimiter::in_process(read, write),
        );
        let gateway = Gateway::new(&config, backends, edge);
        let router = itsm_gateway::rest::router(gateway.state()).unwrap();
        let gateway = gateway
            .with_http(router)
            .with_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
            .bind()
            .await
            .unwrap();
        let addr = gateway.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(gateway.serve(async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// One HTTP/1.1 request on its own connection.
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Reply {
        self.call_with(method, path, token, body, &[]).await
    }

    async fn call_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request =
            format!("{method} {path} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n");
        if let Some(token) = token {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        let body = body.unwrap_or("");
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let mut lines = head.lines();
        let status = lines.next().unwrap()[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.to_owned()))
            .collect();
        let body = if headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v == "chunked")
        {
            dechunk(body)
        } else {
            body.to_owned()
        };
        let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap().unwrap();
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

fn ok(reply: &Reply) -> &Value {
    assert_eq!(reply.status, 200, "{reply:?}");
    &reply.body
}

/// RFC 3339 in UTC as protobuf JSON writes it.
fn is_rfc3339(value: &Value) -> bool {
    let text = value.as_str().unwrap_or("");
    text.len() >= 20 && text.as_bytes()[10] == b'T' && text.ends_with('Z')
}

const FIRST: &str = r#"{"title": "VPN down in Lyon", "description": "since 9:00", "impact": "IMPACT_HIGH", "urgency": "URGENCY_HIGH", "caller": "ada"}"#;

async fn every_practice_over_rest(postgres: bool) {
    let practices = Practices::start(postgres).await;
    let gateway = RestGateway::start(&practices, PLENTY, PLENTY).await;
    let agent = token("bob", &["agent"]);
    let admin = token("root", &["admin"]);

    // Incidents: create (enums by name), read, list with a filter, update with
    // an update mask and the etag, then a lifecycle method.
    let created = gateway
        .call_with(
            "POST",
            "/v1/incidents?requestId=r-1",
            Some(&agent),
            Some(FIRST),
            &[
                ("x-request-id", "rest-req-1"),
                (
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ),
                ("x-request-timeout", "2.5s"),
            ],
        )
        .await;
    assert_eq!(created.header("x-request-id"), Some("rest-req-1"));
    let incident = ok(&created).clone();
    let name = incident["name"].as_str().unwrap().to_owned();
    assert!(name.starts_with("incidents/INC"), "{incident}");
    assert_eq!(incident["state"], "INCIDENT_STATE_NEW");
    assert_eq!(incident["impact"], "IMPACT_HIGH");
    assert!(
        incident["priority"]
            .as_str()
            .unwrap()
            .starts_with("PRIORITY_"),
        "{incident}"
    );
    assert!(is_rfc3339(&incident["createTime"]), "{incident}");
    assert!(incident.get("create_time").is_none(), "JSON names out");
    // What the backend saw: the credential, the request id, the trace, the deadline.
    let seen = practices.seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(seen["authorization"], format!("Bearer {agent}").as_str());
    assert_eq!(seen["x-request-id"], "rest-req-1");
    assert!(
        seen["traceparent"]
            .to_str()
            .unwrap()
            .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    );
    let timeout = itsm_gateway::backends::parse_grpc_timeout(&seen["grpc-timeout"]).unwrap();
    assert!(
        timeout <= Duration::from_millis(2500) && timeout > Duration::from_secs(1),
        "{timeout:?}"
    );

    // The same create again: the first result (request_id), through the query string.
    let again = gateway
        .call(
            "POST",
            "/v1/incidents?request_id=r-1",
            Some(&agent),
            Some(FIRST),
        )
        .await;
    assert_eq!(ok(&again)["name"], name.as_str());
    let other = gateway
        .call(
            "POST",
            "/v1/incidents",
            Some(&agent),
            Some(r#"{"title": "Mail slow", "impact": 3, "urgency": 3, "caller": "bob"}"#),
        )
        .await;
    let other_name = ok(&other)["name"].as_str().unwrap().to_owned();

    let got = gateway
        .call("GET", &format!("/v1/{name}"), Some(&agent), None)
        .await;
    assert_eq!(ok(&got)["title"], "VPN down in Lyon");
    let listed = gateway
        .call(
            "GET",
            "/v1/incidents?filter=impact%20%3D%20HIGH&pageSize=10",
            Some(&agent),
            None,
        )
        .await;
    let names: Vec<&str> = ok(&listed)["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [name.as_str()], "{}", listed.body);
    let all = gateway
        .call("GET", "/v1/incidents", Some(&agent), None)
        .await;
    assert_eq!(ok(&all)["incidents"].as_array().unwrap().len(), 2);
    assert!(
        all.body["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["name"] == other_name.as_str())
    );

    let etag = incident["etag"].as_str().unwrap();
    let updated = gateway
        .call(
            "PATCH",
            &format!("/v1/{name}?updateMask=title,category&etag={etag}"),
            Some(&agent),
            Some(r#"{"title": "VPN down in Lyon and Paris", "category": "network", "description": "not in the mask"}"#),
        )
        .await;
    let updated = ok(&updated).clone();
    assert_eq!(updated["title"], "VPN down in Lyon and Paris");
    assert_eq!(updated["category"], "network");
    assert_eq!(
        updated["description"], "since 9:00",
        "fields outside the mask are kept"
    );
    // A stale etag: ABORTED is 409.
    let stale = gateway
        .call(
            "PATCH",
            &format!("/v1/{name}?updateMask=title&etag={etag}"),
            Some(&agent),
            Some(r#"{"title": "x"}"#),
        )
        .await;
    assert_eq!(stale.status, 409, "{stale:?}");
    assert_eq!(stale.body["code"], "ABORTED");

    // The lifecycle: resolved, reopened, put on hold (the directory of this
    // harness knows no groups, so no assignment).
    let unknown_group = gateway
        .call(
            "POST",
            &format!("/v1/{name}:assign"),
            Some(&agent),
            Some(r#"{"assignmentGroup": "network"}"#),
        )
        .await;
    assert_eq!(unknown_group.status, 400, "{unknown_group:?}");
    assert_eq!(unknown_group.violation().0, "assignment_group");
    let resolved = gateway
        .call(
            "POST",
            &format!("/v1/{name}:resolve"),
            Some(&agent),
            Some(r#"{"resolutionCode": "RESOLUTION_CODE_SOLVED_WORKAROUND", "resolution_notes": "rerouted via Paris"}"#),
        )
        .await;
    assert_eq!(ok(&resolved)["state"], "INCIDENT_STATE_RESOLVED");
    assert_eq!(
        resolved.body["resolutionCode"],
        "RESOLUTION_CODE_SOLVED_WORKAROUND"
    );
    assert!(
        is_rfc3339(&resolved.body["resolveTime"]),
        "{}",
        resolved.body
    );
    let reopened = gateway
        .call(
            "POST",
            &format!("/v1/{name}:reopen"),
            Some(&agent),
            Some(r#"{"reason": "back again"}"#),
        )
        .await;
    assert_eq!(ok(&reopened)["state"], "INCIDENT_STATE_IN_PROGRESS");
    let held = gateway
        .call(
            "POST",
            &format!("/v1/{name}:hold"),
            Some(&agent),
            Some(r#"{"reason": "HOLD_REASON_AWAITING_VENDOR", "note": "ticket 42 at the ISP"}"#),
        )
        .await;
    let held = ok(&held).clone();
    assert_eq!(held["state"], "INCIDENT_STATE_ON_HOLD");
    assert_eq!(held["holdReason"], "HOLD_REASON_AWAITING_VENDOR");
    // Settings: a duration as "<seconds>s".
    let settings = gateway
        .call("GET", "/v1/incidentSettings", Some(&agent), None)
        .await;
    let close_after = ok(&settings)["autoCloseAfter"].as_str().unwrap().to_owned();
    assert!(
        close_after.ends_with('s') && close_after[..close_after.len() - 1].parse::<f64>().is_ok(),
        "{close_after}"
    );

    // CMDB: a class, created with its id in the query, then read.
    let class = gateway
        .call(
            "POST",
            "/v1/classes?ciClassId=rest_server",
            Some(&admin),
            Some(r#"{"displayName": "REST server", "parent": "classes/configuration_item"}"#),
        )
        .await;
    assert_eq!(ok(&class)["name"], "classes/rest_server", "{class:?}");
    let class = gateway
        .call("GET", "/v1/classes/rest_server", Some(&agent), None)
        .await;
    assert_eq!(ok(&class)["displayName"], "REST server");

    // SLA: a calendar, then business time added over it.
    let calendar = gateway
        .call(
            "POST",
            "/v1/calendars?calendarId=office",
            Some(&admin),
            Some(
                &json!({
                    "displayName": "Office hours",
                    "timeZone": "Europe/Paris",
                    "weeklySpans": (1..=5).map(|day| json!({
                        "day": day,
                        "span": {"start": {"hours": 9}, "end": {"hours": 17}},
                    })).collect::<Vec<_>>(),
                })
                .to_string(),
            ),
        )
        .await;
    assert_eq!(ok(&calendar)["name"], "calendars/office", "{calendar:?}");
    let added = gateway
        .call(
            "POST",
            "/v1/calendars/office:addBusinessTime",
            Some(&admin),
            Some(r#"{"startTime": "2026-11-20T15:30:00Z", "duration": "7200s"}"#),
        )
        .await;
    let added = ok(&added).clone();
    // Friday 16:30 in Paris + 2 business hours = Monday 10:30 (09:30Z).
    assert_eq!(added["endTime"], "2026-11-23T09:30:00Z", "{added}");
    assert!(
        added["calendarVersion"].is_string(),
        "int64 as a string: {added}"
    );
    assert_eq!(added["timeZone"], "Europe/Paris");

    // Errors from the backends: JSON with the code, status and field violations.
    let missing = gateway
        .call("POST", "/v1/incidents", Some(&agent), Some("{}"))
        .await;
    assert_eq!(missing.status, 400, "{missing:?}");
    assert_eq!(missing.body["code"], "INVALID_ARGUMENT");
    assert_eq!(missing.body["status"], 400);
    assert!(
        missing.violation().0.starts_with("incident."),
        "{:?}",
        missing.body
    );
    let absent = gateway
        .call("GET", "/v1/incidents/INC9999999", Some(&agent), None)
        .await;
    assert_eq!(
        (absent.status, absent.body["code"].as_str()),
        (404, Some("NOT_FOUND")),
        "{absent:?}"
    );
    let denied = gateway
        .call(
            "GET",
            "/v1/calendars",
            Some(&token("ada", &["requester"])),
            None,
        )
        .await;
    assert_eq!(
        (denied.status, denied.body["code"].as_str()),
        (403, Some("PERMISSION_DENIED")),
        "{denied:?}"
    );

    gateway.shutdown().await;
}

#[tokio::test]
async fn every_practice_over_rest_postgres() {
    every_practice_over_rest(true).await;
}

#[tokio::test]
async fn every_practice_over_rest_sqlite() {
    every_practice_over_rest(false).await;
}

#[tokio::test]
async fn bad_requests_are_answered_at_the_gateway() {
    let practices = Practices::start(false).await;
    let gateway = RestGateway::start(&practices, PLENTY, PLENTY).await;
    let agent = token("bob", &["agent"]);

    // Malformed JSON: 400 naming the line and column.
    let broken = gateway
        .call(
            "POST",
            "/v1/incidents",
            Some(&agent),
            Some("{\n  \"title\": \"x\"\n  \"impact\": \"IMPACT_LOW\"\n}"),
        )
        .await;
    assert_eq!(broken.status, 400, "{broken:?}");
    let (field, description) = broken.violation();
    assert_eq!(field, "body");
    assert!(description.contains("line 3, column 3"), "{description}");
    // A value of the wrong type: the field too.
    let wrong = gateway
        .call(
            "POST",
            "/v1/incidents",
            Some(&agent),
            Some("{\"title\": \"x\",\n \"urgency\": {\"high\": true}}"),
        )
        .await;
    assert_eq!(wrong.status, 400, "{wrong:?}");
    let (field, description) = wrong.violation();
    assert_eq!(field, "incident.urgency");
    assert!(description.contains("line 2"), "{description}");
    let unknown_field = gateway
        .call("GET", "/v1/incidents?colour=red", Some(&agent), None)
        .await;
    assert_eq!(unknown_field.violation().0, "colour");
    assert_eq!(
        practices.seen.lock().unwrap().len(),
        0,
        "nothing bad reached the backend"
    );

    // Unknown path: 404 naming the services; a known path with the wrong method: 405.
    let unknown = gateway
        .call("GET", "/v1/nothing/here", Some(&agent), None)
        .await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    assert_eq!(unknown.body["code"], "NOT_FOUND");
    for service in [INCIDENTS, support::SLA, support::CMDB] {
        assert!(
            unknown.body["message"].as_str().unwrap().contains(service),
            "{}",
            unknown.body
        );
    }
    let wrong_method = gateway
        .call("DELETE", "/v1/incidents", Some(&agent), None)
        .await;
    assert_eq!(wrong_method.status, 405, "{wrong_method:?}");
    assert_eq!(wrong_method.header("allow"), Some("POST, GET"));

    // No credentials: 401 at the edge.
    let anonymous = gateway.call("GET", "/v1/incidents", None, None).await;
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    assert_eq!(anonymous.body["code"], "UNAUTHENTICATED");
    assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));

    gateway.shutdown().await;

    // A gateway whose write bucket holds 3: the 4th write is 429 with
    // Retry-After; reads go on.
    let write = RateLimit {
        per_second: 0.01,
        burst: 3,
    };
    let gateway = RestGateway::start(&practices, PLENTY, write).await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        let body =
            format!(r#"{{"title": "storm {i}", "impact": 3, "urgency": 3, "caller": "ada"}}"#);
        statuses.push(
            gateway
                .call("POST", "/v1/incidents", Some(&agent), Some(&body))
                .await,
        );
    }
    assert!(
        statuses[..3].iter().all(|r| r.status != 429),
        "{statuses:?}"
    );
    let limited = &statuses[3];
    assert_eq!(limited.status, 429, "{limited:?}");
    assert_eq!(limited.body["code"], "RESOURCE_EXHAUSTED");
    assert!(
        limited
            .header("retry-after")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(
        gateway
            .call("GET", "/v1/incidents", Some(&agent), None)
            .await
            .status,
        200
    );

    gateway.shutdown().await;
}

#[tokio::test]
async fn an_alert_storm_through_the_webhook_opens_one_incident() {
    let practices = Practices::start(false).await;
    let gateway = RestGateway::start(&practices, PLENTY, PLENTY).await;
    let monitoring = token("alertmanager", &["service"]);
    let agent = token("bob", &["agent"]);
    let alert = json!({
        "status": "firing",
        "labels": {"alertname": "HighErrorRate", "severity": "critical", "instance": "api-1:9090", "job": "api"},
        "annotations": {"summary": "5xx above 5% on api-1"},
        "startsAt": "2026-11-22T06:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": "b1e2c3d4e5f60718",
    });
    let notification = |alerts: Vec<Value>| {
        json!({
            "version": "4",
            "groupKey": "{}:{alertname=\"HighErrorRate\"}",
            "status": "firing",
            "receiver": "itsm",
            "groupLabels": {"alertname": "HighErrorRate"},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager",
            "alerts": alerts,
        })
        .to_string()
    };
    // The storm: one notification with three copies, then five more notifications.
    let first = gateway
        .call(
            "POST",
            "/v1/alertmanager/webhook?source=prometheus-eu",
            Some(&monitoring),
            Some(&notification(vec![
                alert.clone(),
                alert.clone(),
                alert.clone(),
            ])),
        )
        .await;
    let results = ok(&first)["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 3, "{}", first.body);
    for _ in 0..5 {
        let again = gateway
            .call(
                "POST",
                "/v1/alertmanager/webhook?source=prometheus-eu",
                Some(&monitoring),
                Some(&notification(vec![alert.clone()])),
            )
            .await;
        assert_eq!(again.status, 200, "{again:?}");
    }
    let incidents = gateway
        .call("GET", "/v1/incidents", Some(&agent), None)
        .await;
    let incidents = ok(&incidents)["incidents"].as_array().unwrap().clone();
    assert_eq!(
        incidents.len(),
        1,
        "one incident for the storm: {incidents:?}"
    );
    let group = gateway
        .call(
            "GET",
            "/v1/alertGroups/b1e2c3d4e5f60718",
            Some(&agent),
            None,
        )
        .await;
    let group = ok(&group).clone();
    assert_eq!(group["occurrenceCount"], "8", "int64 as a string: {group}");
    assert_eq!(group["lastAlert"]["source"], "prometheus-eu", "{group}");

    // Not a webhook payload: 400 with the position; no credentials: 401.
    let broken = gateway
        .call(
            "POST",
            "/v1/alertmanager/webhook",
            Some(&monitoring),
            Some("{\"alerts\": [}"),
        )
        .await;
    assert_eq!(broken.status, 400, "{broken:?}");
    assert!(
        broken.violation().1.contains("line 1, column"),
        "{:?}",
        broken.body
    );
    let anonymous = gateway
        .call(
            "POST",
            "/v1/alertmanager/webhook",
            None,
            Some(&notification(vec![alert])),
        )
        .await;
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    gateway.shutdown().await;
}

#[tokio::test]
async fn the_openapi_document_is_valid_and_covers_every_method() {
    let practices = Practices::start(false).await;
    let gateway = RestGateway::start(&practices, PLENTY, PLENTY).await;
    let document = gateway.call("GET", "/openapi.json", None, None).await;
    let document = ok(&document).clone();
    gateway.shutdown().await;

    // Every method of every service has an operation.
    let pool = prost_reflect::DescriptorPool::decode(itsm_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut operations = std::collections::HashSet::new();
    for item in document["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            operations.insert(operation["operationId"].as_str().unwrap().to_owned());
        }
    }
    let mut methods = 0;
    for service in pool
        .services()
        .filter(|s| s.full_name().starts_with("itsm."))
    {
        for method in service.methods() {
            methods += 1;
            let id = format!("{}_{}", service.name(), method.name());
            assert!(
                operations.contains(&id),
                "{} has no operation",
                method.full_name()
            );
        }
    }
    assert!(methods > 300, "{methods}");

    // Validated by an independent validator (Python's openapi-spec-validator).
    let path = std::env::temp_dir().join(format!("itsm-openapi-{}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_vec(&document).unwrap()).unwrap();
    let output = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, json\n\
             try:\n    from openapi_spec_validator import validate\n\
             except ImportError:\n    sys.exit(3)\n\
             validate(json.load(open(sys.argv[1])))\nprint('valid')",
        ])
        .arg(&path)
        .output()
        .expect("python3 runs");
    let _ = std::fs::remove_file(&path);
    assert_ne!(
        output.status.code(),
        Some(3),
        "the OpenAPI validator is missing: python3 -m pip install openapi-spec-validator (scripts/test installs it)"
    );
    assert!(
        output.status.success(),
        "openapi-spec-validator refused the document:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
