//! ReportCis and parked matches.

use std::time::Duration;

use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_testkit::{TestDb, backend_tests};
use tonic::Code;

use super::support::{self, CMDB_ADMIN, Harness, SCANNER, as_};
use super::{attr, outcome, report, report_with, server, source};
use pb::ReportOutcome::{Created, Parked, Rejected, Unchanged, Updated};

backend_tests!(
    a_second_source_finds_the_ci_instead_of_duplicating_it,
    precedence_overrules_a_lower_source_until_the_higher_goes_stale,
    one_bad_item_is_rejected_and_the_others_applied,
    ambiguous_reports_are_parked_and_resolved,
    relationships_join_items_by_correlation_id,
    a_retry_returns_the_first_response_and_validate_only_writes_nothing,
    disabled_sources_and_other_principals_are_refused,
    concurrent_reports_of_one_ci_make_one_ci,
    a_retired_ci_and_conflicting_rules_are_parked_not_guessed,
    one_report_is_identified_by_rules_as_a_whole,
);

async fn get(svc: &mut Harness, name: &str) -> pb::Ci {
    svc.get(name).await.unwrap()
}

async fn a_second_source_finds_the_ci_instead_of_duplicating_it(db: TestDb) {
    let mut svc = support::start(&db).await;
    source(&mut svc, "sccm", 0, &[]).await;
    source(&mut svc, "cloud", 0, &[]).await;
    let first = report(
        &mut svc,
        "sccm",
        vec![server(
            "sccm-1",
            &[("serial_number", "SN1"), ("host_name", "web-01")],
        )],
    )
    .await;
    assert_eq!(first.created_count, 1);
    let result = &first.results[0];
    assert_eq!(outcome(result), Created);
    assert_eq!(result.correlation_id, "sccm-1");
    let name = result.ci.clone();

    let second = report(
        &mut svc,
        "cloud",
        vec![server(
            "i-0abc",
            &[
                ("serial_number", "SN1"),
                ("host_name", "web-01"),
                ("ip_address", "10.0.0.7"),
            ],
        )],
    )
    .await;
    let result = &second.results[0];
    assert_eq!(outcome(result), Updated, "{result:?}");
    assert_eq!(result.ci, name);
    assert_eq!(result.matched_rule, ["serial_number"]);
    assert_eq!(result.applied_fields, ["attributes.ip_address"]);
    assert_eq!(svc.count("cis").await, 1);
    assert_eq!(svc.count("ci_sightings").await, 2);
    let ci = get(&mut svc, &name).await;
    assert_eq!(attr(&ci, "ip_address"), "10.0.0.7");
    let mut seen: Vec<String> = ci
        .sightings
        .iter()
        .map(|s| format!("{}/{}", s.discovery_source, s.correlation_id))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            "discoverySources/cloud/i-0abc",
            "discoverySources/sccm/sccm-1"
        ]
    );
    assert_eq!(
        ci.provenance["attributes.ip_address"].discovery_source,
        "discoverySources/cloud"
    );

    // The same report again: found by its correlation id, nothing changes.
    let third = report(
        &mut svc,
        "sccm",
        vec![server(
            "sccm-1",
            &[("serial_number", "SN1"), ("host_name", "web-01")],
        )],
    )
    .await;
    let result = &third.results[0];
    assert_eq!(outcome(result), Unchanged);
    assert!(result.matched_rule.is_empty());
    assert_eq!(third.unchanged_count, 1);
    assert_eq!(get(&mut svc, &name).await.etag, ci.etag);
}

async fn precedence_overrules_a_lower_source_until_the_higher_goes_stale(db: TestDb) {
    let mut svc = support::start(&db).await;
    source(&mut svc, "sccm", 0, &[]).await;
    source(&mut svc, "manual_tool", 0, &[]).await;
    let rule = pb::CreatePrecedenceRuleRequest {
        precedence_rule: Some(pb::PrecedenceRule {
            ci_class: "classes/server".into(),
            field: "attributes.os_version".into(),
            discovery_sources: vec![
                "discoverySources/sccm".into(),
                "discoverySources/manual_tool".into(),
            ],
            stale_after: Some(prost_types::Duration {
                seconds: 2,
                nanos: 0,
            }),
            ..pb::PrecedenceRule::default()
        }),
        request_id: String::new(),
    };
    svc.client
        .create_precedence_rule(as_(CMDB_ADMIN, rule))
        .await
        .unwrap();
    let created = report(
        &mut svc,
        "sccm",
        vec![server(
            "s-1",
            &[
                ("serial_number", "SN9"),
                ("host_name", "h9"),
                ("os_version", "22.04"),
            ],
        )],
    )
    .await;
    let name = created.results[0].ci.clone();

    let lower = server(
        "t-1",
        &[
            ("serial_number", "SN9"),
            ("host_name", "h9"),
            ("os_version", "20.04"),
            ("dns_domain", "example.com"),
        ],
    );
    let overruled = report(&mut svc, "manual_tool", vec![lower.clone()]).await;
    let result = &overruled.results[0];
    assert_eq!(outcome(result), Updated, "{result:?}");
    assert_eq!(result.overruled_fields, ["attributes.os_version"]);
    assert_eq!(result.applied_fields, ["attributes.dns_domain"]);
    let ci = get(&mut svc, &name).await;
    assert_eq!(attr(&ci, "os_version"), "22.04");
    assert_eq!(attr(&ci, "dns_domain"), "example.com");
    assert_eq!(
        ci.provenance["attributes.os_version"].discovery_source,
        "discoverySources/sccm"
    );

    // The higher source's value goes stale: the lower one may now set it.
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let applied = report(&mut svc, "manual_tool", vec![lower]).await;
    let result = &applied.results[0];
    assert_eq!(outcome(result), Updated, "{result:?}");
    assert_eq!(result.applied_fields, ["attributes.os_version"]);
    assert!(result.overruled_fields.is_empty());
    let ci = get(&mut svc, &name).await;
    assert_eq!(attr(&ci, "os_version"), "20.04");
    assert_eq!(
        ci.provenance["attributes.os_version"].discovery_source,
        "discoverySources/manual_tool"
    );
    // And sccm, ranked higher, takes it back at once.
    let back = report(
        &mut svc,
        "sccm",
        vec![server(
            "s-1",
            &[
                ("serial_number", "SN9"),
                ("host_name", "h9"),
                ("os_version", "22.04"),
            ],
        )],
    )
    .await;
    assert_eq!(back.results[0].applied_fields, ["attributes.os_version"]);
}

async fn one_bad_item_is_rejected_and_the_others_applied(db: TestDb) {
    let mut svc = support::start(&db).await;
    source(&mut svc, "sccm", 0, &[]).await;
    let mut bad = server("b-1", &[("serial_number", "SN-B")]);
    bad.ci
        .as_mut()
        .unwrap()
        .attributes
        .insert("cpu_count".into(), support::text("many"));
    let mut unknown = server("b-2", &[("serial_number", "SN-C")]);
    unknown.ci.as_mut().unwrap().ci_class = "classes/no_such_class".into();
    let response = report(
        &mut svc,
        "sccm",
        vec![
            server("a-1", &[("serial_number", "SN-A")]),
            bad,
            unknown,
            server("c-1", &[("serial_number", "SN-D")]),
        ],
    )
    .await;
    let outcomes: Vec<_> = response.results.iter().map(outcome).collect();
    assert_eq!(outcomes, [Created, Rejected, Rejected, Created]);
    let violations: Vec<&str> = response.results[1]
        .violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    assert_eq!(violations, ["items[1].ci.attributes.cpu_count"]);
    assert!(!response.results[1].error.is_empty());
    assert_eq!(
        response.results[2].violations[0].field,
        "items[2].ci.ci_class"
    );
    assert_eq!(response.rejected_count, 2);
    assert_eq!(response.created_count, 2);
    assert_eq!(svc.count("cis").await, 2);
}

async fn ambiguous_reports_are_parked_and_resolved(db: TestDb) {
    let mut svc = support::start(&db).await;
    source(&mut svc, "agent", 0, &[]).await;
    source(&mut svc, "scanner", 0, &[]).await;
    let created = report(
        &mut svc,
        "agent",
        vec![
            server("a-1", &[("host_name", "web"), ("dns_domain", "corp")]),
            server("a-2", &[("host_name", "db"), ("dns_domain", "corp")]),
        ],
    )
    .await;
    assert_eq!(created.created_count, 2);
    let (web, db_ci) = (created.results[0].ci.clone(), created.results[1].ci.clone());
    // Someone renames the second host: now two CIs share host and domain.
    let etag = get(&mut svc, &db_ci).await.etag;
    let mut renamed = support::ci("linux_server", "db", &[("host_name", support::text("web"))]);
    renamed.name.clone_from(&db_ci);
    svc.client
        .update_ci(as_(
            CMDB_ADMIN,
            pb::UpdateCiRequest {
                ci: Some(renamed),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["attributes.host_name".into()],
                }),
                etag,
            },
        ))
        .await
        .unwrap();

    let item = server("s-77", &[("host_name", "WEB"), ("dns_domain", "corp")]);
    let first = report(&mut svc, "scanner", vec![item.clone()]).await;
    let result = &first.results[0];
    assert_eq!(outcome(result), Parked, "{result:?}");
    assert_eq!(first.parked_count, 1);
    let parked_name = result.parked_match.clone();
    let second = report(&mut svc, "scanner", vec![item.clone()]).await;
    assert_eq!(second.results[0].parked_match, parked_name);
    assert_eq!(svc.count("cis").await, 2, "nothing was created");

    let parked = svc
        .client
        .get_parked_match(as_(
            CMDB_ADMIN,
            pb::GetParkedMatchRequest {
                name: parked_name.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(parked.reason, pb::ParkReason::MultipleMatches as i32);
    assert_eq!(parked.occurrence_count, 2);
    assert_eq!(parked.state, pb::ParkedMatchState::Open as i32);
    let mut candidates: Vec<&str> = parked.candidates.iter().map(|c| c.ci.as_str()).collect();
    candidates.sort_unstable();
    let mut expected = vec![web.as_str(), db_ci.as_str()];
    expected.sort_unstable();
    assert_eq!(candidates, expected);
    let open = svc
        .client
        .list_parked_matches(as_(CMDB_ADMIN, pb::ListParkedMatchesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(open.parked_matches.len(), 1);

    let resolve = |action: pb::ParkedMatchAction, ci: &str| pb::ResolveParkedMatchRequest {
        name: parked_name.clone(),
        action: action as i32,
        ci: ci.to_owned(),
        note: "the web server".into(),
        etag: parked.etag.clone(),
    };
    let missing = svc
        .client
        .resolve_parked_match(as_(
            CMDB_ADMIN,
            resolve(pb::ParkedMatchAction::UseExisting, ""),
        ))
        .await
        .unwrap_err();
    assert_eq!(support::bad_fields(&missing), ["ci"]);
    let resolved = svc
        .client
        .resolve_parked_match(as_(
            CMDB_ADMIN,
            resolve(pb::ParkedMatchAction::UseExisting, &web),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.state, pb::ParkedMatchState::Resolved as i32);
    assert_eq!(resolved.resolved_ci, web);
    let again = svc
        .client
        .resolve_parked_match(as_(CMDB_ADMIN, resolve(pb::ParkedMatchAction::Discard, "")))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::Aborted, "the etag moved on");
    assert_eq!(
        svc.event_names(&parked_name).await,
        ["cmdb.parked_match.created", "cmdb.parked_match.resolved"]
    );

    // The next report goes straight to the chosen CI.
    let next = report(&mut svc, "scanner", vec![item]).await;
    let result = &next.results[0];
    assert_eq!(outcome(result), Unchanged, "{result:?}");
    assert_eq!(result.ci, web);
    assert!(result.matched_rule.is_empty());
    let none_open = svc
        .client
        .list_parked_matches(as_(CMDB_ADMIN, pb::ListParkedMatchesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(none_open.parked_matches.is_empty());
    let resolved_list = svc
        .client
        .list_parked_matches(as_(
            CMDB_ADMIN,
            pb::ListParkedMatchesRequest {
                filter: "state = RESOLVED".into(),
                ..pb::ListParkedMatchesRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved_list.parked_matches.len(), 1);
}

fn link(source: &str, target: &str) -> pb::ReportedRelationship {
    let end = |id: &str| pb::ReportedEndpoint {
        endpoint: Some(pb::reported_endpoint::Endpoint::CorrelationId(
            id.to_owned(),
        )),
    };
    pb::ReportedRelationship {
        r#type: "relationshipTypes/runs_on".into(),
        source_endpoint: Some(end(source)),
        target_endpoint: Some(end(target)),
    }
}

async fn relationships_join_items_by_correlation_id(db: TestDb) {
    let mut svc = support::start(&db).await;
    source(&mut svc, "sccm", 0, &[]).await;
    let app = pb::ReportedCi {
        correlation_id: "app-1".into(),
        ci: Some(support::ci("application", "billing", &[])),
        cleared_fields: Vec::new(),
    };
    let mut bad = server("bad-1", &[("serial_number", "SN-X")]);
    bad.ci
        .as_mut()
        .unwrap()
        .attributes
        .insert("cpu_count".into(), support::text("x"));
    let items = vec![app, server("srv-1", &[("serial_number", "SN-R")]), bad];
    let relationships = vec![
        link("app-1", "srv-1"),
        link("app-1", "bad-1"),
        link("app-1", "nobody"),
    ];
    let first = report_with(
        &mut svc,
        "sccm",
        items.clone(),
        relationships.clone(),
        "",
        false,
    )
    .await;
    let outcomes: Vec<_> = first
        .relationship_results
        .iter()
        .map(|r| pb::RelationshipOutcome::try_from(r.outcome).unwrap())
        .collect();
    use pb::RelationshipOutcome as R;
    assert_eq!(outcomes, [R::Created, R::Skipped, R::Rejected], "{first:?}");
    let relationship = first.relationship_results[0].relationship.clone();
    assert!(relationship.starts_with("relationships/"));
    assert_eq!(svc.count("relationships").await, 1);

    let second = report_with(&mut svc, "sccm", items, relationships, "", false).await;
    assert_eq!(second.relationship_results[0].outcome, R::Unchanged as i32);
    assert_eq!(second.relationship_results[0].relationship, relationship);
    assert_eq!(svc.count("relationships").await, 1);
}

async fn a_retry_returns_the_first_response_and_validate_only_writes_nothing(db: TestDb) {
    let mut svc = support::start(&db).await;
    source(&mut svc, "sccm", 0, &[]).await;
    let items = vec![server("r-1", &[("serial_number", "SN-R1")])];

    let dry = report_with(&mut svc, "sccm", items.clone(), Vec::new(), "", true).await;
    assert_eq!(dry.created_count, 1);
    assert_eq!(outcome(&dry.results[0]), Created);
    assert!(dry.results[0].ci.is_empty());
    assert_eq!(svc.count("cis").await, 0);
    assert_eq!(svc.count("ci_history").await, 0);

    let first = report_with(
        &mut svc,
        "sccm",
        items.clone(),
        Vec::new(),
        "batch-42",
        false,
    )
    .await;
    assert_eq!(outcome(&first.results[0]), Created);
    let retry = report_with(
        &mut svc,
        "sccm",
        items.clone(),
        Vec::new(),
        "batch-42",
        false,
    )
    .await;
    assert_eq!(retry, first, "the retry gets the first response");
    assert_eq!(svc.count("cis").await, 1);
    let fresh = report_with(&mut svc, "sccm", items, Vec::new(), "batch-43", false).await;
    assert_eq!(outcome(&fresh.results[0]), Unchanged);
}

async fn disabled_sources_and_other_principals_are_refused(db: TestDb) {
    let mut svc = support::start(&db).await;
    source(&mut svc, "locked", 0, &["svc-other"]).await;
    source(&mut svc, "mine", 0, &["svc-sccm"]).await;
    let request = |source: &str| pb::ReportCisRequest {
        discovery_source: format!("discoverySources/{source}"),
        items: vec![server("x-1", &[("serial_number", "SN-X1")])],
        ..pb::ReportCisRequest::default()
    };
    let denied = svc
        .client
        .report_cis(as_(SCANNER, request("locked")))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let allowed = svc
        .client
        .report_cis(as_(SCANNER, request("mine")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(allowed.created_count, 1);
    let unknown = svc
        .client
        .report_cis(as_(SCANNER, request("nobody")))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    let disable = pb::UpdateDiscoverySourceRequest {
        discovery_source: Some(pb::DiscoverySource {
            name: "discoverySources/mine".into(),
            enabled: false,
            ..pb::DiscoverySource::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["enabled".into()],
        }),
        etag: "v1".into(),
    };
    svc.client
        .update_discovery_source(as_(CMDB_ADMIN, disable))
        .await
        .unwrap();
    let disabled = svc
        .client
        .report_cis(as_(SCANNER, request("mine")))
        .await
        .unwrap_err();
    assert_eq!(support::precondition(&disabled).1, "discoverySources/mine");
    let too_many = pb::ReportCisRequest {
        discovery_source: "discoverySources/mine".into(),
        items: (0..1_001).map(|k| server(&format!("x-{k}"), &[])).collect(),
        ..pb::ReportCisRequest::default()
    };
    let status = svc
        .client
        .report_cis(as_(SCANNER, too_many))
        .await
        .unwrap_err();
    assert_eq!(support::bad_fields(&status), ["items"]);
    assert_eq!(svc.count("cis").await, 1);
}

async fn concurrent_reports_of_one_ci_make_one_ci(db: TestDb) {
    let mut svc = support::start(&db).await;
    source(&mut svc, "sccm", 0, &[]).await;
    source(&mut svc, "cloud", 0, &[]).await;
    // Within one batch: two items of one identity.
    let same = report(
        &mut svc,
        "sccm",
        vec![
            server("d-1", &[("serial_number", "SN-DUP")]),
            server("d-2", &[("serial_number", "SN-DUP")]),
        ],
    )
    .await;
    assert_eq!(same.created_count, 1, "{same:?}");
    assert_eq!(same.results[0].ci, same.results[1].ci);
    assert_eq!(svc.count("cis").await, 1);

    // Two batches at once, from two sources, 20 identities each.
    let batch = |prefix: &str| -> Vec<pb::ReportedCi> {
        (0..20)
            .map(|k| {
                server(
                    &format!("{prefix}-{k}"),
                    &[("serial_number", &format!("SN-C{k}"))],
                )
            })
            .collect()
    };
    let mut a = svc.client().await;
    let mut b = svc.client().await;
    let request = |source: &str, items| pb::ReportCisRequest {
        discovery_source: format!("discoverySources/{source}"),
        items,
        ..pb::ReportCisRequest::default()
    };
    let (ra, rb) = tokio::join!(
        a.report_cis(as_(CMDB_ADMIN, request("sccm", batch("a")))),
        b.report_cis(as_(CMDB_ADMIN, request("cloud", batch("b")))),
    );
    let (ra, rb) = (ra.unwrap().into_inner(), rb.unwrap().into_inner());
    assert_eq!(ra.created_count + rb.created_count, 20, "{ra:?} {rb:?}");
    assert_eq!(ra.rejected_count + rb.rejected_count, 0);
    for (x, y) in ra.results.iter().zip(&rb.results) {
        assert_eq!(x.ci, y.ci);
    }
    assert_eq!(svc.count("cis").await, 21);
}

async fn a_retired_ci_and_conflicting_rules_are_parked_not_guessed(db: TestDb) {
    let mut svc = support::start(&db).await;
    source(&mut svc, "sccm", 0, &[]).await;
    let created = report(
        &mut svc,
        "sccm",
        vec![
            server("old-1", &[("serial_number", "SN-OLD")]),
            server("h-1", &[("host_name", "app"), ("dns_domain", "corp")]),
        ],
    )
    .await;
    assert_eq!(created.created_count, 2);
    let old = created.results[0].ci.clone();
    let etag = get(&mut svc, &old).await.etag;
    svc.client
        .retire_ci(as_(
            CMDB_ADMIN,
            pb::RetireCiRequest {
                name: old.clone(),
                reason: "decommissioned".into(),
                etag,
            },
        ))
        .await
        .unwrap();
    let again = report(
        &mut svc,
        "sccm",
        vec![server("old-1", &[("serial_number", "SN-OLD")])],
    )
    .await;
    assert_eq!(outcome(&again.results[0]), Parked, "{again:?}");
    let parked = svc
        .client
        .get_parked_match(as_(
            CMDB_ADMIN,
            pb::GetParkedMatchRequest {
                name: again.results[0].parked_match.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(parked.reason, pb::ParkReason::RetiredMatch as i32);
    assert_eq!(parked.candidates[0].ci, old);

    // A serial number pointing at one CI and a host name at another.
    let mut renamed = server("new-1", &[("serial_number", "SN-NEW"), ("host_name", "x")]);
    renamed.ci.as_mut().unwrap().display_name = "x".into();
    let made = report(&mut svc, "sccm", vec![renamed]).await;
    assert_eq!(outcome(&made.results[0]), Created);
    let conflicting = report(
        &mut svc,
        "sccm",
        vec![server(
            "other-1",
            &[
                ("serial_number", "SN-NEW"),
                ("host_name", "app"),
                ("dns_domain", "corp"),
            ],
        )],
    )
    .await;
    assert_eq!(outcome(&conflicting.results[0]), Parked, "{conflicting:?}");
    let parked = svc
        .client
        .get_parked_match(as_(
            CMDB_ADMIN,
            pb::GetParkedMatchRequest {
                name: conflicting.results[0].parked_match.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(parked.reason, pb::ParkReason::ConflictingRules as i32);
    let rules: Vec<&Vec<String>> = parked.candidates.iter().map(|c| &c.matched_rule).collect();
    assert_eq!(
        rules,
        [
            &vec!["serial_number".to_owned()],
            &vec!["host_name".to_owned(), "dns_domain".to_owned()]
        ]
    );
    assert_eq!(svc.count("cis").await, 3);
}

/// A report whose items are new to the source: identified together (each by
/// the first rule that finds it, conflicts parked), new CIs created once
/// even when two items of the report name the same new CI.
async fn one_report_is_identified_by_rules_as_a_whole(db: TestDb) {
    let mut svc = support::start(&db).await;
    source(&mut svc, "sccm", 0, &[]).await;
    source(&mut svc, "cloud", 0, &[]).await;
    let domain = ("dns_domain", "dc1.example.com");
    let first = report(
        &mut svc,
        "sccm",
        vec![
            server(
                "a",
                &[("serial_number", "SN-A"), ("host_name", "web-a"), domain],
            ),
            server(
                "b",
                &[("serial_number", "SN-B"), ("host_name", "web-b"), domain],
            ),
            server(
                "c",
                &[("serial_number", "SN-C"), ("host_name", "web-c"), domain],
            ),
        ],
    )
    .await;
    assert_eq!(first.created_count, 3, "{first:?}");
    let [a, b, c] = [0, 1, 2].map(|i| first.results[i].ci.clone());

    let second = report(
        &mut svc,
        "cloud",
        vec![
            // The serial number in other case: the rule ignores case.
            server("c-1", &[("serial_number", "sn-a")]),
            // No serial number: the host name and domain rule finds it.
            server("c-2", &[("host_name", "WEB-B"), domain]),
            // The serial number says C, the host name A: not guessed.
            server(
                "c-3",
                &[("serial_number", "SN-C"), ("host_name", "web-a"), domain],
            ),
            // New, and reported twice under two correlation ids: one CI.
            server(
                "c-4",
                &[("serial_number", "SN-D"), ("host_name", "web-d"), domain],
            ),
            server("c-5", &[("serial_number", "SN-D")]),
        ],
    )
    .await;
    let results = &second.results;
    assert_eq!(results[0].ci, a, "{results:?}");
    assert_eq!(results[0].matched_rule, ["serial_number"]);
    assert_eq!(results[1].ci, b, "{results:?}");
    assert_eq!(results[1].matched_rule, ["host_name", "dns_domain"]);
    assert_eq!(outcome(&results[2]), Parked, "{results:?}");
    assert_eq!(outcome(&results[3]), Created, "{results:?}");
    assert_ne!(outcome(&results[4]), Created, "{results:?}");
    assert_eq!(results[4].ci, results[3].ci);
    assert_eq!(results[4].matched_rule, ["serial_number"]);
    assert_eq!(svc.count("cis").await, 4);
    // C stays as it was: the parked item changed nothing.
    assert_eq!(get(&mut svc, &c).await.sightings.len(), 1);
}
