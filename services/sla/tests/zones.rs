//! Where a clock's time zone comes from: the definition's own zone, the
//! ticket caller's (`caller_time_zone` on the incident), or the zone the CMDB
//! gives for the ticket's CI. The breach instant of each clock is the one
//! AddBusinessTime predicts in that zone; an unknown answer falls back to the
//! definition's zone; the zone is recorded at attachment, so a CI that moves
//! later does not move a running clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use itsm_platform::{ApiError, ErrorCode};
use itsm_proto::itsm::incidents::v1::IncidentState;
use itsm_proto::itsm::sla::v1 as pb;
use itsm_sla::engine::Engine;
use itsm_sla::zones::ZoneSource;
use itsm_testkit::{TestDb, backend_tests};

use support::{ADMIN, AGENT, H, Harness, Ticket, as_, micros, monday, office_hours, seconds, ts};

backend_tests!(
    each_source_counts_business_hours_in_its_zone,
    unknown_zones_fall_back_to_the_definitions_zone,
    the_zone_is_kept_when_the_ci_moves,
);

/// A CMDB that knows the zones of a few CIs and can be made to fail.
#[derive(Debug, Default)]
struct FakeCmdb {
    zones: Mutex<BTreeMap<String, String>>,
    down: Mutex<bool>,
}

impl FakeCmdb {
    fn place(&self, ci: &str, zone: &str) {
        self.zones
            .lock()
            .unwrap()
            .insert(ci.to_owned(), zone.to_owned());
    }
}

#[async_trait]
impl ZoneSource for FakeCmdb {
    async fn ci_time_zone(&self, ci: &str) -> Result<Option<String>, ApiError> {
        if *self.down.lock().unwrap() {
            return Err(ApiError::new(ErrorCode::Unavailable, "CMDB down"));
        }
        Ok(self.zones.lock().unwrap().get(ci).cloned())
    }
}

/// An 8-business-hour definition on every incident, counting in `zone`
/// (empty: the calendar's, UTC) per `source`.
async fn define(svc: &mut Harness, id: &str, source: pb::TimeZoneSource, zone: &str) {
    let definition = pb::SlaDefinition {
        display_name: id.into(),
        kind: pb::SlaKind::Sla as i32,
        ticket_type: "incidents".into(),
        target: Some(seconds(8 * 3600)),
        calendar: "calendars/office".into(),
        time_zone_source: source as i32,
        time_zone: zone.into(),
        stop_condition: "state = RESOLVED".into(),
        enabled: true,
        ..pb::SlaDefinition::default()
    };
    let request = pb::CreateSlaDefinitionRequest {
        sla_definition: Some(definition),
        sla_definition_id: id.into(),
        ..pb::CreateSlaDefinitionRequest::default()
    };
    svc.client
        .create_sla_definition(as_(ADMIN, request))
        .await
        .unwrap();
}

async fn setup(db: &TestDb, cmdb: &Arc<FakeCmdb>) -> (Harness, Engine) {
    let engine = Engine::new(Arc::clone(cmdb) as Arc<dyn ZoneSource>);
    let mut svc = support::start_with(db, engine.clone()).await;
    svc.create_calendar("office", office_hours("Office", "UTC"))
        .await;
    define(&mut svc, "by-sla", pb::TimeZoneSource::Sla, "Europe/Paris").await;
    define(&mut svc, "by-caller", pb::TimeZoneSource::Caller, "").await;
    define(&mut svc, "by-ci", pb::TimeZoneSource::CiLocation, "").await;
    (svc, engine)
}

/// An incident created Monday 10:00 UTC by a caller in `caller_zone` on `ci`.
fn incident(number: &str, caller_zone: &str, ci: &str) -> Ticket {
    let mut ticket = Ticket::created(number, monday() + 10 * H, 3, "network");
    ticket.incident.caller_time_zone = caller_zone.into();
    ticket.incident.configuration_item = ci.into();
    ticket.events.clear();
    ticket.push(monday() + 10 * H, "incidents.incident.created");
    ticket
}

/// The task SLAs of `ticket` by definition id: (time zone, breach instant).
async fn clocks(svc: &mut Harness, ticket: &str) -> BTreeMap<String, (String, i64)> {
    let request = pb::ListTaskSlasRequest {
        filter: format!("ticket = \"{ticket}\""),
        ..pb::ListTaskSlasRequest::default()
    };
    let list = svc
        .client
        .list_task_slas(as_(AGENT, request))
        .await
        .unwrap()
        .into_inner();
    list.task_slas
        .into_iter()
        .map(|t| {
            let id = t
                .sla_definition
                .trim_start_matches("slaDefinitions/")
                .to_owned();
            (id, (t.time_zone, micros(t.breach_time.as_ref().unwrap())))
        })
        .collect()
}

/// What AddBusinessTime says 8 business hours from Monday 10:00 UTC end at,
/// with the office calendar in `zone`.
async fn predicted(svc: &mut Harness, zone: &str) -> i64 {
    let request = pb::AddBusinessTimeRequest {
        calendar: "calendars/office".into(),
        start_time: Some(ts(monday() + 10 * H)),
        duration: Some(seconds(8 * 3600)),
        time_zone: zone.into(),
        ..pb::AddBusinessTimeRequest::default()
    };
    let reply = svc
        .client
        .add_business_time(as_(AGENT, request))
        .await
        .unwrap()
        .into_inner();
    micros(reply.end_time.as_ref().unwrap())
}

async fn apply(engine: &Engine, svc: &Harness, ticket: &Ticket, now: i64) {
    for event in &ticket.events {
        engine
            .apply_ticket_event(&svc.db, event, now)
            .await
            .unwrap();
    }
}

async fn each_source_counts_business_hours_in_its_zone(db: TestDb) {
    let cmdb = Arc::new(FakeCmdb::default());
    cmdb.place("cis/nyc-web-01", "America/New_York");
    let (mut svc, engine) = setup(&db, &cmdb).await;
    let ticket = incident("INC0000001", "Asia/Tokyo", "cis/nyc-web-01");
    apply(&engine, &svc, &ticket, monday() + 10 * H).await;

    let got = clocks(&mut svc, "incidents/INC0000001").await;
    let mut expected = BTreeMap::new();
    for (id, zone) in [
        ("by-sla", "Europe/Paris"),
        ("by-caller", "Asia/Tokyo"),
        ("by-ci", "America/New_York"),
    ] {
        let breach = predicted(&mut svc, zone).await;
        expected.insert(id.to_owned(), (zone.to_owned(), breach));
    }
    assert_eq!(got, expected);
    // Three different zones give three different instants.
    let instants: std::collections::BTreeSet<i64> = got.values().map(|(_, at)| *at).collect();
    assert_eq!(instants.len(), 3, "{got:?}");
}

async fn unknown_zones_fall_back_to_the_definitions_zone(db: TestDb) {
    let cmdb = Arc::new(FakeCmdb::default());
    let (mut svc, engine) = setup(&db, &cmdb).await;
    let utc = predicted(&mut svc, "UTC").await;

    // No caller zone, a CI the CMDB has no zone for.
    let ticket = incident("INC0000001", "", "cis/unplaced");
    apply(&engine, &svc, &ticket, monday() + 10 * H).await;
    // A caller zone that is not an IANA name, and the CMDB down.
    *cmdb.down.lock().unwrap() = true;
    let ticket = incident("INC0000002", "Mars/Olympus_Mons", "cis/nyc-web-01");
    apply(&engine, &svc, &ticket, monday() + 10 * H).await;

    for number in ["INC0000001", "INC0000002"] {
        let got = clocks(&mut svc, &format!("incidents/{number}")).await;
        // The definitions have no zone of their own: the calendar's (UTC).
        assert_eq!(got["by-caller"], ("UTC".to_owned(), utc), "{number}");
        assert_eq!(got["by-ci"], ("UTC".to_owned(), utc), "{number}");
    }
}

async fn the_zone_is_kept_when_the_ci_moves(db: TestDb) {
    let cmdb = Arc::new(FakeCmdb::default());
    cmdb.place("cis/web-01", "America/New_York");
    let (mut svc, engine) = setup(&db, &cmdb).await;
    let new_york = predicted(&mut svc, "America/New_York").await;
    let mut ticket = incident("INC0000001", "", "cis/web-01");
    apply(&engine, &svc, &ticket, monday() + 10 * H).await;

    // The CI moves to Sydney; the next ticket event replays the clock in
    // the zone it started in.
    cmdb.place("cis/web-01", "Australia/Sydney");
    ticket.state(monday() + 11 * H, IncidentState::InProgress);
    apply(&engine, &svc, &ticket, monday() + 11 * H).await;
    let got = clocks(&mut svc, "incidents/INC0000001").await;
    assert_eq!(got["by-ci"], ("America/New_York".to_owned(), new_york));

    // Recomputing with the latest versions asks again.
    let request = pb::RecomputeTicketSlasRequest {
        ticket: "incidents/INC0000001".into(),
        mode: pb::RecomputeMode::LatestVersions as i32,
        ..pb::RecomputeTicketSlasRequest::default()
    };
    svc.client
        .recompute_ticket_slas(as_(ADMIN, request))
        .await
        .unwrap();
    let sydney = predicted(&mut svc, "Australia/Sydney").await;
    let got = clocks(&mut svc, "incidents/INC0000001").await;
    assert_eq!(got["by-ci"], ("Australia/Sydney".to_owned(), sydney));
}
