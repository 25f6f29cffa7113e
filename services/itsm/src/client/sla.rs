//! `itsm sla ...`: the SLA clocks (task SLAs) of a ticket.

use clap::Subcommand;
use itsm_proto::itsm::sla::v1 as api;
use itsm_proto::itsm::sla::v1::sla_service_client::SlaServiceClient;

use super::incident::IncidentRef;
use super::output::{self, Format, Table, duration, local_time, short};
use super::session::Session;
use super::{ClientError, Practice};

/// `itsm sla ...`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The SLA clocks of a ticket: state, elapsed and remaining business time, breach time
    Show {
        /// The incident: INC0000042, 42 or incidents/INC0000042
        ticket: IncidentRef,
    },
}

impl Practice for Command {
    async fn run(self, session: &Session) -> Result<(), ClientError> {
        match self {
            Self::Show { ticket } => show(session, ticket.name()).await,
        }
    }
}

async fn show(session: &Session, ticket: &str) -> Result<(), ClientError> {
    let mut client = SlaServiceClient::new(session.channel());
    let mut found = api::ListTaskSlasResponse::default();
    // A ticket has a handful of clocks; the loop only guards against more.
    loop {
        let request = api::ListTaskSlasRequest {
            page_size: 100,
            page_token: std::mem::take(&mut found.next_page_token),
            filter: format!("ticket = {}", output::quote(ticket)),
            order_by: String::new(),
        };
        let page = client
            .list_task_slas(session.request(request)?)
            .await
            .map_err(|status| session.fail(status))?
            .into_inner();
        found.task_slas.extend(page.task_slas);
        found.next_page_token = page.next_page_token;
        if found.next_page_token.is_empty() {
            break;
        }
    }
    if session.format() == Format::Json {
        return output::print_json(&found, "itsm.sla.v1.ListTaskSlasResponse");
    }
    let mut table = Table::new(&[
        "SLA",
        "KIND",
        "STATE",
        "ELAPSED",
        "REMAINING",
        "TARGET",
        "BREACH TIME",
    ]);
    for clock in &found.task_slas {
        let mut state = short(clock.state().as_str_name(), "TASK_SLA_STATE_");
        if clock.breached && clock.state() != api::TaskSlaState::Breached {
            state.push_str(" (breached)");
        }
        let when = match clock.state() {
            api::TaskSlaState::InProgress => local_time(clock.breach_time.as_ref()),
            api::TaskSlaState::Paused => "paused".to_owned(),
            _ => String::new(),
        };
        table.row(vec![
            if clock.display_name.is_empty() {
                clock.sla_definition.clone()
            } else {
                clock.display_name.clone()
            },
            short(clock.kind().as_str_name(), "SLA_KIND_"),
            state,
            format!(
                "{} ({:.0}%)",
                duration(clock.elapsed.as_ref()),
                clock.percentage
            ),
            duration(clock.remaining.as_ref()),
            duration(clock.target.as_ref()),
            when,
        ]);
    }
    let number = ticket.trim_start_matches("incidents/");
    table.print(&format!(
        "{number} has no SLA clocks (no SLA definition selects it, or its events are still on their way)."
    ))?;
    Ok(())
}
