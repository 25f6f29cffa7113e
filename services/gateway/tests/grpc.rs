//! gRPC through the gateway: real incidents, SLA and CMDB servers behind the
//! real auth guard, each on its own database and port, and gateways in front
//! of them over sockets.
// Test helpers may unwrap and panic: that is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use itsm_gateway::backends::pool::Target;
use itsm_platform::Drain;
use itsm_platform::config::RateLimit;
use itsm_proto::itsm::cmdb::v1 as cmdb;
use itsm_proto::itsm::cmdb::v1::cmdb_service_client::CmdbServiceClient;
use itsm_proto::itsm::incidents::v1 as incidents;
use itsm_proto::itsm::incidents::v1::incident_service_client::IncidentServiceClient;
use itsm_proto::itsm::knowledge::v1::knowledge_service_client::KnowledgeServiceClient;
use itsm_proto::itsm::sla::v1 as sla;
use itsm_proto::itsm::sla::v1::sla_service_client::SlaServiceClient;
use support::{
    Buckets, CMDB, INCIDENTS, Options, Practices, RunningGateway, SLA, token, with_token,
};
use tonic::Code;
use tonic::transport::Channel;

fn incident(title: &str, description: &str) -> incidents::CreateIncidentRequest {
    incidents::CreateIncidentRequest {
        incident: Some(incidents::Incident {
            title: title.to_owned(),
            description: description.to_owned(),
            impact: 2,
            urgency: 2,
            caller: "ada".to_owned(),
            ..incidents::Incident::default()
        }),
        request_id: uuid::Uuid::new_v4().to_string(),
    }
}

async fn create(
    channel: &Channel,
    token: &str,
    title: &str,
) -> Result<incidents::Incident, tonic::Status> {
    IncidentServiceClient::new(channel.clone())
        .create_incident(with_token(token, incident(title, "")))
        .await
        .map(tonic::Response::into_inner)
}

async fn list_calendars(
    channel: &Channel,
    token: &str,
) -> Result<sla::ListCalendarsResponse, tonic::Status> {
    SlaServiceClient::new(channel.clone())
        .list_calendars(with_token(token, sla::ListCalendarsRequest::default()))
        .await
        .map(tonic::Response::into_inner)
}

async fn list_ci_classes(
    channel: &Channel,
    token: &str,
) -> Result<cmdb::ListCiClassesResponse, tonic::Status> {
    CmdbServiceClient::new(channel.clone())
        .list_ci_classes(with_token(token, cmdb::ListCiClassesRequest::default()))
        .await
        .map(tonic::Response::into_inner)
}

async fn every_practice_through_the_gateway(postgres: bool) {
    let practices = Practices::start(postgres).await;
    let gateway = RunningGateway::start(practices.specs(), Options::default()).await;
    let channel = gateway.channel().await;
    let agent = token("bob", &["agent"]);

    // Incidents: a write and two reads, with the caller's own request id and trace.
    let mut request = with_token(&agent, incident("VPN down in Lyon", "since 9:00"));
    request
        .metadata_mut()
        .insert("x-request-id", "req-gw-1".parse().unwrap());
    request.metadata_mut().insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    );
    request
        .metadata_mut()
        .insert("tracestate", "vendor=1".parse().unwrap());
    let mut client = IncidentServiceClient::new(channel.clone());
    let created = client.create_incident(request).await.unwrap();
    assert_eq!(created.metadata().get("x-request-id").unwrap(), "req-gw-1");
    let created = created.into_inner();
    assert_eq!(created.title, "VPN down in Lyon");
    let got = client
        .get_incident(with_token(
            &agent,
            incidents::GetIncidentRequest {
                name: created.name.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.name, created.name);
    let listed = client
        .list_incidents(with_token(
            &agent,
            incidents::ListIncidentsRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.incidents.len(), 1);

    // What the backend saw: the credential unchanged, the request id, the
    // trace continued with the gateway as parent, a deadline.
    let seen = practices.seen.lock().unwrap()[0].clone();
    assert_eq!(
        seen.get("authorization").unwrap(),
        &format!("Bearer {agent}")
    );
    assert_eq!(seen.get("x-request-id").unwrap(), "req-gw-1");
    let traceparent = seen.get("traceparent").unwrap().to_str().unwrap();
    assert!(
        traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{traceparent}"
    );
    assert!(!traceparent.contains("00f067aa0ba902b7"), "{traceparent}");
    assert_eq!(seen.get("tracestate").unwrap(), "vendor=1");
    assert!(seen.contains_key("grpc-timeout"));
    // A call without a request id gets one, on both sides.
    let seen_before = practices.seen.lock().unwrap().len();
    let answer = client
        .list_incidents(with_token(
            &agent,
            incidents::ListIncidentsRequest::default(),
        ))
        .await
        .unwrap();
    let made = answer
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!made.is_empty());
    assert_eq!(
        practices.seen.lock().unwrap()[seen_before]
            .get("x-request-id")
            .unwrap(),
        made.as_str()
    );

    // SLA and CMDB: no gateway code knows these methods.
    list_calendars(&channel, &agent).await.unwrap();
    list_ci_classes(&channel, &agent).await.unwrap();
    // The backends still authorize: a requester may not list calendars.
    let denied = list_calendars(&channel, &token("ada", &["requester"]))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");

    gateway.shutdown().await;
}

#[tokio::test]
async fn every_practice_through_the_gateway_postgres() {
    every_practice_through_the_gateway(true).await;
}

#[tokio::test]
async fn every_practice_through_the_gateway_sqlite() {
    every_practice_through_the_gateway(false).await;
}

#[tokio::test]
async fn bad_credentials_are_refused_at_the_edge() {
    let practices = Practices::start(false).await;
    let gateway = RunningGateway::start(practices.specs(), Options::default()).await;
    let channel = gateway.channel().await;

    let forged = create(&channel, "not-a-jwt", "x").await.unwrap_err();
    assert_eq!(forged.code(), Code::Unauthenticated, "{forged:?}");
    let none = IncidentServiceClient::new(channel.clone())
        .create_incident(incident("x", ""))
        .await
        .unwrap_err();
    assert_eq!(none.code(), Code::Unauthenticated);
    assert!(
        none.message().starts_with("no credentials"),
        "{}",
        none.message()
    );
    assert!(
        practices.seen.lock().unwrap().is_empty(),
        "nothing reached the backend"
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn an_unknown_service_is_unimplemented_naming_the_services() {
    let practices = Practices::start(false).await;
    let gateway = RunningGateway::start(practices.specs(), Options::default()).await;
    let error = KnowledgeServiceClient::new(gateway.channel().await)
        .list_articles(with_token(&token("bob", &["agent"]), Default::default()))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unimplemented, "{error:?}");
    for service in [INCIDENTS, SLA, CMDB, "itsm.knowledge.v1.KnowledgeService"] {
        assert!(
            error.message().contains(service),
            "{service}: {}",
            error.message()
        );
    }
    gateway.shutdown().await;
}

#[tokio::test]
async fn deadlines_reach_the_backend_and_a_default_is_set() {
    let practices = Practices::start(false).await;
    let options = Options {
        default_timeout: Duration::from_secs(7),
        ..Options::default()
    };
    let gateway = RunningGateway::start(practices.specs(), options).await;
    let channel = gateway.channel().await;
    let agent = token("bob", &["agent"]);
    let mut client = IncidentServiceClient::new(channel);

    let mut request = with_token(&agent, incidents::ListIncidentsRequest::default());
    request.set_timeout(Duration::from_millis(1500));
    client.list_incidents(request).await.unwrap();
    client
        .list_incidents(with_token(
            &agent,
            incidents::ListIncidentsRequest::default(),
        ))
        .await
        .unwrap();
    let seen = practices.seen.lock().unwrap().clone();
    let timeout = |i: usize| {
        itsm_gateway::backends::parse_grpc_timeout(seen[i].get("grpc-timeout").unwrap()).unwrap()
    };
    assert!(
        timeout(0) <= Duration::from_millis(1500) && timeout(0) > Duration::from_millis(1000),
        "{:?}",
        timeout(0)
    );
    assert_eq!(timeout(1), Duration::from_secs(7), "the default deadline");
    gateway.shutdown().await;
}

#[tokio::test]
async fn an_oversized_message_is_refused_before_the_backend() {
    let practices = Practices::start(false).await;
    let options = Options {
        max_body: 2048,
        ..Options::default()
    };
    let gateway = RunningGateway::start(practices.specs(), options).await;
    let channel = gateway.channel().await;
    let agent = token("bob", &["agent"]);
    let mut client = IncidentServiceClient::new(channel);

    let error = client
        .create_incident(with_token(&agent, incident("big", &"x".repeat(4000))))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::ResourceExhausted, "{error:?}");
    assert!(error.message().contains("2048"), "{}", error.message());
    assert!(practices.seen.lock().unwrap().is_empty());
    client
        .create_incident(with_token(&agent, incident("small", &"x".repeat(500))))
        .await
        .unwrap();
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_backend_down_fails_fast_while_the_others_work() {
    let mut practices = Practices::start(false).await;
    let options = Options {
        breaker_failures: 3,
        breaker_cooldown: Duration::from_secs(60),
        ..Options::default()
    };
    let gateway = RunningGateway::start(practices.specs(), options).await;
    let channel = gateway.channel().await;
    let agent = token("bob", &["agent"]);
    list_calendars(&channel, &agent).await.unwrap();

    practices.stop_sla().await;
    for attempt in 0..3 {
        let started = Instant::now();
        let error = list_calendars(&channel, &agent).await.unwrap_err();
        assert_eq!(
            error.code(),
            Code::Unavailable,
            "attempt {attempt}: {error:?}"
        );
        assert!(error.message().contains("sla"), "{}", error.message());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    // The circuit is open: refused without trying.
    let started = Instant::now();
    let error = list_calendars(&channel, &agent).await.unwrap_err();
    assert_eq!(error.code(), Code::Unavailable);
    assert!(
        error.message().contains("circuit open"),
        "{}",
        error.message()
    );
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );

    // The other practices are unaffected.
    create(&channel, &agent, "still works").await.unwrap();
    list_ci_classes(&channel, &agent).await.unwrap();
    gateway.shutdown().await;
}

#[tokio::test]
async fn readiness_and_health_reflect_the_backends() {
    let mut practices = Practices::start(false).await;
    let gateway = RunningGateway::start(practices.specs(), Options::default()).await;
    let (_, live) = gateway.get("/healthz").await;
    assert_eq!(live["status"], "ok");
    let (_, ready) = gateway
        .get_until("/readyz", Duration::from_secs(5), |status, _| status == 200)
        .await;
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["backends"].as_array().unwrap().len(), 3);

    practices.stop_sla().await;
    let (_, body) = gateway
        .get_until("/readyz", Duration::from_secs(5), |status, _| status == 503)
        .await;
    assert_eq!(body["ready"], false);
    let backends = body["backends"].as_array().unwrap();
    let by_name = |name: &str| backends.iter().find(|b| b["name"] == name).unwrap().clone();
    assert_eq!(by_name("sla")["ready"], false);
    assert!(
        by_name("sla")["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{body}"
    );
    assert_eq!(by_name("incidents")["ready"], true);
    assert_eq!(by_name("cmdb")["ready"], true);

    // grpc.health.v1 on the gateway says the same, with no token.
    let mut health = tonic_health::pb::health_client::HealthClient::new(gateway.channel().await);
    let status = |service: &str| tonic_health::pb::HealthCheckRequest {
        service: service.to_owned(),
    };
    let not_serving = tonic_health::ServingStatus::NotServing as i32;
    let serving = tonic_health::ServingStatus::Serving as i32;
    // Mirrored after each probe round: poll, as for /readyz.
    let deadline = Instant::now() + Duration::from_secs(5);
    while health.check(status(SLA)).await.unwrap().into_inner().status != not_serving {
        assert!(
            Instant::now() < deadline,
            "SLA still SERVING on the gateway's health"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        health
            .check(status(INCIDENTS))
            .await
            .unwrap()
            .into_inner()
            .status,
        serving
    );
    assert_eq!(
        health.check(status("")).await.unwrap().into_inner().status,
        not_serving
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn two_gateways_share_the_rate_limit_in_redis() {
    let practices = Practices::start(false).await;
    let options = Options {
        // Three writes, then one every 20 s: the test never sees a refill.
        write: RateLimit {
            per_second: 0.05,
            burst: 3,
        },
        buckets: Buckets::Redis {
            url: itsm_testkit::redis_url(),
            prefix: itsm_testkit::unique_prefix(),
        },
        ..Options::default()
    };
    let a = RunningGateway::start(practices.specs(), options.clone()).await;
    let b = RunningGateway::start(practices.specs(), options).await;
    let (a_channel, b_channel) = (a.channel().await, b.channel().await);
    let agent = token("bob", &["agent"]);

    create(&a_channel, &agent, "one").await.unwrap();
    create(&a_channel, &agent, "two").await.unwrap();
    create(&b_channel, &agent, "three").await.unwrap();
    let refused = create(&b_channel, &agent, "four").await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    let retry_after: u64 = refused
        .metadata()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    assert!(refused.message().contains("write"), "{}", refused.message());
    assert_eq!(
        create(&a_channel, &agent, "five").await.unwrap_err().code(),
        Code::ResourceExhausted
    );

    // Another principal, and reads, have buckets of their own.
    create(&b_channel, &token("carla", &["agent"]), "carla's")
        .await
        .unwrap();
    IncidentServiceClient::new(a_channel)
        .list_incidents(with_token(
            &agent,
            incidents::ListIncidentsRequest::default(),
        ))
        .await
        .unwrap();
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn without_redis_the_limit_holds_in_process() {
    let practices = Practices::start(false).await;
    let options = Options {
        write: RateLimit {
            per_second: 0.05,
            burst: 2,
        },
        // Nothing listens on port 1.
        buckets: Buckets::Redis {
            url: "redis://127.0.0.1:1".to_owned(),
            prefix: itsm_testkit::unique_prefix(),
        },
        ..Options::default()
    };
    let gateway = RunningGateway::start(practices.specs(), options).await;
    let channel = gateway.channel().await;
    let agent = token("bob", &["agent"]);
    let started = Instant::now();
    create(&channel, &agent, "one").await.unwrap();
    create(&channel, &agent, "two").await.unwrap();
    let refused = create(&channel, &agent, "three").await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.metadata().contains_key("retry-after"));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_dns_target_is_resolved_into_replicas() {
    let practices = Practices::start(false).await;
    let mut specs = practices.specs();
    // incidents by name, as a Kubernetes headless Service is given.
    let port = practices.incidents.as_ref().unwrap().addr().port();
    specs[0].target = itsm_gateway::backends::pool::Target::Dns {
        host: "localhost".to_owned(),
        port,
    };
    let gateway = RunningGateway::start(specs, Options::default()).await;
    let (_, ready) = gateway
        .get_until("/readyz", Duration::from_secs(5), |status, _| status == 200)
        .await;
    let incidents = &ready["backends"][0];
    assert_eq!(incidents["target"], format!("dns://localhost:{port}"));
    assert!(incidents["endpoints"].as_u64().unwrap() >= 1, "{ready}");
    assert!(
        incidents["healthy_endpoints"].as_u64().unwrap() >= 1,
        "{ready}"
    );
    let channel = gateway.channel().await;
    for n in 0..5 {
        create(&channel, &token("bob", &["agent"]), &format!("by name {n}"))
            .await
            .unwrap();
    }
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_replica_that_cannot_be_reached_is_skipped_for_another() {
    let practices = Practices::start(false).await;
    let second = practices.incidents_replica().await;
    let mut specs = practices.specs();
    specs[0].target = Target::Static(vec![
        format!("http://{}", practices.incidents.as_ref().unwrap().addr()),
        format!("http://{}", second.addr()),
    ]);
    let options = Options {
        // Health checks far apart: the gateway learns that a replica is down
        // from a call, not from a probe.
        probe_every: Duration::from_secs(3600),
        // One failure would open the circuit: a call retried elsewhere is none.
        breaker_failures: 1,
        ..Options::default()
    };
    let gateway = RunningGateway::start(specs, options).await;
    gateway
        .get_until("/readyz", Duration::from_secs(20), |status, _| {
            status == 200
        })
        .await;
    let channel = gateway.channel().await;
    let agent = token("bob", &["agent"]);
    for i in 0..4 {
        create(&channel, &agent, &format!("before {i}"))
            .await
            .unwrap();
    }

    // The second replica goes away; the gateway still counts it healthy.
    assert_eq!(second.shutdown().await.unwrap(), Drain::Complete);
    // Calls alternate between the replicas while both count as healthy, so
    // the first or second of these reaches the one that is gone.
    for i in 0..10 {
        create(&channel, &agent, &format!("after {i}"))
            .await
            .unwrap_or_else(|status| panic!("call {i}: {status:?}"));
    }
    let listed = IncidentServiceClient::new(channel)
        .list_incidents(with_token(
            &agent,
            incidents::ListIncidentsRequest {
                page_size: 50,
                ..incidents::ListIncidentsRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.incidents.len(), 14, "each call created once");
    let (_, ready) = gateway.get("/readyz").await;
    let incidents = ready["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "incidents")
        .unwrap();
    assert_eq!(incidents["endpoints"], 2, "{ready}");
    assert_eq!(
        incidents["healthy_endpoints"], 1,
        "the replica that refused the connection is marked: {ready}"
    );
    assert_eq!(incidents["circuit"], "closed", "{ready}");
    gateway.shutdown().await;
}

/// A health service whose `Watch` streams what the test sets and tells
/// when the stream is dropped (the caller went away).
#[derive(Clone)]
struct WatchedHealth {
    status: tokio::sync::watch::Sender<i32>,
    ended: tokio::sync::mpsc::UnboundedSender<()>,
}

/// Sends on drop: the backend's stream is gone.
struct Ended(tokio::sync::mpsc::UnboundedSender<()>);

impl Drop for Ended {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

type WatchStream = std::pin::Pin<
    Box<
        dyn futures_util::Stream<
                Item = Result<tonic_health::pb::HealthCheckResponse, tonic::Status>,
            > + Send,
    >,
>;

#[tonic::async_trait]
impl tonic_health::pb::health_server::Health for WatchedHealth {
    async fn check(
        &self,
        _request: tonic::Request<tonic_health::pb::HealthCheckRequest>,
    ) -> Result<tonic::Response<tonic_health::pb::HealthCheckResponse>, tonic::Status> {
        Ok(tonic::Response::new(
            tonic_health::pb::HealthCheckResponse {
                status: tonic_health::ServingStatus::Serving as i32,
            },
        ))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        _request: tonic::Request<tonic_health::pb::HealthCheckRequest>,
    ) -> Result<tonic::Response<WatchStream>, tonic::Status> {
        let state = (self.status.subscribe(), Ended(self.ended.clone()), true);
        let stream = futures_util::stream::unfold(state, |(mut status, ended, first)| async move {
            if !first && status.changed().await.is_err() {
                return None;
            }
            let current = *status.borrow_and_update();
            let message = tonic_health::pb::HealthCheckResponse { status: current };
            Some((Ok(message), (status, ended, false)))
        });
        Ok(tonic::Response::new(Box::pin(stream)))
    }
}

#[tokio::test]
async fn a_server_stream_passes_through_and_cancelling_reaches_the_backend() {
    use tonic_health::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::health_server::HealthServer;

    let (status, _) = tokio::sync::watch::channel(ServingStatus::Serving as i32);
    let (ended, mut ended_rx) = tokio::sync::mpsc::unbounded_channel();
    let health = WatchedHealth {
        status: status.clone(),
        ended,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(HealthServer::new(health))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );
    // A backend given for grpc.health.v1.Health takes those calls: the
    // gateway passes them through instead of answering them itself.
    let specs = vec![itsm_gateway::backends::BackendSpec {
        name: "watched".to_owned(),
        services: vec!["grpc.health.v1.Health".to_owned()],
        target: Target::Static(vec![format!("http://{backend}")]),
    }];
    let gateway = RunningGateway::start(specs, Options::default()).await;
    let agent = token("bob", &["agent"]);
    let mut client = HealthClient::new(gateway.channel().await);
    let mut stream = client
        .watch(with_token(
            &agent,
            tonic_health::pb::HealthCheckRequest {
                service: "anything".to_owned(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(20), stream.message())
            .await
            .expect("a message within 20 s")
            .unwrap()
            .expect("the stream goes on")
            .status
    };
    assert_eq!(next().await, ServingStatus::Serving as i32);
    status.send(ServingStatus::NotServing as i32).unwrap();
    assert_eq!(next().await, ServingStatus::NotServing as i32);
    status.send(ServingStatus::Serving as i32).unwrap();
    assert_eq!(next().await, ServingStatus::Serving as i32);

    // The caller goes away: the backend's stream is dropped too.
    drop(stream);
    drop(client);
    tokio::time::timeout(Duration::from_secs(20), ended_rx.recv())
        .await
        .expect("the backend's stream ends within 20 s of the caller cancelling")
        .unwrap();
    gateway.shutdown().await;
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
