//! Discovery sources and precedence rules: CRUD, bad input, events.

use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_testkit::{TestDb, backend_tests};
use tonic::Code;

use super::source;
use super::support::{self, CMDB_ADMIN, as_, bad_fields};

backend_tests!(
    sources_are_created_read_listed_updated_and_deleted,
    precedence_rules_are_checked_and_unique
);

async fn sources_are_created_read_listed_updated_and_deleted(db: TestDb) {
    let mut svc = support::start(&db).await;
    let created = source(&mut svc, "sccm", 3600, &[]).await;
    assert_eq!(created.name, "discoverySources/sccm");
    assert!(created.enabled);
    assert_eq!(created.etag, "v1");

    // Bad input: every bad field named, nothing written.
    let bad = pb::CreateDiscoverySourceRequest {
        discovery_source: Some(pb::DiscoverySource {
            stale_after: Some(prost_types::Duration {
                seconds: -5,
                nanos: 0,
            }),
            allowed_classes: vec!["classes/no_such_class".into()],
            ..pb::DiscoverySource::default()
        }),
        discovery_source_id: "Bad-Id".into(),
        request_id: String::new(),
    };
    let status = svc
        .client
        .create_discovery_source(as_(CMDB_ADMIN, bad))
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        [
            "discovery_source_id",
            "discovery_source.stale_after",
            "discovery_source.allowed_classes[0]"
        ]
    );
    let manual = pb::CreateDiscoverySourceRequest {
        discovery_source: Some(pb::DiscoverySource::default()),
        discovery_source_id: "manual".into(),
        request_id: String::new(),
    };
    let status = svc
        .client
        .create_discovery_source(as_(CMDB_ADMIN, manual))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["discovery_source_id"]);
    let again = pb::CreateDiscoverySourceRequest {
        discovery_source: Some(pb::DiscoverySource::default()),
        discovery_source_id: "sccm".into(),
        request_id: String::new(),
    };
    let status = svc
        .client
        .create_discovery_source(as_(CMDB_ADMIN, again))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(svc.count("discovery_sources").await, 1);

    source(&mut svc, "agent", 0, &[]).await;
    let got = svc
        .client
        .get_discovery_source(as_(
            CMDB_ADMIN,
            pb::GetDiscoverySourceRequest {
                name: "discoverySources/sccm".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, created);
    let page = svc
        .client
        .list_discovery_sources(as_(
            CMDB_ADMIN,
            pb::ListDiscoverySourcesRequest {
                page_size: 1,
                ..pb::ListDiscoverySourcesRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.discovery_sources.len(), 1);
    assert_eq!(page.discovery_sources[0].name, "discoverySources/agent");
    let rest = svc
        .client
        .list_discovery_sources(as_(
            CMDB_ADMIN,
            pb::ListDiscoverySourcesRequest {
                page_size: 1,
                page_token: page.next_page_token,
                ..pb::ListDiscoverySourcesRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.discovery_sources[0].name, "discoverySources/sccm");
    assert!(rest.next_page_token.is_empty());

    let update = |etag: &str| pb::UpdateDiscoverySourceRequest {
        discovery_source: Some(pb::DiscoverySource {
            name: "discoverySources/sccm".into(),
            enabled: false,
            ..pb::DiscoverySource::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["enabled".into()],
        }),
        etag: etag.to_owned(),
    };
    let updated = svc
        .client
        .update_discovery_source(as_(CMDB_ADMIN, update("v1")))
        .await
        .unwrap()
        .into_inner();
    assert!(!updated.enabled);
    assert_eq!(updated.etag, "v2");
    assert_eq!(
        updated.display_name, "SCCM",
        "fields outside the mask are kept"
    );
    let stale = svc
        .client
        .update_discovery_source(as_(CMDB_ADMIN, update("v1")))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);

    svc.client
        .delete_discovery_source(as_(
            CMDB_ADMIN,
            pb::DeleteDiscoverySourceRequest {
                name: "discoverySources/sccm".into(),
                etag: "v2".into(),
            },
        ))
        .await
        .unwrap();
    let gone = svc
        .client
        .get_discovery_source(as_(
            CMDB_ADMIN,
            pb::GetDiscoverySourceRequest {
                name: "discoverySources/sccm".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    assert_eq!(
        svc.event_names("discoverySources/sccm").await,
        [
            "cmdb.discovery_source.created",
            "cmdb.discovery_source.updated",
            "cmdb.discovery_source.deleted"
        ]
    );
}

fn rule(class: &str, field: &str, sources: &[&str]) -> pb::CreatePrecedenceRuleRequest {
    pb::CreatePrecedenceRuleRequest {
        precedence_rule: Some(pb::PrecedenceRule {
            ci_class: format!("classes/{class}"),
            field: field.to_owned(),
            discovery_sources: sources
                .iter()
                .map(|s| format!("discoverySources/{s}"))
                .collect(),
            ..pb::PrecedenceRule::default()
        }),
        request_id: String::new(),
    }
}

async fn precedence_rules_are_checked_and_unique(db: TestDb) {
    let mut svc = support::start(&db).await;
    source(&mut svc, "sccm", 0, &[]).await;
    let created = svc
        .client
        .create_precedence_rule(as_(
            CMDB_ADMIN,
            rule("server", "attributes.os_version", &["sccm", "manual"]),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(created.name.starts_with("precedenceRules/"));
    assert_eq!(created.etag, "v1");

    let twice = svc
        .client
        .create_precedence_rule(as_(
            CMDB_ADMIN,
            rule("server", "attributes.os_version", &["sccm"]),
        ))
        .await
        .unwrap_err();
    assert_eq!(twice.code(), Code::AlreadyExists);

    let bad = svc
        .client
        .create_precedence_rule(as_(
            CMDB_ADMIN,
            rule(
                "server",
                "attributes.no_such_key",
                &["sccm", "nobody", "sccm"],
            ),
        ))
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&bad),
        [
            "precedence_rule.field",
            "precedence_rule.discovery_sources[1]",
            "precedence_rule.discovery_sources[2]"
        ]
    );
    let bad = svc
        .client
        .create_precedence_rule(as_(CMDB_ADMIN, rule("no_such_class", "*", &[])))
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&bad),
        [
            "precedence_rule.ci_class",
            "precedence_rule.discovery_sources"
        ]
    );
    assert_eq!(svc.count("precedence_rules").await, 1);

    // A star rule for another class is fine; listing by class finds one.
    svc.client
        .create_precedence_rule(as_(CMDB_ADMIN, rule("linux_server", "*", &["sccm"])))
        .await
        .unwrap();
    let listed = svc
        .client
        .list_precedence_rules(as_(
            CMDB_ADMIN,
            pb::ListPrecedenceRulesRequest {
                filter: r#"ci_class = "classes/linux_server""#.into(),
                ..pb::ListPrecedenceRulesRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.precedence_rules.len(), 1);
    assert_eq!(listed.precedence_rules[0].field, "*");

    let updated = svc
        .client
        .update_precedence_rule(as_(
            CMDB_ADMIN,
            pb::UpdatePrecedenceRuleRequest {
                precedence_rule: Some(pb::PrecedenceRule {
                    name: created.name.clone(),
                    discovery_sources: vec!["discoverySources/manual".into()],
                    ..pb::PrecedenceRule::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["discovery_sources".into()],
                }),
                etag: "v1".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.discovery_sources, ["discoverySources/manual"]);
    assert_eq!(updated.field, "attributes.os_version");
    svc.client
        .delete_precedence_rule(as_(
            CMDB_ADMIN,
            pb::DeletePrecedenceRuleRequest {
                name: created.name.clone(),
                etag: String::new(),
            },
        ))
        .await
        .unwrap();
    assert_eq!(svc.count("precedence_rules").await, 1);
    assert_eq!(
        svc.event_names(&created.name).await,
        [
            "cmdb.precedence_rule.created",
            "cmdb.precedence_rule.updated",
            "cmdb.precedence_rule.deleted"
        ]
    );
}
