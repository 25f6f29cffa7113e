//! Incident tasks: gap-free numbers, idempotent creation under open
//! incidents only, the assignee's group membership, the task lifecycle with
//! etags, lists per incident, and the trail each change leaves.

use itsm_proto::itsm::incidents::v1 as pb;
use itsm_proto::itsm::incidents::v1::IncidentTaskState as T;
use itsm_testkit::{TestDb, backend_tests};
use tonic::Code;

use crate::calls::{actions_on, audit, create_task, new_task, task_to, update_task};
use crate::support::{ADA, AGENT, as_, bad_fields, precondition, start};

backend_tests!(
    tasks_are_numbered_gap_free_and_created_once_per_request_id,
    task_assignees_must_belong_to_the_group,
    tasks_walk_their_lifecycle_with_etags,
    tasks_are_listed_per_incident_with_filters_and_pages,
);

async fn tasks_are_numbered_gap_free_and_created_once_per_request_id(db: TestDb) {
    let mut svc = start(&db).await;
    let first = svc.open("Mail down").await.name;
    let second = svc.open("Disk full").await.name;

    let a = create_task(&mut svc, &first, new_task("Check MX", "", ""), "req-1")
        .await
        .unwrap();
    assert_eq!(a.number, "TASK0000001");
    assert_eq!(a.name, format!("{first}/tasks/TASK0000001"));
    assert_eq!((a.state, a.etag.as_str()), (T::Open as i32, "v1"));
    let again = create_task(&mut svc, &first, new_task("Check MX", "", ""), "req-1")
        .await
        .unwrap();
    assert_eq!(again, a, "a retry returns the first task");
    let reused = create_task(&mut svc, &first, new_task("Other", "", ""), "req-1")
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::AlreadyExists, "{reused:?}");

    // A refused create gives its number back.
    svc.resolve(&second).await.unwrap();
    let closed = create_task(&mut svc, &second, new_task("Too late", "", ""), "")
        .await
        .unwrap_err();
    let (kind, subject, _) = precondition(&closed);
    assert_eq!(
        (kind.as_str(), subject.as_str()),
        ("STATE", second.as_str())
    );
    let status = create_task(&mut svc, &first, new_task(" ", "", ""), "")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["task.title"]);
    let missing = create_task(&mut svc, "incidents/INC0000099", new_task("x", "", ""), "").await;
    assert_eq!(missing.unwrap_err().code(), Code::NotFound);
    let third = svc.open("Printer").await.name;
    let b = create_task(&mut svc, &third, new_task("Toner", "", ""), "")
        .await
        .unwrap();
    assert_eq!(b.number, "TASK0000002");
    assert_eq!(svc.count("incident_tasks").await, 2);

    let events = svc.event_types(&a.name).await;
    assert_eq!(events, [("incidents.incident_task.created".to_owned(), 1)]);
    let noted = audit(&mut svc, &first).await;
    let note = noted.iter().find(|e| e.action == "create_task").unwrap();
    assert_eq!(note.actor.as_ref().unwrap().subject, "bob");
    assert!(
        note.changes
            .iter()
            .any(|c| c.field == "tasks/TASK0000001.title" && c.new_value == "Check MX"),
        "{note:?}"
    );
}

async fn task_assignees_must_belong_to_the_group(db: TestDb) {
    let mut svc = start(&db).await;
    let name = svc.open("VPN").await.name;
    let status = create_task(&mut svc, &name, new_task("Route", "desk", "nina"), "")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["task.assignee"]);
    let status = create_task(&mut svc, &name, new_task("Route", "nowhere", ""), "")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["task.assignment_group"]);
    let status = create_task(&mut svc, &name, new_task("Route", "", "carl"), "")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["task.assignee"]);

    let task = create_task(
        &mut svc,
        &name,
        new_task("Route", "groups/desk", "carl"),
        "",
    )
    .await
    .unwrap();
    assert_eq!(
        (task.assignment_group.as_str(), task.assignee.as_str()),
        ("desk", "carl")
    );
    let to = |group: &str, assignee: &str| pb::IncidentTask {
        name: task.name.clone(),
        assignment_group: group.to_owned(),
        assignee: assignee.to_owned(),
        ..pb::IncidentTask::default()
    };
    let status = update_task(&mut svc, to("", "nina"), &["assignee"], "v1")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["task.assignee"]);
    let moved = update_task(&mut svc, to("network", ""), &["assignment_group"], "v1")
        .await
        .unwrap();
    assert_eq!(
        (moved.assignment_group.as_str(), moved.assignee.as_str()),
        ("network", ""),
        "a new group without an assignee leaves the task unassigned"
    );
    let taken = update_task(&mut svc, to("", "nina"), &["assignee"], "v2")
        .await
        .unwrap();
    assert_eq!(
        (taken.assignee.as_str(), taken.etag.as_str()),
        ("nina", "v3")
    );
}

async fn tasks_walk_their_lifecycle_with_etags(db: TestDb) {
    let mut svc = start(&db).await;
    let incident = svc.open("Outage").await.name;
    let task = create_task(&mut svc, &incident, new_task("Call vendor", "", ""), "")
        .await
        .unwrap();
    let name = task.name.clone();

    let skipped = task_to(&mut svc, &name, T::Done, "v1").await.unwrap_err();
    let (kind, subject, description) = precondition(&skipped);
    assert_eq!((kind.as_str(), subject.as_str()), ("STATE", name.as_str()));
    assert!(
        description.contains("IN_PROGRESS or CANCELED"),
        "{description}"
    );
    let stale = task_to(&mut svc, &name, T::InProgress, "v9")
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted, "{stale:?}");
    let unsent = task_to(&mut svc, &name, T::InProgress, "")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&unsent), ["etag"]);
    let status = update_task(&mut svc, task.clone(), &["number"], "v1")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["update_mask.paths[0]"]);

    let started = task_to(&mut svc, &name, T::InProgress, "v1").await.unwrap();
    assert_eq!(started.state, T::InProgress as i32);
    let retitled = pb::IncidentTask {
        name: name.clone(),
        title: "Call the ISP".into(),
        due_time: Some(prost_types::Timestamp {
            seconds: 1_900_000_000,
            nanos: 0,
        }),
        ..pb::IncidentTask::default()
    };
    let retitled = update_task(&mut svc, retitled, &["title", "due_time"], "v2")
        .await
        .unwrap();
    assert_eq!(retitled.title, "Call the ISP");
    assert_eq!(retitled.due_time.unwrap().seconds, 1_900_000_000);
    let done = task_to(&mut svc, &name, T::Done, "v3").await.unwrap();
    assert_eq!((done.state, done.etag.as_str()), (T::Done as i32, "v4"));
    let after = task_to(&mut svc, &name, T::Canceled, "v4")
        .await
        .unwrap_err();
    assert_eq!(after.code(), Code::FailedPrecondition, "done is final");

    let read = svc
        .client
        .get_incident_task(as_(
            AGENT,
            pb::GetIncidentTaskRequest { name: name.clone() },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read, done);
    let hidden = svc
        .client
        .get_incident_task(as_(ADA, pb::GetIncidentTaskRequest { name: name.clone() }))
        .await
        .unwrap_err();
    assert_eq!(
        hidden.code(),
        Code::PermissionDenied,
        "requesters do not see tasks"
    );

    let types = svc.event_names(&name).await;
    assert_eq!(types.len(), 4);
    assert!(
        types[1..]
            .iter()
            .all(|t| t == "incidents.incident_task.updated"),
        "{types:?}"
    );
    assert_eq!(
        actions_on(&svc, &name).await,
        ["create", "update", "update", "update"]
    );
    let noted = audit(&mut svc, &incident).await;
    let states: Vec<_> = noted
        .iter()
        .filter(|e| e.action == "update_task")
        .flat_map(|e| &e.changes)
        .filter(|c| c.field == "tasks/TASK0000001.state")
        .map(|c| (c.old_value.as_str(), c.new_value.as_str()))
        .collect();
    assert_eq!(states, [("OPEN", "IN_PROGRESS"), ("IN_PROGRESS", "DONE")]);
}

async fn tasks_are_listed_per_incident_with_filters_and_pages(db: TestDb) {
    let mut svc = start(&db).await;
    let first = svc.open("Network").await.name;
    let second = svc.open("Storage").await.name;
    create_task(&mut svc, &first, new_task("One", "desk", "carl"), "")
        .await
        .unwrap();
    let two = create_task(&mut svc, &first, new_task("Two", "network", ""), "")
        .await
        .unwrap();
    create_task(&mut svc, &first, new_task("Three", "", ""), "")
        .await
        .unwrap();
    let other = create_task(&mut svc, &second, new_task("Elsewhere", "", ""), "")
        .await
        .unwrap();
    task_to(&mut svc, &two.name, T::InProgress, "v1")
        .await
        .unwrap();

    let list = |filter: &str, page_size: i32, page_token: String| {
        let request = pb::ListIncidentTasksRequest {
            parent: first.clone(),
            page_size,
            page_token,
            filter: filter.to_owned(),
            order_by: String::new(),
        };
        let mut client = svc.client.clone();
        async move { client.list_incident_tasks(as_(AGENT, request)).await }
    };
    let titles = |reply: &pb::ListIncidentTasksResponse| -> Vec<String> {
        reply.tasks.iter().map(|t| t.title.clone()).collect()
    };
    let all = list("", 0, String::new()).await.unwrap().into_inner();
    assert_eq!(titles(&all), ["One", "Two", "Three"]);
    let working = list("state = IN_PROGRESS", 0, String::new())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(titles(&working), ["Two"]);
    let carl = list("assignee = \"carl\"", 0, String::new())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(titles(&carl), ["One"]);
    let network = list("assignment_group = \"network\"", 0, String::new())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(titles(&network), ["Two"]);
    let page = list("", 2, String::new()).await.unwrap().into_inner();
    assert_eq!(titles(&page), ["One", "Two"]);
    let rest = list("", 2, page.next_page_token)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (titles(&rest), rest.next_page_token.as_str()),
        (vec!["Three".to_owned()], "")
    );
    let status = list("priority = HIGH", 0, String::new()).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["filter"]);

    // A task is found only under its own incident.
    let wrong = format!("{first}/tasks/{}", other.number);
    let request = pb::GetIncidentTaskRequest { name: wrong };
    let status = svc
        .client
        .get_incident_task(as_(AGENT, request))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}
