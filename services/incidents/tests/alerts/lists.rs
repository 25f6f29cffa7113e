//! Reading alert groups: by name, and listed with filters, orders and pages.

use itsm_proto::itsm::incidents::v1 as pb;
use itsm_testkit::{TestDb, backend_tests};
use tonic::Code;

use crate::helpers::{MONITORING, firing, ingest, resolved};
use crate::support::{ADA, AGENT, Harness, as_, bad_fields, start};

backend_tests!(
    groups_are_read_by_name,
    groups_are_listed_filtered_and_paged,
);

async fn list(
    svc: &mut Harness,
    filter: &str,
    order_by: &str,
    page_size: i32,
    page_token: &str,
) -> Result<pb::ListAlertGroupsResponse, tonic::Status> {
    let request = pb::ListAlertGroupsRequest {
        page_size,
        page_token: page_token.to_owned(),
        filter: filter.to_owned(),
        order_by: order_by.to_owned(),
    };
    let reply = svc.client.list_alert_groups(as_(AGENT, request)).await;
    reply.map(tonic::Response::into_inner)
}

async fn fingerprints(svc: &mut Harness, filter: &str, order_by: &str) -> Vec<String> {
    let page = list(svc, filter, order_by, 0, "").await.unwrap();
    assert!(page.next_page_token.is_empty());
    page.alert_groups
        .into_iter()
        .map(|g| g.fingerprint)
        .collect()
}

async fn groups_are_read_by_name(db: TestDb) {
    let mut svc = start(&db).await;
    ingest(&mut svc, vec![firing("known", "x")]).await;
    let get = |name: &str, who: &str| {
        as_(
            who,
            pb::GetAlertGroupRequest {
                name: name.to_owned(),
            },
        )
    };
    let found = svc
        .client
        .get_alert_group(get("alertGroups/known", MONITORING))
        .await;
    assert_eq!(found.unwrap().into_inner().fingerprint, "known");
    let status = svc
        .client
        .get_alert_group(get("alertGroups/unknown", AGENT))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    for bad in [
        "known",
        "alertGroups/",
        "alertGroups/a/b",
        "incidents/known",
    ] {
        let status = svc
            .client
            .get_alert_group(get(bad, AGENT))
            .await
            .unwrap_err();
        assert_eq!(bad_fields(&status), ["name"], "{bad}");
    }
    let status = svc
        .client
        .get_alert_group(get("alertGroups/known", ADA))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}

async fn groups_are_listed_filtered_and_paged(db: TestDb) {
    let mut svc = start(&db).await;
    // a: fired 3 times; b: fired and resolved; c: fired 5 times, one batch each.
    ingest(&mut svc, vec![firing("a", "a"); 3]).await;
    ingest(&mut svc, vec![firing("b", "b"), resolved("b", "b")]).await;
    for _ in 0..5 {
        ingest(&mut svc, vec![firing("c", "c")]).await;
    }
    let b_incident = list(&mut svc, "fingerprint = b", "", 0, "")
        .await
        .unwrap()
        .alert_groups[0]
        .incident
        .clone();

    assert_eq!(
        fingerprints(&mut svc, "", "").await,
        ["c", "b", "a"],
        "last seen first"
    );
    assert_eq!(
        fingerprints(&mut svc, "", "occurrence_count desc").await,
        ["c", "a", "b"]
    );
    assert_eq!(
        fingerprints(&mut svc, "status = FIRING", "last_seen_time").await,
        ["a", "c"]
    );
    assert_eq!(fingerprints(&mut svc, "status = RESOLVED", "").await, ["b"]);
    assert_eq!(
        fingerprints(&mut svc, "flapping = true", "").await,
        Vec::<String>::new()
    );
    assert_eq!(
        fingerprints(&mut svc, "flapping = false", "").await.len(),
        3
    );
    let by_incident = format!("incident = {b_incident:?}");
    assert_eq!(fingerprints(&mut svc, &by_incident, "").await, ["b"]);
    assert_eq!(
        fingerprints(
            &mut svc,
            "occurrence_count >= 3 AND severity = CRITICAL",
            ""
        )
        .await,
        ["c", "a"]
    );
    let c = list(&mut svc, "fingerprint = c", "", 0, "")
        .await
        .unwrap()
        .alert_groups[0]
        .clone();
    let seen = c.last_seen_time.unwrap();
    let since = format!(
        "last_seen_time >= {:?}",
        time::OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(seen.seconds) * 1_000_000_000 + i128::from(seen.nanos)
        )
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
    );
    assert_eq!(fingerprints(&mut svc, &since, "").await, ["c"]);

    // Paging by key.
    let first = list(&mut svc, "", "occurrence_count desc", 2, "")
        .await
        .unwrap();
    let names: Vec<_> = first.alert_groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["alertGroups/c", "alertGroups/a"]);
    let second = list(
        &mut svc,
        "",
        "occurrence_count desc",
        2,
        &first.next_page_token,
    )
    .await
    .unwrap();
    assert_eq!(second.alert_groups.len(), 1);
    assert!(second.next_page_token.is_empty());

    let status = list(&mut svc, "colour = red", "", 0, "").await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = list(&mut svc, "", "fingerprint", 0, "").await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}
