//! ListCis: core and attribute filters, `ci_class` with its subclasses,
//! orders and keyset pages.

use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_testkit::{TestDb, backend_tests};

use crate::support::{AGENT, Harness, as_, bad_fields, ci, number, start, text};

backend_tests!(
    filters_reach_core_fields_classes_and_attributes,
    pages_follow_the_order_without_gaps_or_repeats,
);

async fn list(h: &mut Harness, filter: &str, order_by: &str) -> Vec<String> {
    let request = pb::ListCisRequest {
        page_size: 0,
        page_token: String::new(),
        filter: filter.to_owned(),
        order_by: order_by.to_owned(),
        read_mask: None,
    };
    let reply = h.client.list_cis(as_(AGENT, request)).await;
    let reply = reply
        .unwrap_or_else(|e| panic!("{filter}: {e:?}"))
        .into_inner();
    reply.cis.into_iter().map(|c| c.display_name).collect()
}

async fn filters_reach_core_fields_classes_and_attributes(db: TestDb) {
    let mut h = start(&db).await;
    let mut a = ci("linux_server", "a-linux", &[("cpu_count", number(8.0))]);
    a.support_group = "groups/unix".into();
    a.criticality = pb::Criticality::Critical as i32;
    h.create(a).await;
    h.create(ci(
        "linux_server",
        "b-linux",
        &[
            ("cpu_count", number(16.0)),
            ("os_version", text("Ubuntu 22.04")),
        ],
    ))
    .await;
    let mut c = ci("windows_server", "c-windows", &[("cpu_count", number(4.0))]);
    c.status = pb::CiStatus::Installed as i32;
    h.create(c).await;
    h.create(ci("application", "d-app", &[])).await;

    assert_eq!(
        list(&mut h, "", "").await,
        ["a-linux", "b-linux", "c-windows", "d-app"]
    );
    assert_eq!(
        list(&mut h, "attributes.cpu_count >= 8", "").await,
        ["a-linux", "b-linux"]
    );
    assert_eq!(
        list(&mut h, r#"ci_class = "classes/server""#, "").await,
        ["a-linux", "b-linux", "c-windows"]
    );
    assert_eq!(
        list(&mut h, r#"ci_class = "classes/linux_server""#, "").await,
        ["a-linux", "b-linux"]
    );
    assert_eq!(
        list(
            &mut h,
            r#"ci_class = "classes/server" AND attributes.cpu_count < 8"#,
            ""
        )
        .await,
        ["c-windows"]
    );
    assert_eq!(
        list(&mut h, r#"attributes.os_version:"ubuntu""#, "").await,
        ["b-linux"]
    );
    assert_eq!(
        list(&mut h, r#"attributes.os_version != "Ubuntu 22.04""#, "").await,
        ["a-linux", "c-windows", "d-app"]
    );
    assert_eq!(list(&mut h, "status = INSTALLED", "").await, ["c-windows"]);
    assert_eq!(
        list(&mut h, "criticality = CRITICAL OR display_name:app", "").await,
        ["a-linux", "d-app"]
    );
    assert_eq!(
        list(&mut h, r#"support_group = "groups/unix""#, "").await,
        ["a-linux"]
    );
    assert_eq!(
        list(
            &mut h,
            r#"NOT ci_class = "classes/server""#,
            "display_name desc"
        )
        .await,
        ["d-app"]
    );

    for bad in [
        "colour = red",
        "attributes.nope = 1",
        "attributes.cpu_count = \"eight\"",
        "ci_class = \"classes/nope\"",
        "status = BROKEN",
        "display_name =",
    ] {
        let request = pb::ListCisRequest {
            filter: bad.into(),
            ..pb::ListCisRequest::default()
        };
        let status = h.client.list_cis(as_(AGENT, request)).await.unwrap_err();
        assert_eq!(bad_fields(&status), ["filter"], "{bad}");
    }
    let request = pb::ListCisRequest {
        order_by: "colour".into(),
        ..pb::ListCisRequest::default()
    };
    let status = h.client.list_cis(as_(AGENT, request)).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["order_by"]);
}

async fn pages_follow_the_order_without_gaps_or_repeats(db: TestDb) {
    let mut h = start(&db).await;
    for i in 0..7 {
        let mut one = ci("linux_server", &format!("web-{i:02}"), &[]);
        // Two share a group: the id breaks the tie.
        one.support_group = format!("groups/g{}", i % 3);
        h.create(one).await;
    }
    for order_by in [
        "display_name desc",
        "support_group",
        "create_time desc",
        "status",
    ] {
        let everything = list(&mut h, "", order_by).await;
        assert_eq!(everything.len(), 7);
        let mut paged = Vec::new();
        let mut token = String::new();
        loop {
            let request = pb::ListCisRequest {
                page_size: 3,
                page_token: token.clone(),
                filter: String::new(),
                order_by: order_by.into(),
                read_mask: Some(prost_types::FieldMask {
                    paths: vec!["display_name".into()],
                }),
            };
            let page = h
                .client
                .list_cis(as_(AGENT, request))
                .await
                .unwrap()
                .into_inner();
            assert!(page.cis.len() <= 3);
            assert!(page.cis.iter().all(|c| c.name.is_empty()), "masked");
            paged.extend(page.cis.into_iter().map(|c| c.display_name));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(paged, everything, "{order_by}");
    }
    let first = pb::ListCisRequest {
        page_size: 2,
        ..pb::ListCisRequest::default()
    };
    let page = h
        .client
        .list_cis(as_(AGENT, first))
        .await
        .unwrap()
        .into_inner();
    let other_filter = pb::ListCisRequest {
        page_size: 2,
        page_token: page.next_page_token,
        filter: "status = PLANNED".into(),
        ..pb::ListCisRequest::default()
    };
    let status = h
        .client
        .list_cis(as_(AGENT, other_filter))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["page_token"]);
}
