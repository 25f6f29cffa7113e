//! ListIncidents and GetIncident: filters on the documented fields, order_by,
//! keyset pages, and the requester's scope (own and watched incidents only,
//! NOT_FOUND for the rest).

use itsm_proto::itsm::incidents::v1 as pb;
use itsm_testkit::{TestDb, backend_tests};
use tonic::Code;

use crate::support::{ADA, AGENT, EVE, Harness, PROBLEM_MANAGER, as_, create_request, start};

backend_tests!(
    filters_select_by_each_documented_field,
    order_by_and_pages_walk_every_incident_once,
    requesters_see_their_own_and_watched_incidents_only,
);

/// Opens an incident as an agent with these fields.
async fn open_with(
    svc: &mut Harness,
    title: &str,
    impact: i32,
    urgency: i32,
    caller: &str,
    category: &str,
) -> pb::Incident {
    let sent = pb::Incident {
        title: title.to_owned(),
        impact,
        urgency,
        caller: caller.to_owned(),
        category: category.to_owned(),
        ..pb::Incident::default()
    };
    svc.client
        .create_incident(as_(AGENT, create_request(sent, "")))
        .await
        .unwrap()
        .into_inner()
}

async fn filters_select_by_each_documented_field(db: TestDb) {
    let mut svc = start(&db).await;
    let vpn = open_with(&mut svc, "VPN down", 1, 1, "ada", "network").await;
    let mail = open_with(&mut svc, "Mail slow", 2, 2, "bob", "email").await;
    let disk = open_with(&mut svc, "Disk full on vpn-gw", 3, 3, "ada", "storage").await;
    svc.assign(&mail.name, "desk", "carl").await.unwrap();
    svc.assign(&disk.name, "network", "").await.unwrap();
    let cutoff = svc
        .get(AGENT, &disk.name)
        .await
        .unwrap()
        .create_time
        .unwrap();

    let cases: &[(&str, &[&str])] = &[
        ("state = IN_PROGRESS", &["Mail slow"]),
        ("state = NEW", &["Disk full on vpn-gw", "VPN down"]),
        ("priority <= HIGH", &["VPN down"]),
        ("priority = PRIORITY_MODERATE", &["Mail slow"]),
        ("impact = LOW", &["Disk full on vpn-gw"]),
        ("urgency < LOW", &["Mail slow", "VPN down"]),
        ("assignment_group = network", &["Disk full on vpn-gw"]),
        ("assignee = \"carl\"", &["Mail slow"]),
        ("assignee:*", &["Mail slow"]),
        (
            "caller = ada AND category = storage",
            &["Disk full on vpn-gw"],
        ),
        ("title:\"VPN\"", &["Disk full on vpn-gw", "VPN down"]),
        (
            "major_state = NONE -category = email",
            &["Disk full on vpn-gw", "VPN down"],
        ),
        ("reopen_count > 0", &[]),
    ];
    for (filter, titles) in cases {
        assert_eq!(svc.titles(AGENT, filter, "").await, *titles, "{filter}");
    }
    let seconds = cutoff.seconds - 3600;
    let filter = format!("create_time > \"{}\"", rfc3339(seconds));
    assert_eq!(svc.titles(AGENT, &filter, "").await.len(), 3);
    let _ = vpn;

    for (filter, order_by) in [
        ("secret = 1", ""),
        ("state = LOST", ""),
        ("", "title"),
        ("state =", ""),
    ] {
        let status = svc.list(AGENT, filter, order_by, 0, "").await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{filter:?} {order_by:?}: {status:?}"
        );
    }
}

fn rfc3339(seconds: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .unwrap()
        .format(&Rfc3339)
        .unwrap()
}

async fn order_by_and_pages_walk_every_incident_once(db: TestDb) {
    let mut svc = start(&db).await;
    let mut opened = Vec::new();
    for (i, (impact, urgency)) in [(3, 3), (1, 1), (2, 2), (1, 2), (3, 1), (2, 3), (1, 3)]
        .into_iter()
        .enumerate()
    {
        opened.push(open_with(&mut svc, &format!("t{i}"), impact, urgency, "ada", "").await);
    }
    // Default: newest first.
    let newest: Vec<String> = opened.iter().rev().map(|i| i.title.clone()).collect();
    assert_eq!(svc.titles(AGENT, "", "").await, newest);
    let by_number: Vec<String> = opened.iter().map(|i| i.title.clone()).collect();
    assert_eq!(svc.titles(AGENT, "", "number").await, by_number);

    // Priority first, then newest: pages of two see every incident once.
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = svc
            .list(AGENT, "", "priority, create_time desc", 2, &token)
            .await
            .unwrap();
        pages += 1;
        assert!(page.incidents.len() <= 2);
        seen.extend(page.incidents.into_iter().map(|i| (i.priority, i.title)));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(pages, 4);
    let mut expected: Vec<(i32, String)> = opened
        .iter()
        .map(|i| (i.priority, i.title.clone()))
        .collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(&a.1)));
    assert_eq!(seen, expected);

    let first = svc.list(AGENT, "", "priority", 2, "").await.unwrap();
    let status = svc
        .list(AGENT, "state = NEW", "priority", 2, &first.next_page_token)
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "a token belongs to its own query"
    );
}

async fn requesters_see_their_own_and_watched_incidents_only(db: TestDb) {
    let mut svc = start(&db).await;
    let own = open_with(&mut svc, "Ada's laptop", 2, 2, "ada", "").await;
    let other = open_with(&mut svc, "Bob's phone", 2, 2, "bob", "").await;
    let watched = open_with(&mut svc, "Team printer", 2, 2, "bob", "").await;
    let request = pb::AddWatcherRequest {
        name: watched.name.clone(),
        watcher: "ada".into(),
    };
    svc.client.add_watcher(as_(AGENT, request)).await.unwrap();

    assert_eq!(
        svc.titles(ADA, "", "").await,
        ["Team printer", "Ada's laptop"]
    );
    assert_eq!(
        svc.titles(ADA, "title:\"printer\"", "").await,
        ["Team printer"]
    );
    assert!(svc.titles(EVE, "", "").await.is_empty());
    assert_eq!(svc.titles(PROBLEM_MANAGER, "", "").await.len(), 3);
    assert_eq!(svc.titles("multi:requester,agent", "", "").await.len(), 3);

    assert_eq!(svc.get(ADA, &own.name).await.unwrap().title, "Ada's laptop");
    assert!(svc.get(ADA, &watched.name).await.is_ok());
    let hidden = svc.get(ADA, &other.name).await.unwrap_err();
    let missing = svc.get(ADA, "incidents/INC0000099").await.unwrap_err();
    assert_eq!(
        (hidden.code(), missing.code()),
        (Code::NotFound, Code::NotFound)
    );
    assert_eq!(
        hidden.message().replace(&other.name, "X"),
        missing.message().replace("incidents/INC0000099", "X"),
        "no hint that it exists"
    );
}
