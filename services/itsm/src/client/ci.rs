//! `itsm ci ...`: configuration items from the CMDB, named by `cis/<id>` or
//! by display name.

use clap::Subcommand;
use itsm_proto::itsm::cmdb::v1 as api;
use itsm_proto::itsm::cmdb::v1::cmdb_service_client::CmdbServiceClient;

use super::output::{self, Format, Table, local_time, short};
use super::session::Session;
use super::{ClientError, Practice};

/// `itsm ci ...`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show one configuration item
    Show {
        /// cis/<id>, or the CI's display name, e.g. web-prod-01
        ci: String,
    },
    /// What goes down with a CI (downstream), or what it needs (--upstream)
    Impact {
        /// cis/<id>, or the CI's display name
        ci: String,
        /// At most this many hops
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i32).range(1..=50))]
        depth: i32,
        /// Walk upstream: what the CI needs, and which of those are single points of failure
        #[arg(long)]
        upstream: bool,
    },
}

impl Practice for Command {
    async fn run(self, session: &Session) -> Result<(), ClientError> {
        match self {
            Self::Show { ci } => show(session, &ci).await,
            Self::Impact {
                ci,
                depth,
                upstream,
            } => impact(session, &ci, depth, upstream).await,
        }
    }
}

/// The resource name of a CI given as `cis/<id>` or by display name; a
/// display name shared by several CIs is refused with their names.
pub async fn resolve(session: &Session, ci: &str) -> Result<String, ClientError> {
    let ci = ci.trim();
    if ci.starts_with("cis/") {
        return Ok(ci.to_owned());
    }
    let request = api::ListCisRequest {
        page_size: 2,
        filter: format!("display_name = {}", output::quote(ci)),
        ..api::ListCisRequest::default()
    };
    let found = CmdbServiceClient::new(session.channel())
        .list_cis(session.request(request)?)
        .await
        .map_err(|status| session.fail(status))?
        .into_inner()
        .cis;
    match found.as_slice() {
        [] => Err(ClientError::Lookup(format!(
            "no configuration item is named {ci:?}: give its display name exactly, or cis/<id>"
        ))),
        [one] => Ok(one.name.clone()),
        several => Err(ClientError::Lookup(format!(
            "several configuration items are named {ci:?} ({}, ...): give cis/<id>",
            several
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

async fn show(session: &Session, ci: &str) -> Result<(), ClientError> {
    let name = resolve(session, ci).await?;
    let ci = CmdbServiceClient::new(session.channel())
        .get_ci(session.request(api::GetCiRequest {
            name,
            read_mask: None,
        })?)
        .await
        .map_err(|status| session.fail(status))?
        .into_inner();
    if session.format() == Format::Json {
        return output::print_json(&ci, "itsm.cmdb.v1.Ci");
    }
    let attributes = ci
        .attributes
        .iter()
        .map(|(key, value)| format!("{key} = {}", attribute(value)))
        .collect::<Vec<_>>()
        .join("\n");
    let labels = ci
        .labels
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(", ");
    let retired = if ci.retire_reason.is_empty() {
        String::new()
    } else {
        format!(
            "{} ({})",
            local_time(ci.retire_time.as_ref()),
            ci.retire_reason
        )
    };
    output::print_fields(&[
        ("Name", ci.name.clone()),
        ("Display name", ci.display_name.clone()),
        ("Class", ci.ci_class.clone()),
        ("Status", short(ci.status().as_str_name(), "CI_STATUS_")),
        (
            "Criticality",
            short(ci.criticality().as_str_name(), "CRITICALITY_"),
        ),
        ("Support group", ci.support_group.clone()),
        ("Owner", ci.owner.clone()),
        ("Location", ci.location.clone()),
        ("Time zone", ci.time_zone.clone()),
        (
            "Redundancy",
            if ci.min_members_up > 0 {
                format!("at least {} members up", ci.min_members_up)
            } else {
                String::new()
            },
        ),
        ("Attributes", attributes),
        ("Labels", labels),
        ("Description", ci.description.clone()),
        ("Last seen", local_time(ci.last_seen_time.as_ref())),
        ("Updated", local_time(ci.update_time.as_ref())),
        ("Retired", retired),
    ])?;
    Ok(())
}

fn attribute(value: &api::AttributeValue) -> String {
    use api::attribute_value::Value;
    match &value.value {
        Some(Value::StringValue(text) | Value::EnumValue(text) | Value::ReferenceValue(text)) => {
            text.clone()
        }
        Some(Value::NumberValue(number)) => number.to_string(),
        Some(Value::BoolValue(flag)) => flag.to_string(),
        Some(Value::DateValue(date)) => {
            format!("{:04}-{:02}-{:02}", date.year, date.month, date.day)
        }
        None => String::new(),
    }
}

async fn impact(
    session: &Session,
    ci: &str,
    depth: i32,
    upstream: bool,
) -> Result<(), ClientError> {
    let name = resolve(session, ci).await?;
    let direction = if upstream {
        api::ImpactDirection::Upstream
    } else {
        api::ImpactDirection::Downstream
    };
    let request = api::AnalyzeImpactRequest {
        cis: vec![name.clone()],
        direction: direction as i32,
        max_depth: depth,
        ..api::AnalyzeImpactRequest::default()
    };
    let analysis = CmdbServiceClient::new(session.channel())
        .analyze_impact(session.request(request)?)
        .await
        .map_err(|status| session.fail(status))?
        .into_inner();
    if session.format() == Format::Json {
        return output::print_json(&analysis, "itsm.cmdb.v1.ImpactAnalysis");
    }
    let mut table = Table::new(&[
        "DEPTH",
        "LEVEL",
        "CI",
        "CLASS",
        "CRITICALITY",
        "SUPPORT GROUP",
        "VIA",
    ]);
    for reached in &analysis.impacted_cis {
        let mut level = short(reached.level().as_str_name(), "IMPACT_LEVEL_");
        if reached.min_members_up > 0 {
            level.push_str(&format!(
                " ({}/{} up)",
                reached.members_up, reached.min_members_up
            ));
        }
        let via = reached
            .via
            .as_ref()
            .map(|step| step.label.clone())
            .unwrap_or_default();
        table.row(vec![
            reached.depth.to_string(),
            level,
            if reached.display_name.is_empty() {
                reached.ci.clone()
            } else {
                reached.display_name.clone()
            },
            reached.ci_class.trim_start_matches("classes/").to_owned(),
            short(reached.criticality().as_str_name(), "CRITICALITY_"),
            reached.support_group.clone(),
            via,
        ]);
    }
    let direction = if upstream { "needs" } else { "impacts" };
    table.print(&format!("{ci} {direction} nothing within {depth} hops."))?;
    if !analysis.impacted_services.is_empty() {
        out!("");
        out!(
            "Business services affected: {}",
            analysis.impacted_services.join(", ")
        );
    }
    if analysis.truncated {
        eprintln!("(more CIs were reached than returned)");
    }
    if analysis.depth_limited {
        eprintln!("(the walk stopped at {depth} hops with relationships left: raise --depth)");
    }
    Ok(())
}
