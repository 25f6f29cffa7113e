//! AnalyzeImpact.

use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_testkit::{TestDb, backend_tests};
use pb::ImpactDirection::{Downstream, Upstream};
use pb::ImpactLevel::{Degraded, Impacted, Redundant, Required};
use prost::Message;
use tonic::Code;

use super::{add, add_ci, analysis, analyze, reached, try_analyze, try_relate};
use crate::support::{Harness, bad_fields, start};

backend_tests!(
    downstream_from_a_switch_reaches_the_business_service_with_its_path,
    upstream_from_an_app_lists_what_it_needs,
    only_services_carry_paths_and_every_ci_its_last_hop,
    a_cycle_terminates,
    the_depth_bound_stops_the_walk_and_says_so,
    a_type_filter_walks_only_those_types,
    a_redundant_cluster_degrades_until_too_few_members_are_up,
    a_degraded_cluster_falls_when_a_later_member_goes_down,
    the_result_filter_picks_what_is_returned_not_what_is_walked,
    max_results_truncates,
    a_cached_answer_is_reused_until_the_graph_changes,
    bad_requests_are_refused,
);

/// switch <-connects_to- server <-runs_on- app <-depends_on- service
struct Stack {
    switch: String,
    server: String,
    app: String,
    service: String,
}

async fn stack(h: &mut Harness) -> Stack {
    let switch = add(h, "network_device", "core-sw-1").await;
    let server = add(h, "linux_server", "srv-01").await;
    let app = add(h, "application", "billing").await;
    let service = add(h, "business_service", "Billing").await;
    try_relate(h, &server, "connects_to", &switch)
        .await
        .unwrap();
    try_relate(h, &app, "runs_on", &server).await.unwrap();
    try_relate(h, &service, "depends_on", &app).await.unwrap();
    Stack {
        switch,
        server,
        app,
        service,
    }
}

async fn downstream_from_a_switch_reaches_the_business_service_with_its_path(db: TestDb) {
    let mut h = start(&db).await;
    let s = stack(&mut h).await;
    let result = analyze(&mut h, analysis(&[&s.switch], Downstream)).await;
    assert_eq!(
        reached(&result),
        [
            (s.server.clone(), Impacted, 1),
            (s.app.clone(), Impacted, 2),
            (s.service.clone(), Impacted, 3),
        ]
    );
    assert_eq!(result.impacted_services, [s.service.as_str()]);
    assert!(!result.truncated && !result.depth_limited);
    assert!(result.compute_time.is_some());
    let service = &result.impacted_cis[2];
    assert_eq!(service.ci_class, "classes/business_service");
    assert_eq!(service.display_name, "Billing");
    let hops: Vec<(&str, &str, &str, &str)> = service
        .path
        .iter()
        .map(|p| {
            (
                p.from_ci.as_str(),
                p.relationship_type.as_str(),
                p.label.as_str(),
                p.to_ci.as_str(),
            )
        })
        .collect();
    assert_eq!(
        hops,
        [
            (
                s.switch.as_str(),
                "relationshipTypes/connects_to",
                "connects to",
                s.server.as_str()
            ),
            (
                s.server.as_str(),
                "relationshipTypes/runs_on",
                "hosts",
                s.app.as_str()
            ),
            (
                s.app.as_str(),
                "relationshipTypes/depends_on",
                "used by",
                s.service.as_str()
            ),
        ]
    );
    assert!(
        service
            .path
            .iter()
            .all(|p| p.relationship.starts_with("relationships/"))
    );

    // Only services carry their whole path; every CI carries its last hop,
    // and following those back from the service gives the service's path.
    for ci in &result.impacted_cis[..2] {
        assert!(ci.path.is_empty(), "{} carries a path", ci.display_name);
    }
    assert_eq!(service.via.as_ref(), service.path.last());
    let followed = followed_back(&result, service);
    assert_eq!(followed, service.path);
    assert_eq!(followed[0].from_ci, s.switch);
}

/// The path of `ci` followed back through `via`, first hop first.
fn followed_back(analysis: &pb::ImpactAnalysis, ci: &pb::ImpactedCi) -> Vec<pb::ImpactPathStep> {
    let by_name: std::collections::HashMap<&str, &pb::ImpactedCi> = analysis
        .impacted_cis
        .iter()
        .map(|c| (c.ci.as_str(), c))
        .collect();
    let mut followed = Vec::new();
    let mut at = ci;
    while let Some(via) = &at.via {
        followed.push(via.clone());
        match by_name.get(via.from_ci.as_str()) {
            Some(previous) => at = previous,
            None => break, // an analysed CI
        }
    }
    followed.reverse();
    followed
}

/// switch <- 4 servers <- 3 apps each <- 3 more apps chained by depends_on
/// <- one service per chain: 64 CIs down to depth 6.
async fn only_services_carry_paths_and_every_ci_its_last_hop(db: TestDb) {
    let mut h = start(&db).await;
    let switch = add(&mut h, "network_device", "core-sw-1").await;
    for s in 0..4 {
        let server = add(&mut h, "linux_server", &format!("srv-{s}")).await;
        try_relate(&mut h, &server, "connects_to", &switch)
            .await
            .unwrap();
        for a in 0..3 {
            let mut below = add(&mut h, "application", &format!("app-{s}-{a}-0")).await;
            try_relate(&mut h, &below, "runs_on", &server)
                .await
                .unwrap();
            for c in 1..4 {
                let app = add(&mut h, "application", &format!("app-{s}-{a}-{c}")).await;
                try_relate(&mut h, &app, "depends_on", &below)
                    .await
                    .unwrap();
                below = app;
            }
            let service = add(&mut h, "business_service", &format!("svc-{s}-{a}")).await;
            try_relate(&mut h, &service, "depends_on", &below)
                .await
                .unwrap();
        }
    }
    let result = analyze(&mut h, analysis(&[&switch], Downstream)).await;
    assert_eq!(result.impacted_cis.len(), 64);
    assert_eq!(result.impacted_services.len(), 12);
    for ci in &result.impacted_cis {
        let via = ci.via.as_ref().expect("every listed CI has its last hop");
        assert_eq!(via.to_ci, ci.ci);
        let followed = followed_back(&result, ci);
        assert_eq!(followed.len(), usize::try_from(ci.depth).unwrap());
        assert_eq!(followed[0].from_ci, switch);
        if ci.ci_class == "classes/business_service" {
            assert_eq!(ci.depth, 6);
            assert!(result.impacted_services.contains(&ci.ci));
            assert_eq!(ci.path, followed, "{}", ci.display_name);
        } else {
            assert!(ci.path.is_empty(), "{} carries a path", ci.display_name);
        }
    }

    // The size of the answer against one giving every CI its whole path.
    let mut every_path = result.clone();
    for i in 0..every_path.impacted_cis.len() {
        let path = followed_back(&result, &result.impacted_cis[i]);
        every_path.impacted_cis[i].path = path;
        every_path.impacted_cis[i].via = None;
    }
    let (now, before) = (result.encoded_len(), every_path.encoded_len());
    eprintln!("64 CIs down to depth 6: {now} bytes encoded; with every CI's path {before}");
    // Here 12 of 64 CIs are services with whole paths; in a walk to thousands
    // of CIs the services are few and the saving near the paths' whole size.
    assert!(now < before, "{now} against {before}");
}

async fn upstream_from_an_app_lists_what_it_needs(db: TestDb) {
    let mut h = start(&db).await;
    let s = stack(&mut h).await;
    let result = analyze(&mut h, analysis(&[&s.app], Upstream)).await;
    // The service uses the app; the app does not need it.
    assert_eq!(
        reached(&result),
        [
            (s.server.clone(), Required, 1),
            (s.switch.clone(), Required, 2)
        ]
    );
    let server = &result.impacted_cis[0];
    assert!(server.path.is_empty(), "a server is no service: no path");
    let via = server.via.as_ref().expect("the server's last hop");
    assert_eq!(via.label, "runs on");
    assert_eq!(
        (via.from_ci.as_str(), via.to_ci.as_str()),
        (s.app.as_str(), s.server.as_str())
    );
    assert!(result.impacted_services.is_empty());
}

async fn a_cycle_terminates(db: TestDb) {
    let mut h = start(&db).await;
    let a = add(&mut h, "application", "a").await;
    let b = add(&mut h, "application", "b").await;
    let c = add(&mut h, "application", "c").await;
    try_relate(&mut h, &a, "depends_on", &b).await.unwrap();
    try_relate(&mut h, &b, "depends_on", &c).await.unwrap();
    try_relate(&mut h, &c, "depends_on", &a).await.unwrap();
    let result = analyze(&mut h, analysis(&[&a], Downstream)).await;
    // c depends on a (depth 1), b on c (depth 2); a is where it started.
    assert_eq!(
        reached(&result),
        [(c.clone(), Impacted, 1), (b.clone(), Impacted, 2)]
    );
    let up = analyze(&mut h, analysis(&[&a], Upstream)).await;
    assert_eq!(reached(&up), [(b, Required, 1), (c, Required, 2)]);
}

async fn the_depth_bound_stops_the_walk_and_says_so(db: TestDb) {
    let mut h = start(&db).await;
    let mut chain = vec![add(&mut h, "application", "app-0").await];
    for i in 1..=4 {
        let next = add(&mut h, "application", &format!("app-{i}")).await;
        try_relate(&mut h, &next, "depends_on", &chain[i - 1])
            .await
            .unwrap();
        chain.push(next);
    }
    let mut request = analysis(&[&chain[0]], Downstream);
    request.max_depth = 2;
    let result = analyze(&mut h, request.clone()).await;
    assert_eq!(
        reached(&result),
        [
            (chain[1].clone(), Impacted, 1),
            (chain[2].clone(), Impacted, 2)
        ]
    );
    assert!(result.depth_limited);
    request.max_depth = 4;
    let result = analyze(&mut h, request.clone()).await;
    assert_eq!(result.impacted_cis.len(), 4);
    assert!(!result.depth_limited, "nothing left past depth 4");
    // The default depth (10) walks it all.
    request.max_depth = 0;
    let result = analyze(&mut h, request).await;
    assert_eq!(result.impacted_cis.len(), 4);
    assert!(!result.depth_limited);
}

async fn a_type_filter_walks_only_those_types(db: TestDb) {
    let mut h = start(&db).await;
    let server = add(&mut h, "linux_server", "srv-01").await;
    let hosted = add(&mut h, "application", "hosted").await;
    let user = add(&mut h, "application", "user").await;
    let rack = add(&mut h, "location", "rack").await;
    try_relate(&mut h, &hosted, "runs_on", &server)
        .await
        .unwrap();
    try_relate(&mut h, &user, "depends_on", &server)
        .await
        .unwrap();
    try_relate(&mut h, &rack, "contains", &server)
        .await
        .unwrap();
    let all = analyze(&mut h, analysis(&[&server], Downstream)).await;
    // contains carries failure from the rack to the server, not back.
    assert_eq!(
        reached(&all),
        [(hosted.clone(), Impacted, 1), (user.clone(), Impacted, 1)]
    );
    let mut request = analysis(&[&server], Downstream);
    request.relationship_types = vec!["relationshipTypes/runs_on".into()];
    let only = analyze(&mut h, request).await;
    assert_eq!(reached(&only), [(hosted.clone(), Impacted, 1)]);
    let from_rack = analyze(&mut h, analysis(&[&rack], Downstream)).await;
    assert_eq!(from_rack.impacted_cis.len(), 3);
    // A retired CI is not walked into.
    super::retire(&mut h, &user).await;
    // (Another request than the cached one: whether RetireCi makes cached
    // answers stale is the CI write path's part, not this test's.)
    let mut again = analysis(&[&server], Downstream);
    again.max_depth = 9;
    let after = analyze(&mut h, again).await;
    assert_eq!(reached(&after), [(hosted.clone(), Impacted, 1)]);
}

/// A cluster needing 2 of its 3 nodes up, an app on it, a service using the app.
struct Cluster {
    cluster: String,
    nodes: Vec<String>,
    app: String,
    service: String,
}

async fn cluster(h: &mut Harness) -> Cluster {
    let mut ci = crate::support::ci("cluster", "db-cluster", &[]);
    ci.min_members_up = 2;
    let cluster = add_ci(h, ci).await;
    let mut nodes = Vec::new();
    for i in 1..=3 {
        let node = add(h, "linux_server", &format!("node-{i}")).await;
        try_relate(h, &cluster, "has_member", &node).await.unwrap();
        nodes.push(node);
    }
    let app = add(h, "application", "billing").await;
    let service = add(h, "business_service", "Billing").await;
    try_relate(h, &app, "runs_on", &cluster).await.unwrap();
    try_relate(h, &service, "depends_on", &app).await.unwrap();
    Cluster {
        cluster,
        nodes,
        app,
        service,
    }
}

async fn a_redundant_cluster_degrades_until_too_few_members_are_up(db: TestDb) {
    let mut h = start(&db).await;
    let c = cluster(&mut h).await;
    let one = analyze(&mut h, analysis(&[&c.nodes[0]], Downstream)).await;
    assert_eq!(reached(&one), [(c.cluster.clone(), Degraded, 1)]);
    assert_eq!(
        (
            one.impacted_cis[0].members_up,
            one.impacted_cis[0].min_members_up
        ),
        (2, 2)
    );
    assert!(one.impacted_services.is_empty());

    let two = analyze(&mut h, analysis(&[&c.nodes[0], &c.nodes[1]], Downstream)).await;
    assert_eq!(
        reached(&two),
        [
            (c.cluster.clone(), Impacted, 1),
            (c.app.clone(), Impacted, 2),
            (c.service.clone(), Impacted, 3),
        ]
    );
    assert_eq!(
        (
            two.impacted_cis[0].members_up,
            two.impacted_cis[0].min_members_up
        ),
        (1, 2)
    );
    assert_eq!(two.impacted_services, [c.service.as_str()]);

    // Upstream, the app needs the cluster, and each node only as one of three.
    let up = analyze(&mut h, analysis(&[&c.app], Upstream)).await;
    let mut expected = vec![(c.cluster.clone(), Required, 1)];
    let mut nodes: Vec<_> = c.nodes.iter().map(|n| (n.clone(), Redundant, 2)).collect();
    expected.append(&mut nodes);
    assert_eq!(reached(&up), expected);
}

async fn a_degraded_cluster_falls_when_a_later_member_goes_down(db: TestDb) {
    let mut h = start(&db).await;
    let c = cluster(&mut h).await;
    // node-2 runs on a VM that runs on a host: the host going down takes node-2
    // down two hops later than node-1's own failure reaches the cluster.
    let host = add(&mut h, "linux_server", "host").await;
    let vm = add(&mut h, "virtual_machine", "vm").await;
    try_relate(&mut h, &vm, "runs_on", &host).await.unwrap();
    try_relate(&mut h, &c.nodes[1], "runs_on", &vm)
        .await
        .unwrap();
    let result = analyze(&mut h, analysis(&[&c.nodes[0], &host], Downstream)).await;
    let levels = reached(&result);
    assert!(
        levels.contains(&(c.cluster.clone(), Impacted, 1)),
        "{levels:?}"
    );
    assert!(
        levels
            .iter()
            .any(|(ci, level, _)| *ci == c.app && *level == Impacted)
    );
    assert_eq!(result.impacted_services, [c.service.as_str()]);

    // A CI that is not OPERATIONAL does not count as up either.
    let mut planned = crate::support::ci("cluster", "planned-cluster", &[]);
    planned.min_members_up = 1;
    let group = add_ci(&mut h, planned).await;
    let mut idle = crate::support::ci("linux_server", "idle", &[]);
    idle.status = pb::CiStatus::Installed as i32;
    let idle = add_ci(&mut h, idle).await;
    let busy = add(&mut h, "linux_server", "busy").await;
    try_relate(&mut h, &group, "has_member", &idle)
        .await
        .unwrap();
    try_relate(&mut h, &group, "has_member", &busy)
        .await
        .unwrap();
    let result = analyze(&mut h, analysis(&[&busy], Downstream)).await;
    assert_eq!(reached(&result), [(group, Impacted, 1)]);
}

async fn the_result_filter_picks_what_is_returned_not_what_is_walked(db: TestDb) {
    let mut h = start(&db).await;
    let s = stack(&mut h).await;
    let mut request = analysis(&[&s.switch], Downstream);
    request.result_filter = "ci_class = \"classes/business_service\"".into();
    let result = analyze(&mut h, request).await;
    assert_eq!(reached(&result), [(s.service.clone(), Impacted, 3)]);
    assert_eq!(result.impacted_cis[0].path.len(), 3);
    let mut bad = analysis(&[&s.switch], Downstream);
    bad.result_filter = "colour = \"red\"".into();
    let status = try_analyze(&mut h, bad).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["result_filter"]);
}

async fn max_results_truncates(db: TestDb) {
    let mut h = start(&db).await;
    let s = stack(&mut h).await;
    let mut request = analysis(&[&s.switch], Downstream);
    request.max_results = 2;
    let result = analyze(&mut h, request).await;
    assert_eq!(
        reached(&result),
        [
            (s.server.clone(), Impacted, 1),
            (s.app.clone(), Impacted, 2)
        ]
    );
    assert!(result.truncated);
    // The services are those reached, whatever was cut.
    assert_eq!(result.impacted_services, [s.service]);
}

async fn a_cached_answer_is_reused_until_the_graph_changes(db: TestDb) {
    let mut h = start(&db).await;
    let s = stack(&mut h).await;
    let request = analysis(&[&s.server], Downstream);
    let first = analyze(&mut h, request.clone()).await;
    let second = analyze(&mut h, request.clone()).await;
    // Same compute time: the second answer came from the cache.
    assert_eq!(second, first);
    let portal = add(&mut h, "application", "portal").await;
    let link = try_relate(&mut h, &portal, "runs_on", &s.server)
        .await
        .unwrap();
    let third = analyze(&mut h, request.clone()).await;
    assert_ne!(third.compute_time, first.compute_time);
    assert!(reached(&third).contains(&(portal.clone(), Impacted, 1)));
    let delete = pb::DeleteRelationshipRequest { name: link.name };
    h.client
        .delete_relationship(crate::support::as_(crate::support::CMDB_ADMIN, delete))
        .await
        .unwrap();
    let fourth = analyze(&mut h, request).await;
    assert_eq!(reached(&fourth), reached(&first));
}

async fn bad_requests_are_refused(db: TestDb) {
    let mut h = start(&db).await;
    let app = add(&mut h, "application", "billing").await;
    let request = pb::AnalyzeImpactRequest {
        cis: vec![],
        direction: 0,
        max_depth: 51,
        relationship_types: vec!["relationshipTypes/powers".into()],
        result_filter: String::new(),
        max_results: -1,
    };
    let status = try_analyze(&mut h, request).await.unwrap_err();
    assert_eq!(
        bad_fields(&status),
        [
            "cis",
            "direction",
            "max_depth",
            "max_results",
            "relationship_types[0]"
        ]
    );
    let malformed = try_analyze(&mut h, analysis(&[&app, "cis/1"], Downstream))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&malformed), ["cis[1]"]);
    let nobody = format!("cis/{}", uuid::Uuid::new_v4());
    let missing = try_analyze(&mut h, analysis(&[&app, &nobody], Upstream))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert!(missing.message().contains(&nobody));
}
