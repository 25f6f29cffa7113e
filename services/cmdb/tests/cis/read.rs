//! GetCi (cached, invalidated by writes, read masks, time zones up the
//! location chain) and BatchGetCis.

use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_testkit::{TestDb, backend_tests};
use prost::Message as _;
use tonic::Code;

use crate::support::{AGENT, as_, bad_fields, ci, number, start, text};
use crate::{try_create, try_update};

backend_tests!(
    reads_are_cached_and_a_write_forgets_them,
    read_masks_keep_only_the_fields_named,
    the_time_zone_comes_from_the_nearest_location_that_has_one,
    batches_come_back_in_request_order,
);

async fn reads_are_cached_and_a_write_forgets_them(db: TestDb) {
    let mut h = start(&db).await;
    let created = h
        .create(ci("linux_server", "web-01", &[("cpu_count", number(4.0))]))
        .await;
    let uid = itsm_cmdb::ci_uid(&created.name).unwrap().to_owned();
    let first = h.get(&created.name).await.unwrap();
    assert_eq!(first, created);
    let key = format!("{}ci:{uid}", itsm_cmdb::CACHE_PREFIX);
    assert!(
        h.cache.get(&key).await.is_some(),
        "the first read fills the cache"
    );

    // Changed behind the API's back: the cache still answers.
    let mut tampered = first.clone();
    tampered.display_name = "tampered".into();
    sqlx::query("UPDATE cis SET doc = $1 WHERE uid = $2")
        .bind(tampered.encode_to_vec())
        .bind(&uid)
        .execute(h.db.pool())
        .await
        .unwrap();
    assert_eq!(h.get(&created.name).await.unwrap().display_name, "web-01");

    // A write through the API forgets the cached copy.
    let mut change = pb::Ci {
        name: created.name.clone(),
        ..pb::Ci::default()
    };
    change.support_group = "groups/unix".into();
    let updated = try_update(&mut h, change, &["support_group"], "v1")
        .await
        .unwrap();
    assert_eq!(updated.support_group, "groups/unix");
    let read = h.get(&created.name).await.unwrap();
    assert_eq!(read.support_group, "groups/unix");
    assert_eq!(read.etag, "v2");

    let missing = h
        .get("cis/00000000-0000-4000-8000-000000000000")
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let malformed = h.get("web-01").await.unwrap_err();
    assert_eq!(bad_fields(&malformed), ["name"]);
}

async fn read_masks_keep_only_the_fields_named(db: TestDb) {
    let mut h = start(&db).await;
    let mut sent = ci("linux_server", "web-01", &[("cpu_count", number(4.0))]);
    sent.support_group = "groups/unix".into();
    sent.criticality = pb::Criticality::High as i32;
    let created = h.create(sent).await;
    let request = pb::GetCiRequest {
        name: created.name.clone(),
        read_mask: Some(prost_types::FieldMask {
            paths: vec!["support_group".into(), "criticality".into()],
        }),
    };
    let masked = h
        .client
        .get_ci(as_(AGENT, request))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        masked,
        pb::Ci {
            support_group: "groups/unix".into(),
            criticality: pb::Criticality::High as i32,
            ..pb::Ci::default()
        }
    );
    let request = pb::GetCiRequest {
        name: created.name,
        read_mask: Some(prost_types::FieldMask {
            paths: vec!["support_group".into(), "colour".into()],
        }),
    };
    let status = h.client.get_ci(as_(AGENT, request)).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["read_mask"]);
}

async fn the_time_zone_comes_from_the_nearest_location_that_has_one(db: TestDb) {
    let mut h = start(&db).await;
    let site = h
        .create(ci(
            "location",
            "Paris DC",
            &[("time_zone", text("Europe/Paris"))],
        ))
        .await;
    let mut room = ci("location", "Room 12", &[]);
    room.location.clone_from(&site.name);
    let room = try_create(&mut h, room).await.unwrap();
    let mut server = ci("linux_server", "web-01", &[]);
    server.location.clone_from(&room.name);
    let server = try_create(&mut h, server).await.unwrap();
    assert_eq!(server.time_zone, "Europe/Paris");
    assert_eq!(h.get(&server.name).await.unwrap().time_zone, "Europe/Paris");
    let unplaced = h.create(ci("linux_server", "web-02", &[])).await;
    assert_eq!(h.get(&unplaced.name).await.unwrap().time_zone, "");

    // The site moves to another zone: the server's next read follows.
    let change = pb::Ci {
        name: site.name.clone(),
        attributes: [("time_zone".to_owned(), text("Europe/London"))].into(),
        ..pb::Ci::default()
    };
    try_update(&mut h, change, &["attributes.time_zone"], "v1")
        .await
        .unwrap();
    assert_eq!(
        h.get(&server.name).await.unwrap().time_zone,
        "Europe/London"
    );
}

async fn batches_come_back_in_request_order(db: TestDb) {
    let mut h = start(&db).await;
    let a = h.create(ci("linux_server", "a", &[])).await;
    let b = h.create(ci("application", "b", &[])).await;
    let c = h.create(ci("database", "c", &[])).await;
    let request = pb::BatchGetCisRequest {
        names: vec![c.name.clone(), a.name.clone(), b.name.clone()],
        read_mask: None,
    };
    let got = h
        .client
        .batch_get_cis(as_(AGENT, request))
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = got.cis.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, [&c.name, &a.name, &b.name]);

    let missing = "cis/00000000-0000-4000-8000-000000000000";
    let request = pb::BatchGetCisRequest {
        names: vec![a.name.clone(), missing.into()],
        read_mask: None,
    };
    let status = h
        .client
        .batch_get_cis(as_(AGENT, request))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains(missing), "{status:?}");

    let request = pb::BatchGetCisRequest {
        names: vec![a.name; 1001],
        read_mask: None,
    };
    let status = h
        .client
        .batch_get_cis(as_(AGENT, request))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["names"]);
}
