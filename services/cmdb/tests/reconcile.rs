//! Discovery intake: sources and precedence rules, ReportCis (create,
//! identify across sources, precedence and staleness, rejection, parking,
//! relationships, idempotency, validate_only, refusals, concurrency) and
//! parked matches.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/mod.rs"]
mod support;

#[path = "reconcile/intake.rs"]
mod intake;
#[path = "reconcile/sources.rs"]
mod sources;

use itsm_proto::itsm::cmdb::v1 as pb;
use support::{CMDB_ADMIN, Harness, as_};

/// Creates an enabled source `id` with these options.
pub async fn source(
    svc: &mut Harness,
    id: &str,
    stale_secs: i64,
    principals: &[&str],
) -> pb::DiscoverySource {
    let request = pb::CreateDiscoverySourceRequest {
        discovery_source: Some(pb::DiscoverySource {
            display_name: id.to_uppercase(),
            enabled: true,
            stale_after: (stale_secs > 0).then_some(prost_types::Duration {
                seconds: stale_secs,
                nanos: 0,
            }),
            allowed_principals: principals.iter().map(|p| (*p).to_owned()).collect(),
            ..pb::DiscoverySource::default()
        }),
        discovery_source_id: id.to_owned(),
        request_id: String::new(),
    };
    svc.client
        .create_discovery_source(as_(CMDB_ADMIN, request))
        .await
        .unwrap()
        .into_inner()
}

/// A reported linux server.
pub fn server(correlation_id: &str, attributes: &[(&str, &str)]) -> pb::ReportedCi {
    let attributes: Vec<(&str, pb::AttributeValue)> = attributes
        .iter()
        .map(|(k, v)| (*k, support::text(v)))
        .collect();
    let host = attributes
        .iter()
        .find(|(k, _)| *k == "host_name")
        .and_then(|(_, v)| match &v.value {
            Some(pb::attribute_value::Value::StringValue(s)) => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_else(|| correlation_id.to_owned());
    pb::ReportedCi {
        correlation_id: correlation_id.to_owned(),
        ci: Some(support::ci("linux_server", &host, &attributes)),
        cleared_fields: Vec::new(),
    }
}

/// Reports `items` as `source` (by the CMDB admin).
pub async fn report(
    svc: &mut Harness,
    source: &str,
    items: Vec<pb::ReportedCi>,
) -> pb::ReportCisResponse {
    report_with(svc, source, items, Vec::new(), "", false).await
}

pub async fn report_with(
    svc: &mut Harness,
    source: &str,
    items: Vec<pb::ReportedCi>,
    relationships: Vec<pb::ReportedRelationship>,
    request_id: &str,
    validate_only: bool,
) -> pb::ReportCisResponse {
    let request = pb::ReportCisRequest {
        discovery_source: format!("discoverySources/{source}"),
        items,
        relationships,
        request_id: request_id.to_owned(),
        validate_only,
    };
    svc.client
        .report_cis(as_(CMDB_ADMIN, request))
        .await
        .unwrap()
        .into_inner()
}

pub fn outcome(result: &pb::ReportCiResult) -> pb::ReportOutcome {
    pb::ReportOutcome::try_from(result.outcome).unwrap()
}

/// The text of attribute `key` of `ci`.
pub fn attr(ci: &pb::Ci, key: &str) -> String {
    match ci.attributes.get(key).and_then(|v| v.value.as_ref()) {
        Some(pb::attribute_value::Value::StringValue(s)) => s.clone(),
        Some(pb::attribute_value::Value::NumberValue(n)) => n.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}
