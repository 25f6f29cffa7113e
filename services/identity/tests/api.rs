//! The identity service over a real socket, on PostgreSQL and SQLite: keys
//! issued once, verified, refused for each reason, revoked, listed, and
//! every change leaving its audit entry and event. Groups in `api/groups.rs`
//! and `api/memberships.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "api/support.rs"]
mod support;

#[path = "api/groups.rs"]
mod groups;

#[path = "api/memberships.rs"]
mod memberships;

use itsm_auth::PrincipalKind;
use itsm_auth::apikey::{self, ApiKeyVerifier};
use itsm_identity::domain::{ApiKey, NewKey};
use itsm_identity::{LocalApiKeyVerifier, store};
use itsm_proto::itsm::identity::v1 as pb;
use itsm_store::audit::Actor;
use itsm_testkit::{TestDb, backend_tests};
use prost::Message as _;
use tonic::{Code, Request};
use tonic_types::StatusExt as _;

use support::{ADMIN, as_, bad_fields, create_request, in_days, key_for, start};

backend_tests!(
    create_shows_the_secret_once_and_reads_never_show_it,
    the_key_verifies_over_grpc_and_locally,
    bad_keys_are_unauthenticated_each_with_its_own_message,
    revoking_twice_is_a_failed_precondition,
    bad_input_names_every_field_and_writes_nothing,
    only_an_admin_grants_admin,
    a_retried_create_returns_the_first_key_without_its_secret,
    lists_page_through_a_filter,
    changes_leave_an_audit_entry_and_an_event,
    calls_without_a_caller_or_with_bad_names_are_refused,
);

async fn create_shows_the_secret_once_and_reads_never_show_it(db: TestDb) {
    let mut svc = start(&db).await;
    let created = svc.create("svc-monitoring", &["agent", "service"]).await;
    let key = created.api_key.unwrap();
    let parsed = apikey::parse(&created.secret).unwrap();
    assert_eq!(key.name, format!("apiKeys/{}", parsed.key_id));
    assert_eq!(key.key_id, parsed.key_id);
    assert_eq!(key.state, pb::ApiKeyState::Active as i32);
    assert_eq!(key.etag, "v1");
    assert_eq!(key.roles, ["agent", "service"]);
    assert_eq!(key.created_by.unwrap().subject, "alice");

    let read = svc.get(&key.name).await.unwrap();
    let listed = svc.list("", 0, "").await;
    assert_eq!(listed.api_keys, std::slice::from_ref(&read));
    for bytes in [read.encode_to_vec(), listed.encode_to_vec()] {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(parsed.secret), "a read leaked the secret");
    }
    // Stored as its hash only.
    let stored: String = sqlx::query_scalar("SELECT secret_hash FROM api_keys")
        .fetch_one(svc.db.pool())
        .await
        .unwrap();
    assert!(!stored.contains(parsed.secret));
    assert!(apikey::verify_secret(parsed.secret, &stored));
}

async fn the_key_verifies_over_grpc_and_locally(db: TestDb) {
    let mut svc = start(&db).await;
    let created = svc.create("svc-ci", &["change_manager"]).await;
    let key = created.api_key.unwrap();
    assert!(key.last_used_time.is_none(), "never used yet");

    let verified = svc.verify(&created.secret).await.unwrap();
    assert_eq!(verified.service_account, "svc-ci");
    assert_eq!(verified.display_name, "svc-ci key");
    assert_eq!(verified.roles, ["change_manager"]);
    assert_eq!(verified.key_name, key.name);
    assert_eq!(verified.expire_time, key.expire_time);
    assert!(svc.get(&key.name).await.unwrap().last_used_time.is_some());

    let principal = LocalApiKeyVerifier::new(svc.db.clone())
        .verify(&created.secret)
        .await
        .unwrap();
    assert_eq!(principal.subject, "svc-ci");
    assert_eq!(principal.kind, PrincipalKind::ServiceAccount);
    assert_eq!(principal.roles, ["change_manager"]);
}

async fn bad_keys_are_unauthenticated_each_with_its_own_message(db: TestDb) {
    let mut svc = start(&db).await;
    let good = svc.create("svc-hr", &["requester"]).await.secret;
    let parsed = apikey::parse(&good).unwrap();
    let wrong_secret = format!("itsm_{}_{}", parsed.key_id, "A".repeat(43));
    let unknown = format!("itsm_{}_{}", "0".repeat(12), parsed.secret);
    let malformed = format!("itsm-{}", &good[5..]);

    let revoked = svc.create("svc-old", &["requester"]).await;
    let name = revoked.api_key.unwrap().name;
    svc.revoke(&name, "").await.unwrap();

    // An expired key can only be made through the store: the API refuses past expiries.
    let generated = apikey::generate();
    let generated_id = generated.key_id.clone();
    let past = itsm_store::now_micros() - 1_000_000;
    let new = NewKey {
        display_name: "expired".into(),
        service_account: "svc-expired".into(),
        roles: vec!["requester".into()],
        description: String::new(),
        expire_time: past,
    };
    let expired = ApiKey::issue(
        new,
        generated.key_id.clone(),
        Actor::system("test"),
        past - 1,
    );
    let mut conn = svc.db.pool().acquire().await.unwrap();
    assert!(
        store::insert_api_key(&mut conn, &expired, &generated.secret_hash)
            .await
            .unwrap()
    );
    drop(conn);

    let cases = [
        (wrong_secret, "does not match"),
        (unknown, "unknown API key"),
        (malformed, "malformed API key"),
        (revoked.secret, "was revoked"),
        (generated.plaintext, "expired at"),
    ];
    let mut messages = Vec::new();
    for (key, expected) in &cases {
        let status = svc.verify(key).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "{expected}: {status:?}"
        );
        assert!(status.message().contains(expected), "{}", status.message());
        let secret = &key[18..]; // after "itsm_<12 hex>_"
        assert!(!status.message().contains(key.as_str()), "echoed the key");
        assert!(!status.message().contains(secret), "echoed the secret");
        messages.push(status.message().to_owned());

        let local = LocalApiKeyVerifier::new(svc.db.clone()).verify(key).await;
        assert!(local.unwrap_err().to_string().contains(expected));
    }
    messages.sort();
    messages.dedup();
    // The expired key reads as such, and the state filter sees the database's clock.
    let expired_name = format!("apiKeys/{}", generated_id);
    let listed = svc.list("state = EXPIRED", 0, "").await.api_keys;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, expired_name);
    assert_eq!(listed[0].state, pb::ApiKeyState::Expired as i32);
    assert_eq!(
        messages.len(),
        cases.len(),
        "distinct messages: {messages:?}"
    );
}

async fn revoking_twice_is_a_failed_precondition(db: TestDb) {
    let mut svc = start(&db).await;
    let key = svc.create("svc-backup", &["agent"]).await.api_key.unwrap();
    let stale = svc.revoke(&key.name, "v7").await.unwrap_err();
    assert_eq!(stale.code(), Code::Aborted, "{stale:?}");

    let revoked = svc.revoke(&key.name, &key.etag).await.unwrap();
    assert_eq!(revoked.state, pb::ApiKeyState::Revoked as i32);
    assert_eq!(revoked.etag, "v2");
    assert_eq!(revoked.revoke_reason, "rotated");
    assert_eq!(revoked.revoked_by.unwrap().subject, "alice");
    assert!(revoked.revoke_time.is_some());

    let again = svc.revoke(&key.name, &revoked.etag).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
    assert!(again.message().contains("REVOKED"), "{}", again.message());
    let details = again.get_error_details();
    let violation = &details.precondition_failure().unwrap().violations[0];
    assert_eq!(
        (violation.r#type.as_str(), violation.subject.as_str()),
        ("STATE", key.name.as_str())
    );
    assert_eq!(
        svc.get(&key.name).await.unwrap().etag,
        "v2",
        "nothing changed"
    );
}

async fn bad_input_names_every_field_and_writes_nothing(db: TestDb) {
    let mut svc = start(&db).await;
    let mut bad = key_for("Svc_Bad", &["agent", "superuser"]);
    bad.display_name = String::new();
    bad.expire_time = Some(in_days(-1));
    let status = svc
        .client
        .create_api_key(as_(ADMIN, create_request(bad)))
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        [
            "api_key.display_name",
            "api_key.service_account",
            "api_key.roles[1]",
            "api_key.expire_time"
        ]
    );

    let mut too_long = key_for("svc-ok", &["agent"]);
    too_long.expire_time = Some(in_days(800));
    let status = svc
        .client
        .create_api_key(as_(ADMIN, create_request(too_long)))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["api_key.expire_time"]);
    assert!(
        status.message().contains("two years"),
        "{}",
        status.message()
    );

    for table in ["api_keys", "audit_log", "outbox", "idempotency_keys"] {
        assert_eq!(svc.count(table).await, 0, "{table}");
    }
}

async fn only_an_admin_grants_admin(db: TestDb) {
    let mut svc = start(&db).await;
    let request = create_request(key_for("svc-root", &["admin"]));
    let status = svc
        .client
        .create_api_key(as_("bob:agent,service", request.clone()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("admin"), "{}", status.message());
    assert_eq!(svc.count("api_keys").await, 0);

    let granted = svc
        .client
        .create_api_key(as_(ADMIN, request))
        .await
        .unwrap();
    assert_eq!(granted.into_inner().api_key.unwrap().roles, ["admin"]);
}

async fn a_retried_create_returns_the_first_key_without_its_secret(db: TestDb) {
    let mut svc = start(&db).await;
    let mut request = create_request(key_for("svc-deploy", &["change_manager"]));
    request.request_id = "0b5f3c1e-7d3a-4c59-a1f8-1b1c2d3e4f50".into();
    let first = svc
        .client
        .create_api_key(as_(ADMIN, request.clone()))
        .await
        .unwrap();
    let again = svc
        .client
        .create_api_key(as_(ADMIN, request.clone()))
        .await
        .unwrap();
    let (first, again) = (first.into_inner(), again.into_inner());
    assert!(!first.secret.is_empty());
    assert_eq!(again.secret, "", "the secret is shown once");
    assert_eq!(again.api_key.unwrap().name, first.api_key.unwrap().name);
    assert_eq!(svc.count("api_keys").await, 1);
    assert_eq!(svc.count("outbox").await, 1);

    request.api_key.as_mut().unwrap().display_name = "something else".into();
    let reused = svc
        .client
        .create_api_key(as_(ADMIN, request))
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::AlreadyExists, "{reused:?}");
    assert_eq!(svc.count("api_keys").await, 1);
}

async fn lists_page_through_a_filter(db: TestDb) {
    let mut svc = start(&db).await;
    let mut wanted = Vec::new();
    for _ in 0..5 {
        wanted.push(svc.create("svc-a", &["agent"]).await.api_key.unwrap().name);
        svc.create("svc-b", &["agent"]).await;
    }
    let filter = r#"service_account = "svc-a""#;
    let (mut seen, mut token, mut pages) = (Vec::new(), String::new(), 0);
    loop {
        let page = svc.list(filter, 2, &token).await;
        pages += 1;
        assert!(page.api_keys.len() <= 2);
        seen.extend(page.api_keys.into_iter().map(|k| k.name));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(pages, 3);
    wanted.reverse(); // newest first by default
    assert_eq!(seen, wanted);

    svc.revoke(&wanted[0], "").await.unwrap();
    let revoked = svc.list("state = REVOKED", 0, "").await.api_keys;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].name, wanted[0]);
    let active = svc
        .list(&format!("{filter} AND state = ACTIVE"), 0, "")
        .await;
    assert_eq!(active.api_keys.len(), 4);

    let request = pb::ListApiKeysRequest {
        filter: "secret_hash = \"x\"".into(),
        ..Default::default()
    };
    let status = svc
        .client
        .list_api_keys(as_(ADMIN, request))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}

async fn changes_leave_an_audit_entry_and_an_event(db: TestDb) {
    let mut svc = start(&db).await;
    let created = svc.create("svc-audit", &["auditor"]).await;
    let name = created.api_key.unwrap().name;
    svc.revoke(&name, "").await.unwrap();

    let audit: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT action, actor_subject, changes, request_id FROM audit_log \
         WHERE resource = $1 ORDER BY id",
    )
    .bind(&name)
    .fetch_all(svc.db.pool())
    .await
    .unwrap();
    let actions: Vec<_> = audit
        .iter()
        .map(|(a, s, _, _)| (a.as_str(), s.as_str()))
        .collect();
    assert_eq!(actions, [("create", "alice"), ("revoke", "alice")]);
    assert!(audit[0].2.contains("svc-audit") && audit[1].2.contains("REVOKED"));
    let secret = apikey::parse(&created.secret).unwrap().secret;
    assert!(
        audit
            .iter()
            .all(|(_, _, changes, _)| !changes.contains(secret))
    );
    assert!(
        audit.iter().all(|(.., request_id)| !request_id.is_empty()),
        "x-request-id kept"
    );

    let rows: Vec<(String, String, Vec<u8>)> =
        sqlx::query_as("SELECT stream, event_type, payload FROM outbox ORDER BY id")
            .fetch_all(svc.db.pool())
            .await
            .unwrap();
    let types: Vec<_> = rows
        .iter()
        .map(|(s, t, _)| (s.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        types,
        [
            ("identity", "identity.api_key.created"),
            ("identity", "identity.api_key.revoked")
        ]
    );
    for (i, (_, _, payload)) in rows.iter().enumerate() {
        let event = itsm_proto::itsm::events::v1::Event::decode(payload.as_slice()).unwrap();
        assert_eq!(
            (event.subject.as_str(), event.source.as_str()),
            (name.as_str(), "itsm.identity")
        );
        assert_eq!(event.sequence, i as u64 + 1);
        assert_eq!(event.actor.unwrap().subject, "alice");
        let any = event.payload.unwrap();
        assert_eq!(
            any.type_url,
            "type.googleapis.com/itsm.identity.v1.ApiKeyEvent"
        );
        assert!(!String::from_utf8_lossy(&any.value).contains(secret));
        let payload = pb::ApiKeyEvent::decode(any.value.as_slice()).unwrap();
        assert_eq!(payload.api_key.unwrap().name, name);
    }
}

async fn calls_without_a_caller_or_with_bad_names_are_refused(db: TestDb) {
    let mut svc = start(&db).await;
    let anonymous = Request::new(create_request(key_for("svc-x", &["agent"])));
    let status = svc.client.create_api_key(anonymous).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(
        svc.get("apiKeys/0123456789ab").await.unwrap_err().code(),
        Code::NotFound
    );
    let status = svc.get("apiKeys/nope").await.unwrap_err();
    assert_eq!(bad_fields(&status), ["name"]);
}
