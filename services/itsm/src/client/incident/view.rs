//! `itsm incident list` and `itsm incident show`: incidents for reading.

use itsm_proto::itsm::common::v1::JournalKind;
use itsm_proto::itsm::incidents::v1 as api;

use super::{Client, INCIDENT, IncidentRef, ListArgs, get, hold_reason, priority, state};
use crate::client::ClientError;
use crate::client::output::{self, Format, Table, clip, local_time, short};
use crate::client::session::Session;

pub(super) async fn list(
    session: &Session,
    client: &mut Client,
    args: ListArgs,
) -> Result<(), ClientError> {
    let mut clauses = Vec::new();
    if args.mine {
        clauses.push(format!("assignee = {}", output::quote(session.subject()?)));
    }
    if !args.state.is_empty() {
        let states: Vec<String> = args
            .state
            .iter()
            .map(|s| format!("state = {}", s.filter_name()))
            .collect();
        clauses.push(format!("({})", states.join(" OR ")));
    }
    if let Some(group) = &args.group {
        clauses.push(format!("assignment_group = {}", output::quote(group)));
    }
    if let Some(filter) = args.filter.as_deref().filter(|f| !f.trim().is_empty()) {
        clauses.push(format!("({filter})"));
    }
    let limit = usize::try_from(args.limit).unwrap_or(usize::MAX);
    let mut found = api::ListIncidentsResponse::default();
    loop {
        let want = limit - found.incidents.len();
        let request = api::ListIncidentsRequest {
            page_size: i32::try_from(want.min(1000)).unwrap_or(1000),
            page_token: std::mem::take(&mut found.next_page_token),
            filter: clauses.join(" AND "),
            order_by: String::new(),
        };
        let page = client
            .list_incidents(session.request(request)?)
            .await
            .map_err(|status| session.fail(status))?
            .into_inner();
        found.incidents.extend(page.incidents);
        found.next_page_token = page.next_page_token;
        if found.next_page_token.is_empty() || found.incidents.len() >= limit {
            break;
        }
    }
    found.incidents.truncate(limit);
    if session.format() == Format::Json {
        return output::print_json(&found, "itsm.incidents.v1.ListIncidentsResponse");
    }
    let mut table = Table::new(&[
        "NUMBER", "PRIORITY", "STATE", "GROUP", "ASSIGNEE", "UPDATED", "TITLE",
    ]);
    for incident in &found.incidents {
        table.row(vec![
            incident.number.clone(),
            priority(incident),
            state(incident),
            incident.assignment_group.clone(),
            incident.assignee.clone(),
            local_time(incident.update_time.as_ref()),
            clip(&incident.title, 60),
        ]);
    }
    table.print("No incidents match.")?;
    if !found.next_page_token.is_empty() {
        eprintln!(
            "(first {} shown; raise --limit or narrow the filter for more)",
            found.incidents.len()
        );
    }
    Ok(())
}

pub(super) async fn show(
    session: &Session,
    client: &mut Client,
    incident: &IncidentRef,
) -> Result<(), ClientError> {
    let incident = get(session, client, incident).await?;
    if session.format() == Format::Json {
        return output::print_json(&incident, INCIDENT);
    }
    let request = api::ListJournalEntriesRequest {
        parent: incident.name.clone(),
        page_size: 100,
        page_token: String::new(),
        filter: String::new(),
    };
    let journal = client
        .list_journal_entries(session.request(request)?)
        .await
        .map_err(|status| session.fail(status))?
        .into_inner()
        .entries;
    let mut state_text = state(&incident);
    if incident.state() == api::IncidentState::OnHold {
        state_text.push_str(&format!(" ({})", hold_reason(&incident)));
    }
    let resolution = if incident.resolution_code == 0 {
        String::new()
    } else {
        format!(
            "{}: {}",
            short(incident.resolution_code().as_str_name(), "RESOLUTION_CODE_"),
            incident.resolution_notes
        )
    };
    let major = short(incident.major_state().as_str_name(), "MAJOR_STATE_");
    output::print_fields(&[
        ("Number", incident.number.clone()),
        ("Title", incident.title.clone()),
        ("State", state_text),
        (
            "Priority",
            format!(
                "{} (impact {}, urgency {})",
                priority(&incident),
                short(incident.impact().as_str_name(), "IMPACT_"),
                short(incident.urgency().as_str_name(), "URGENCY_")
            ),
        ),
        (
            "Major",
            if major == "NONE" {
                String::new()
            } else {
                major
            },
        ),
        (
            "Escalated",
            if incident.escalated {
                "yes".into()
            } else {
                String::new()
            },
        ),
        ("Caller", incident.caller.clone()),
        ("Group", incident.assignment_group.clone()),
        ("Assignee", incident.assignee.clone()),
        ("CI", incident.configuration_item.clone()),
        ("Service", incident.service.clone()),
        ("Category", incident.category.clone()),
        ("Created", local_time(incident.create_time.as_ref())),
        ("Updated", local_time(incident.update_time.as_ref())),
        ("Resolved", local_time(incident.resolve_time.as_ref())),
        ("Closed", local_time(incident.close_time.as_ref())),
        ("Resolution", resolution),
        ("Canceled", incident.cancel_reason.clone()),
        (
            "Reopened",
            if incident.reopen_count > 0 {
                format!("{} times", incident.reopen_count)
            } else {
                String::new()
            },
        ),
        ("Description", incident.description.clone()),
    ])?;
    if !journal.is_empty() {
        out!("");
        out!("Journal:");
        for entry in &journal {
            let kind = match entry.kind() {
                JournalKind::WorkNote => "work note",
                _ => "comment",
            };
            let author = entry
                .author
                .as_ref()
                .map(|a| a.subject.clone())
                .unwrap_or_default();
            out!(
                "  {}  {author} ({kind})",
                local_time(entry.create_time.as_ref())
            );
            for line in entry.body.lines() {
                out!("    {line}");
            }
        }
    }
    Ok(())
}
