use super::group::{AlertGroup, FlapRule, IncidentStep, Observed, Outcome, crossed_power_of_ten};
use super::*;
use crate::domain::enums::State;

const MINUTE: i64 = 60_000_000;
const RULE: FlapRule = FlapRule {
    threshold: 3,
    window: 60 * MINUTE,
};

fn draft(status: i32) -> AlertDraft {
    AlertDraft {
        source: "alertmanager/prod".into(),
        status,
        severity: 1,
        node: "web-01:9100".into(),
        resource: "node".into(),
        metric: "HostDown".into(),
        summary: "web-01 is down".into(),
        ..AlertDraft::default()
    }
}

fn alert(status: AlertStatus) -> Alert {
    check(draft(status.number())).unwrap()
}

#[test]
fn fingerprints_are_sent_or_derived_unambiguously() {
    let derived = fingerprint_of(&draft(1)).unwrap();
    assert_eq!(derived.len(), 64);
    assert!(is_fingerprint(&derived));
    assert_ne!(
        derive_fingerprint("ab", "c", "", ""),
        derive_fingerprint("a", "bc", "", "")
    );
    let sent = AlertDraft {
        fingerprint: "c4ca4238a0b92382".into(),
        ..draft(1)
    };
    assert_eq!(fingerprint_of(&sent).unwrap(), "c4ca4238a0b92382");
    let keyless = AlertDraft {
        summary: "x".into(),
        status: 1,
        ..AlertDraft::default()
    };
    assert_eq!(fingerprint_of(&keyless), None);
    assert!(!is_fingerprint("a/b"));
    assert!(!is_fingerprint(""));
}

#[test]
fn invalid_alerts_name_every_bad_field() {
    let error = check(AlertDraft {
        status: 7,
        summary: " \t".into(),
        severity: 9,
        ..draft(1)
    })
    .unwrap_err();
    assert!(error.starts_with("status: unknown value 7"), "{error}");
    assert!(error.contains("severity: unknown value 9"), "{error}");
    assert!(error.contains("summary: is required"), "{error}");
    let error = check(AlertDraft {
        summary: "x".into(),
        status: 0,
        ..AlertDraft::default()
    })
    .unwrap_err();
    assert!(error.contains("fingerprint: is required"), "{error}");
    assert!(error.contains("status: is required"), "{error}");
}

#[test]
fn severity_decides_impact_and_urgency() {
    use super::super::enums::{Impact, Urgency};
    let critical = incident_draft(&alert(AlertStatus::Firing), "svc-monitoring");
    assert_eq!((critical.impact, critical.urgency), (1, 1));
    assert_eq!(critical.channel, Channel::Monitoring.number());
    assert_eq!(critical.caller, "svc-monitoring");
    assert!(critical.description.contains("Node: web-01:9100"));
    assert_eq!(
        impact_urgency(Some(AlertSeverity::Info)),
        (Impact::Low, Urgency::Low)
    );
    assert_eq!(impact_urgency(None), (Impact::Medium, Urgency::Medium));
}

#[test]
fn incident_drafts_are_always_valid() {
    let mut sent = draft(1);
    sent.summary = format!("{}\nsecond line", "x".repeat(300));
    sent.labels = [
        ("alertname", "HostDown"),
        ("Team", "Ops"),
        ("__name__", "up"),
        ("instance", &"v".repeat(400)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let d = incident_draft(&check(sent).unwrap(), "svc-monitoring");
    d.validate_new().unwrap();
    assert_eq!(d.title.chars().count(), 160);
    assert!(!d.title.contains('\n'));
    let keys: Vec<_> = d.labels.keys().map(String::as_str).collect();
    assert_eq!(keys, ["alertname", "instance", "team"]);
}

#[test]
fn a_group_opens_counts_resolves_and_refires() {
    let (firing, resolved) = (alert(AlertStatus::Firing), alert(AlertStatus::Resolved));
    let mut g = AlertGroup::new("fp", 0);
    assert_eq!(g.observe(&resolved, b"", RULE, 1), Observed::Unknown);
    assert_eq!(g.version, 0, "an unknown clear changes nothing");
    assert_eq!(g.observe(&firing, b"a", RULE, 2), Observed::Opened);
    assert_eq!(g.plan(Observed::Opened, None).1, Outcome::Opened);
    g.incident = "INC0000001".into();
    assert_eq!(g.observe(&firing, b"b", RULE, 3), Observed::Repeated);
    assert!(!g.needs_incident(Observed::Repeated));
    assert_eq!(g.observe(&resolved, b"c", RULE, 4), Observed::Cleared);
    let open = Some(State::InProgress);
    assert_eq!(
        g.plan(Observed::Cleared, open),
        (IncidentStep::Resolve, Outcome::Resolved)
    );
    assert_eq!(
        g.plan(Observed::Cleared, Some(State::Closed)),
        (IncidentStep::Keep, Outcome::Resolved)
    );
    assert_eq!(g.observe(&resolved, b"d", RULE, 5), Observed::Repeated);
    let refired = g.observe(&firing, b"e", RULE, 6);
    assert_eq!(
        refired,
        Observed::Refired {
            became_flapping: false
        }
    );
    assert_eq!(
        g.plan(refired, Some(State::Resolved)),
        (IncidentStep::Reopen, Outcome::Reopened)
    );
    assert_eq!(
        g.plan(refired, Some(State::Canceled)),
        (
            IncidentStep::Open {
                related: Some("INC0000001".into())
            },
            Outcome::Opened
        )
    );
    assert_eq!(
        g.plan(refired, open),
        (IncidentStep::Keep, Outcome::Deduplicated)
    );
    assert_eq!((g.occurrence_count, g.flap_count, g.version), (5, 1, 5));
    assert_eq!(g.last_alert, b"e");
}

#[test]
fn refires_within_the_window_make_a_group_flap_until_it_is_quiet() {
    let (firing, resolved) = (alert(AlertStatus::Firing), alert(AlertStatus::Resolved));
    let mut g = AlertGroup::new("fp", 0);
    g.observe(&firing, b"", RULE, MINUTE);
    let mut flapped = Vec::new();
    for cycle in 1..=4 {
        g.observe(&resolved, b"", RULE, cycle * 2 * MINUTE);
        let observed = g.observe(&firing, b"", RULE, (cycle * 2 + 1) * MINUTE);
        flapped.push(
            observed
                == Observed::Refired {
                    became_flapping: true,
                },
        );
    }
    assert_eq!(flapped, [false, false, true, false], "once, at the third");
    assert!(g.flapping);
    assert_eq!((g.flap_count, g.window_flaps), (4, 4));
    // While flapping a clear keeps the incident.
    assert_eq!(
        g.observe(&resolved, b"", RULE, 10 * MINUTE),
        Observed::Cleared
    );
    assert!(!g.needs_incident(Observed::Cleared));
    assert_eq!(
        g.plan(Observed::Cleared, Some(State::InProgress)),
        (IncidentStep::Keep, Outcome::Deduplicated)
    );
    // A whole window without a refire: no longer flapping, a new window.
    let later = 9 * MINUTE + RULE.window;
    let observed = g.observe(&firing, b"", RULE, later);
    assert_eq!(
        observed,
        Observed::Refired {
            became_flapping: false
        }
    );
    assert!(!g.flapping);
    assert_eq!((g.flap_window_started_at, g.window_flaps), (later, 1));
}

#[test]
fn refires_spread_wider_than_the_window_never_flap() {
    let (firing, resolved) = (alert(AlertStatus::Firing), alert(AlertStatus::Resolved));
    let mut g = AlertGroup::new("fp", 0);
    g.observe(&firing, b"", RULE, 1);
    for cycle in 1..=6 {
        let at = cycle * 40 * MINUTE;
        g.observe(&resolved, b"", RULE, at);
        g.observe(&firing, b"", RULE, at + MINUTE);
    }
    assert!(!g.flapping);
    assert_eq!(g.flap_count, 6);
}

#[test]
fn changes_name_the_audited_fields() {
    let mut g = AlertGroup::new("fp", 0);
    let before = g.snapshot();
    g.observe(&alert(AlertStatus::Firing), b"", RULE, 1);
    g.incident = "INC0000001".into();
    let fields: Vec<_> = g
        .changes_since(&before)
        .into_iter()
        .map(|c| (c.field, c.old, c.new))
        .collect();
    assert_eq!(
        fields,
        [
            ("status".into(), String::new(), "FIRING".into()),
            ("occurrence_count".into(), "0".into(), "1".into()),
            ("incident".into(), String::new(), "INC0000001".into()),
        ]
    );
}

#[test]
fn powers_of_ten_are_crossed_once() {
    assert!(!crossed_power_of_ten(0, 9));
    assert!(crossed_power_of_ten(9, 10));
    assert!(!crossed_power_of_ten(10, 99));
    assert!(crossed_power_of_ten(1, 500));
    assert!(crossed_power_of_ten(9_500, 10_000));
    assert!(!crossed_power_of_ten(10_000, 10_001));
    assert!(!crossed_power_of_ten(0, 1), "the first alert is `opened`");
    assert!(!crossed_power_of_ten(i64::MAX - 1, i64::MAX));
}
