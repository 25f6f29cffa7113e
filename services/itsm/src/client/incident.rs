//! `itsm incident ...`: the everyday work of the incident practice.
//!
//! Lifecycle commands read the incident first and send its etag with the
//! transition, so a change someone made in between is refused (ABORTED),
//! never overwritten.

use clap::{Subcommand, ValueEnum};
use itsm_proto::itsm::common::v1::{Impact, JournalKind, Urgency};
use itsm_proto::itsm::incidents::v1 as api;
use itsm_proto::itsm::incidents::v1::incident_service_client::IncidentServiceClient;
use tonic::transport::Channel;

use super::output::{self, Format, short};
use super::session::Session;
use super::{ClientError, Practice};

mod view;

/// An incident: its number ("INC0000042", or just 42) or name ("incidents/INC0000042").
#[derive(Debug, Clone)]
pub struct IncidentRef(String);

impl IncidentRef {
    /// The resource name, "incidents/INC0000042".
    pub fn name(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for IncidentRef {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let value = value.trim();
        let number = value.strip_prefix("incidents/").unwrap_or(value);
        let number = if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) {
            let n: u64 = number
                .parse()
                .map_err(|_| format!("{value:?} is too large for an incident number"))?;
            format!("INC{n:07}")
        } else {
            number.to_ascii_uppercase()
        };
        let valid = number.len() > 3
            && number.starts_with("INC")
            && number[3..].bytes().all(|b| b.is_ascii_digit());
        if !valid {
            return Err(format!(
                "expected an incident number such as INC0000042 (or 42, or incidents/INC0000042), got {value:?}"
            ));
        }
        Ok(Self(format!("incidents/{number}")))
    }
}

/// `itsm incident ...`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open an incident; priority follows from impact and urgency
    Create(CreateArgs),
    /// List incidents, newest first
    List(ListArgs),
    /// Show one incident with its journal
    Show {
        /// INC0000042, 42 or incidents/INC0000042
        incident: IncidentRef,
    },
    /// Assign to a group and/or a person (a NEW incident with an assignee starts IN_PROGRESS)
    #[command(group = clap::ArgGroup::new("whom").required(true).multiple(true))]
    Assign {
        incident: IncidentRef,
        /// The assignment group's id, e.g. network [default: the current group]
        #[arg(long, group = "whom")]
        group: Option<String>,
        /// The assignee's subject, a member of the group
        #[arg(long, value_name = "SUBJECT", group = "whom")]
        to: Option<String>,
    },
    /// Put an IN_PROGRESS incident on hold
    Hold {
        incident: IncidentRef,
        /// Why it waits
        #[arg(long, value_enum)]
        reason: HoldReason,
        /// A work note to record with it
        #[arg(long)]
        note: Option<String>,
    },
    /// Take an incident off hold (back to IN_PROGRESS)
    Resume { incident: IncidentRef },
    /// Resolve with a resolution code and notes
    Resolve {
        incident: IncidentRef,
        /// How it was resolved
        #[arg(long, value_enum)]
        code: ResolutionCode,
        /// What was done
        #[arg(long)]
        notes: String,
    },
    /// Close a RESOLVED incident (final)
    Close { incident: IncidentRef },
    /// Cancel an open incident (final)
    Cancel {
        incident: IncidentRef,
        /// Why, e.g. "duplicate of INC0000041"
        #[arg(long)]
        reason: String,
    },
    /// Reopen a RESOLVED incident (back to IN_PROGRESS)
    Reopen {
        incident: IncidentRef,
        /// Why the resolution did not hold
        #[arg(long)]
        reason: String,
    },
    /// Add a comment, visible to the caller and watchers
    Comment { incident: IncidentRef, text: String },
    /// Add a work note, visible to agents only
    Note { incident: IncidentRef, text: String },
}

/// Arguments of `itsm incident create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// One-line summary (at most 160 characters)
    #[arg(long)]
    title: String,
    /// How much of the business is affected
    #[arg(long, value_enum)]
    impact: Level,
    /// How soon the business needs it back
    #[arg(long, value_enum)]
    urgency: Level,
    /// The full description
    #[arg(long)]
    description: Option<String>,
    /// The assignment group's id [default: what the assignment rules pick]
    #[arg(long)]
    group: Option<String>,
    /// The affected configuration item: cis/<id> or its display name
    #[arg(long, value_name = "CI")]
    ci: Option<String>,
    /// The person affected [default: the token's subject]
    #[arg(long, value_name = "SUBJECT")]
    caller: Option<String>,
    /// Category, e.g. network
    #[arg(long)]
    category: Option<String>,
}

/// Arguments of `itsm incident list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only incidents assigned to me (the token's subject)
    #[arg(long)]
    mine: bool,
    /// Only incidents in this state; repeat for several
    #[arg(long, value_enum)]
    state: Vec<State>,
    /// Only incidents of this assignment group
    #[arg(long)]
    group: Option<String>,
    /// A filter expression, ANDed with the above, e.g. 'priority <= HIGH AND title:"disk"'
    #[arg(long, value_name = "EXPR")]
    filter: Option<String>,
    /// At most this many incidents
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    limit: u32,
}

/// Impact or urgency.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Level {
    High,
    Medium,
    Low,
}

/// An incident state, for `--state`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum State {
    New,
    InProgress,
    OnHold,
    Resolved,
    Closed,
    Canceled,
}

/// Why an incident is on hold.
// The variants read as the values people type: `--reason awaiting-caller`.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum HoldReason {
    AwaitingCaller,
    AwaitingChange,
    AwaitingProblem,
    AwaitingVendor,
}

/// How an incident was resolved.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ResolutionCode {
    SolvedPermanently,
    SolvedWorkaround,
    SolvedRemotely,
    NotReproducible,
    TooCostly,
    ClosedByCaller,
}

impl State {
    fn filter_name(self) -> &'static str {
        match self {
            Self::New => "NEW",
            Self::InProgress => "IN_PROGRESS",
            Self::OnHold => "ON_HOLD",
            Self::Resolved => "RESOLVED",
            Self::Closed => "CLOSED",
            Self::Canceled => "CANCELED",
        }
    }
}

impl HoldReason {
    fn proto(self) -> api::HoldReason {
        match self {
            Self::AwaitingCaller => api::HoldReason::AwaitingCaller,
            Self::AwaitingChange => api::HoldReason::AwaitingChange,
            Self::AwaitingProblem => api::HoldReason::AwaitingProblem,
            Self::AwaitingVendor => api::HoldReason::AwaitingVendor,
        }
    }
}

impl ResolutionCode {
    fn proto(self) -> api::ResolutionCode {
        match self {
            Self::SolvedPermanently => api::ResolutionCode::SolvedPermanently,
            Self::SolvedWorkaround => api::ResolutionCode::SolvedWorkaround,
            Self::SolvedRemotely => api::ResolutionCode::SolvedRemotely,
            Self::NotReproducible => api::ResolutionCode::NotSolvedNotReproducible,
            Self::TooCostly => api::ResolutionCode::NotSolvedTooCostly,
            Self::ClosedByCaller => api::ResolutionCode::ClosedByCaller,
        }
    }
}

const INCIDENT: &str = "itsm.incidents.v1.Incident";

impl Practice for Command {
    async fn run(self, session: &Session) -> Result<(), ClientError> {
        let mut client = IncidentServiceClient::new(session.channel());
        match self {
            Self::Create(args) => create(session, &mut client, args).await,
            Self::List(args) => view::list(session, &mut client, args).await,
            Self::Show { incident } => view::show(session, &mut client, &incident).await,
            Self::Assign {
                incident,
                group,
                to,
            } => {
                let current = get(session, &mut client, &incident).await?;
                let request = api::AssignIncidentRequest {
                    assignment_group: group.unwrap_or_else(|| current.assignment_group.clone()),
                    assignee: to.unwrap_or_default(),
                    name: current.name.clone(),
                    etag: current.etag.clone(),
                };
                let updated = client.assign_incident(session.request(request)?).await;
                changed(session, &current, updated)
            }
            Self::Hold {
                incident,
                reason,
                note,
            } => {
                let current = get(session, &mut client, &incident).await?;
                let request = api::HoldIncidentRequest {
                    name: current.name.clone(),
                    reason: reason.proto() as i32,
                    note: note.unwrap_or_default(),
                    etag: current.etag.clone(),
                };
                let updated = client.hold_incident(session.request(request)?).await;
                changed(session, &current, updated)
            }
            Self::Resume { incident } => {
                let current = get(session, &mut client, &incident).await?;
                let request = api::ResumeIncidentRequest {
                    name: current.name.clone(),
                    etag: current.etag.clone(),
                };
                let updated = client.resume_incident(session.request(request)?).await;
                changed(session, &current, updated)
            }
            Self::Resolve {
                incident,
                code,
                notes,
            } => {
                let current = get(session, &mut client, &incident).await?;
                let request = api::ResolveIncidentRequest {
                    name: current.name.clone(),
                    resolution_code: code.proto() as i32,
                    resolution_notes: notes,
                    etag: current.etag.clone(),
                };
                let updated = client.resolve_incident(session.request(request)?).await;
                changed(session, &current, updated)
            }
            Self::Close { incident } => {
                let current = get(session, &mut client, &incident).await?;
                let request = api::CloseIncidentRequest {
                    name: current.name.clone(),
                    etag: current.etag.clone(),
                };
                let updated = client.close_incident(session.request(request)?).await;
                changed(session, &current, updated)
            }
            Self::Cancel { incident, reason } => {
                let current = get(session, &mut client, &incident).await?;
                let request = api::CancelIncidentRequest {
                    name: current.name.clone(),
                    reason,
                    etag: current.etag.clone(),
                };
                let updated = client.cancel_incident(session.request(request)?).await;
                changed(session, &current, updated)
            }
            Self::Reopen { incident, reason } => {
                let current = get(session, &mut client, &incident).await?;
                let request = api::ReopenIncidentRequest {
                    name: current.name.clone(),
                    reason,
                    etag: current.etag.clone(),
                };
                let updated = client.reopen_incident(session.request(request)?).await;
                changed(session, &current, updated)
            }
            Self::Comment { incident, text } => {
                journal(session, &mut client, &incident, JournalKind::Comment, text).await
            }
            Self::Note { incident, text } => {
                journal(session, &mut client, &incident, JournalKind::WorkNote, text).await
            }
        }
    }
}

type Client = IncidentServiceClient<Channel>;

async fn get(
    session: &Session,
    client: &mut Client,
    incident: &IncidentRef,
) -> Result<api::Incident, ClientError> {
    let request = api::GetIncidentRequest {
        name: incident.0.clone(),
    };
    client
        .get_incident(session.request(request)?)
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| session.fail(status))
}

/// Prints what a lifecycle call did: `INC0000042  IN_PROGRESS -> ON_HOLD`.
fn changed(
    session: &Session,
    before: &api::Incident,
    after: Result<tonic::Response<api::Incident>, tonic::Status>,
) -> Result<(), ClientError> {
    let after = after.map_err(|status| session.fail(status))?.into_inner();
    if session.format() == Format::Json {
        return output::print_json(&after, INCIDENT);
    }
    let (from, to) = (state(before), state(&after));
    let mut line = if from == to {
        format!("{}  {to}", after.number)
    } else {
        format!("{}  {from} -> {to}", after.number)
    };
    if after.state() == api::IncidentState::OnHold {
        line.push_str(&format!(" ({})", hold_reason(&after)));
    }
    let assigned = assignment(&after);
    if !assigned.is_empty() && assigned != assignment(before) {
        line.push_str(&format!("  assigned to {assigned}"));
    }
    out!("{line}");
    Ok(())
}

async fn create(
    session: &Session,
    client: &mut Client,
    args: CreateArgs,
) -> Result<(), ClientError> {
    let caller = match args.caller {
        Some(caller) => caller,
        None => session.subject()?.to_owned(),
    };
    let configuration_item = match args.ci {
        Some(ci) => super::ci::resolve(session, &ci).await?,
        None => String::new(),
    };
    let request = api::CreateIncidentRequest {
        incident: Some(api::Incident {
            title: args.title,
            description: args.description.unwrap_or_default(),
            impact: level(args.impact).0 as i32,
            urgency: level(args.urgency).1 as i32,
            caller,
            category: args.category.unwrap_or_default(),
            configuration_item,
            assignment_group: args.group.unwrap_or_default(),
            channel: api::Channel::Api as i32,
            ..api::Incident::default()
        }),
        // One id per invocation: a call the transport retries creates one incident.
        request_id: uuid::Uuid::new_v4().to_string(),
    };
    let created = client
        .create_incident(session.request(request)?)
        .await
        .map_err(|status| session.fail(status))?
        .into_inner();
    if session.format() == Format::Json {
        return output::print_json(&created, INCIDENT);
    }
    let mut line = format!(
        "{}  created: {} ({}, {})",
        created.number,
        created.title,
        priority(&created),
        state(&created)
    );
    let assigned = assignment(&created);
    if !assigned.is_empty() {
        line.push_str(&format!(", assigned to {assigned}"));
    }
    out!("{line}");
    Ok(())
}

async fn journal(
    session: &Session,
    client: &mut Client,
    incident: &IncidentRef,
    kind: JournalKind,
    body: String,
) -> Result<(), ClientError> {
    let request = api::AddJournalEntryRequest {
        parent: incident.0.clone(),
        kind: kind as i32,
        body,
        request_id: uuid::Uuid::new_v4().to_string(),
    };
    let entry = client
        .add_journal_entry(session.request(request)?)
        .await
        .map_err(|status| session.fail(status))?
        .into_inner();
    if session.format() == Format::Json {
        return output::print_json(&entry, "itsm.common.v1.JournalEntry");
    }
    let what = match kind {
        JournalKind::WorkNote => "work note",
        _ => "comment",
    };
    let number = incident.0.trim_start_matches("incidents/");
    out!("{number}  {what} added");
    Ok(())
}

fn level(level: Level) -> (Impact, Urgency) {
    match level {
        Level::High => (Impact::High, Urgency::High),
        Level::Medium => (Impact::Medium, Urgency::Medium),
        Level::Low => (Impact::Low, Urgency::Low),
    }
}

fn state(incident: &api::Incident) -> String {
    short(incident.state().as_str_name(), "INCIDENT_STATE_")
}

fn priority(incident: &api::Incident) -> String {
    short(incident.priority().as_str_name(), "PRIORITY_")
}

fn hold_reason(incident: &api::Incident) -> String {
    short(incident.hold_reason().as_str_name(), "HOLD_REASON_")
        .to_ascii_lowercase()
        .replace('_', " ")
}

fn assignment(incident: &api::Incident) -> String {
    match (
        incident.assignment_group.as_str(),
        incident.assignee.as_str(),
    ) {
        ("", "") => String::new(),
        (group, "") => group.to_owned(),
        ("", person) => person.to_owned(),
        (group, person) => format!("{person} ({group})"),
    }
}

#[cfg(test)]
mod tests {
    use super::IncidentRef;

    #[test]
    fn incidents_are_named_by_number_or_name() {
        for given in ["INC0000042", "inc0000042", "42", "incidents/INC0000042"] {
            let parsed: IncidentRef = given.parse().unwrap();
            assert_eq!(parsed.0, "incidents/INC0000042", "{given}");
        }
        assert!("PRB0000001".parse::<IncidentRef>().is_err());
        assert!("INC".parse::<IncidentRef>().is_err());
    }
}
