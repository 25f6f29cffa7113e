//! Reconciliation by source precedence, without I/O: given a stored CI (with
//! the provenance of each field), what one source reports about it, the
//! precedence rules and the staleness windows, decide field by field whether
//! the report is applied, unchanged (same value: the provenance's
//! `last_reported_time` moves) or overruled (a source of higher precedence
//! holds a current value it reported recently enough).
//!
//! Which rule governs a field: the rules of the CI's class first, then of
//! each ancestor up to the root; within one class a rule naming the field
//! before its "*" rule. No rule: the latest report wins. Within a rule a
//! source not listed ranks below every listed one; two unlisted sources rank
//! alike (the latest report wins between them).

use std::collections::HashMap;

use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::audit::timestamp;

use crate::model;

/// The core fields a report may set (and a precedence rule may name),
/// besides `attributes.<key>`.
pub const CORE_FIELDS: &[&str] = &[
    "display_name",
    "description",
    "status",
    "owner",
    "support_group",
    "criticality",
    "location",
    "min_members_up",
    "labels",
];

/// The core fields a report may clear (`cleared_fields`).
pub const CLEARABLE_FIELDS: &[&str] = &[
    "description",
    "owner",
    "support_group",
    "criticality",
    "location",
    "min_members_up",
    "labels",
];

/// A precedence rule, as reconciliation uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Class id, "server".
    pub class: String,
    /// "attributes.os_version", "support_group" or "*".
    pub field: String,
    /// Source ids, highest precedence first.
    pub sources: Vec<String>,
    /// Microseconds; `None` uses the holding source's `stale_after`.
    pub stale_after: Option<i64>,
}

impl Rule {
    /// The rule of a stored `PrecedenceRule` (`None` when its class name is malformed).
    pub fn of(rule: &pb::PrecedenceRule) -> Option<Self> {
        Some(Self {
            class: model::class_id(&rule.ci_class)?.to_owned(),
            field: rule.field.clone(),
            sources: rule
                .discovery_sources
                .iter()
                .map(|s| source_id(s).to_owned())
                .collect(),
            stale_after: rule.stale_after.as_ref().map(duration_micros),
        })
    }

    /// Rank of `source`: its index, or below every listed source.
    fn rank(&self, source: &str) -> usize {
        self.sources
            .iter()
            .position(|s| s == source)
            .unwrap_or(self.sources.len())
    }
}

/// "discoverySources/sccm" -> "sccm" (an id is returned as is).
pub fn source_id(name: &str) -> &str {
    name.strip_prefix("discoverySources/").unwrap_or(name)
}

/// A duration in microseconds (negative counts as 0).
pub fn duration_micros(d: &prost_types::Duration) -> i64 {
    d.seconds
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(d.nanos) / 1_000)
        .max(0)
}

/// Everything a decision depends on besides the CI and the report.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The reporting source id, "sccm".
    pub source: &'a str,
    /// The CI's class and its ancestors, most specific first.
    pub classes: Vec<&'a str>,
    /// The rules of those classes (others are ignored).
    pub rules: &'a [Rule],
    /// `stale_after` of each source by id, microseconds; 0 or absent: never stale.
    pub source_stale_after: &'a HashMap<String, i64>,
    /// Now, microseconds.
    pub now: i64,
}

/// What happens to one reported field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Written: the value differs and this source may set it.
    Apply,
    /// Same value. `claim`: the provenance names this source from now on
    /// (it held the field already, or may take it over); otherwise the
    /// holder keeps it.
    Unchanged { claim: bool },
    /// A different value, not written: a source of higher precedence owns it.
    Overruled,
}

impl Context<'_> {
    /// The rule governing `field`: the most specific class first, a rule
    /// naming the field before the class's "*" rule.
    pub fn rule_for(&self, field: &str) -> Option<&Rule> {
        self.classes.iter().find_map(|class| {
            let of_class = || self.rules.iter().filter(|r| r.class == *class);
            of_class()
                .find(|r| r.field == field)
                .or_else(|| of_class().find(|r| r.field == "*"))
        })
    }

    /// Whether this source may set `field`, held as `provenance` (with a
    /// value when `has_value`).
    pub fn may_write(
        &self,
        field: &str,
        has_value: bool,
        provenance: Option<&pb::FieldProvenance>,
    ) -> bool {
        let Some(rule) = self.rule_for(field) else {
            return true;
        };
        let Some(provenance) = provenance.filter(|_| has_value) else {
            return true;
        };
        let holder = source_id(&provenance.discovery_source);
        if holder == self.source || rule.rank(holder) >= rule.rank(self.source) {
            return true;
        }
        // A higher source holds a current value: it keeps it while fresh.
        let window = rule
            .stale_after
            .unwrap_or_else(|| self.source_stale_after.get(holder).copied().unwrap_or(0));
        if window <= 0 {
            return false;
        }
        let reported = provenance
            .last_reported_time
            .as_ref()
            .or(provenance.set_time.as_ref())
            .map(|t| crate::store::cis::micros(Some(t)))
            .unwrap_or(0);
        self.now.saturating_sub(reported) > window
    }

    /// The decision for `field`: `differs` when the report's value is not
    /// the stored one; `has_value` when the stored CI has a value.
    pub fn decide(
        &self,
        field: &str,
        differs: bool,
        has_value: bool,
        provenance: Option<&pb::FieldProvenance>,
    ) -> Decision {
        let may = self.may_write(field, has_value, provenance);
        match (differs, may) {
            (true, true) => Decision::Apply,
            (true, false) => Decision::Overruled,
            (false, claim) => Decision::Unchanged { claim },
        }
    }
}

/// The paths a report sets: core fields with a value, attributes with a
/// value, then `cleared` (deduplicated, in that order).
pub fn reported_fields(ci: &pb::Ci, cleared: &[String]) -> Vec<String> {
    let mut out: Vec<String> = CORE_FIELDS
        .iter()
        .filter(|f| field_value(ci, f).is_some())
        .map(|f| (*f).to_owned())
        .collect();
    let mut keys: Vec<&String> = ci
        .attributes
        .iter()
        .filter(|(_, v)| v.value.is_some())
        .map(|(k, _)| k)
        .collect();
    keys.sort();
    out.extend(keys.into_iter().map(|k| format!("attributes.{k}")));
    for field in cleared {
        if !out.contains(field) {
            out.push(field.clone());
        }
    }
    out
}

/// The value of `field` in `ci` as comparable text (attributes tagged with
/// their type); `None` when it has none.
pub fn field_value(ci: &pb::Ci, field: &str) -> Option<String> {
    let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let number = |n: i64| (n != 0).then(|| n.to_string());
    match field {
        "display_name" => text(&ci.display_name),
        "description" => text(&ci.description),
        "status" => number(i64::from(ci.status)),
        "owner" => text(&ci.owner),
        "support_group" => text(&ci.support_group),
        "criticality" => number(i64::from(ci.criticality)),
        "location" => text(&ci.location),
        "min_members_up" => number(i64::from(ci.min_members_up)),
        "labels" => {
            let mut labels: Vec<(&String, &String)> = ci.labels.iter().collect();
            labels.sort();
            (!labels.is_empty()).then(|| format!("{labels:?}"))
        }
        _ => {
            let key = field.strip_prefix("attributes.")?;
            let value = ci.attributes.get(key)?;
            let inner = value.value.as_ref()?;
            let tag = format!("{:?}", std::mem::discriminant(inner));
            model::value_text(value).map(|t| format!("{tag}:{t}"))
        }
    }
}

/// Sets `field` of `to` to its value in `from` (no value clears it).
pub fn copy_field(from: &pb::Ci, to: &mut pb::Ci, field: &str) {
    match field {
        "display_name" => to.display_name.clone_from(&from.display_name),
        "description" => to.description.clone_from(&from.description),
        "status" => to.status = from.status,
        "owner" => to.owner.clone_from(&from.owner),
        "support_group" => to.support_group.clone_from(&from.support_group),
        "criticality" => to.criticality = from.criticality,
        "location" => to.location.clone_from(&from.location),
        "min_members_up" => to.min_members_up = from.min_members_up,
        "labels" => to.labels.clone_from(&from.labels),
        _ => {
            if let Some(key) = field.strip_prefix("attributes.") {
                match from.attributes.get(key).filter(|v| v.value.is_some()) {
                    Some(value) => {
                        to.attributes.insert(key.to_owned(), value.clone());
                    }
                    None => {
                        to.attributes.remove(key);
                    }
                }
            }
        }
    }
}

/// What reconciling one report against a stored CI decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The CI with the applied values, and the provenance of unchanged
    /// fields refreshed (applied fields get theirs when written).
    pub after: pb::Ci,
    /// Field paths written.
    pub applied: Vec<String>,
    /// Field paths with a different value not written.
    pub overruled: Vec<String>,
    /// Whether a provenance entry moved (a save without a new version).
    pub refreshed: bool,
}

/// Reconciles `reported` (the fields of `fields`, see [`reported_fields`])
/// into `stored`.
pub fn reconcile(
    stored: &pb::Ci,
    reported: &pb::Ci,
    fields: &[String],
    context: &Context<'_>,
) -> Outcome {
    let mut after = stored.clone();
    let mut applied = Vec::new();
    let mut overruled = Vec::new();
    let mut refreshed = false;
    let now = Some(timestamp(context.now));
    for field in fields {
        let current = field_value(stored, field);
        let differs = current != field_value(reported, field);
        let provenance = stored.provenance.get(field);
        match context.decide(field, differs, current.is_some(), provenance) {
            Decision::Apply => {
                copy_field(reported, &mut after, field);
                applied.push(field.clone());
            }
            Decision::Overruled => overruled.push(field.clone()),
            Decision::Unchanged { claim: false } => {}
            Decision::Unchanged { claim: true } => {
                let name = crate::write::source_name(context.source);
                let entry = after.provenance.entry(field.clone()).or_default();
                if entry.discovery_source != name {
                    entry.discovery_source = name;
                    entry.set_time = now;
                }
                entry.last_reported_time = now;
                refreshed = true;
            }
        }
    }
    Outcome {
        after,
        applied,
        overruled,
        refreshed,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const HOUR: i64 = 3_600_000_000;

    fn text(s: &str) -> pb::AttributeValue {
        pb::AttributeValue {
            value: Some(pb::attribute_value::Value::StringValue(s.to_owned())),
        }
    }

    fn held(source: &str, reported: i64) -> pb::FieldProvenance {
        pb::FieldProvenance {
            discovery_source: format!("discoverySources/{source}"),
            actor: None,
            set_time: Some(timestamp(reported)),
            last_reported_time: Some(timestamp(reported)),
        }
    }

    fn rule(class: &str, field: &str, sources: &[&str], stale: Option<i64>) -> Rule {
        Rule {
            class: class.to_owned(),
            field: field.to_owned(),
            sources: sources.iter().map(|s| (*s).to_owned()).collect(),
            stale_after: stale,
        }
    }

    fn ci_with(key: &str, value: &str, holder: Option<(&str, i64)>) -> pb::Ci {
        let mut ci = pb::Ci {
            ci_class: "classes/linux_server".into(),
            display_name: "web-01".into(),
            ..pb::Ci::default()
        };
        ci.attributes.insert(key.to_owned(), text(value));
        if let Some((source, at)) = holder {
            ci.provenance
                .insert(format!("attributes.{key}"), held(source, at));
        }
        ci
    }

    fn context<'a>(
        source: &'a str,
        rules: &'a [Rule],
        stale: &'a HashMap<String, i64>,
        now: i64,
    ) -> Context<'a> {
        Context {
            source,
            classes: vec!["linux_server", "server", "hardware", "configuration_item"],
            rules,
            source_stale_after: stale,
            now,
        }
    }

    #[test]
    fn a_higher_source_keeps_its_fresh_value_and_a_new_field_is_applied() {
        let rules = [rule(
            "server",
            "attributes.os_version",
            &["sccm", "tool"],
            None,
        )];
        let stale = HashMap::new();
        let ctx = context("tool", &rules, &stale, 10 * HOUR);
        let stored = ci_with("os_version", "22.04", Some(("sccm", 9 * HOUR)));
        let mut reported = ci_with("os_version", "20.04", None);
        reported
            .attributes
            .insert("ip_address".into(), text("10.0.0.1"));
        let fields = reported_fields(&reported, &[]);
        let out = reconcile(&stored, &reported, &fields, &ctx);
        assert_eq!(out.overruled, vec!["attributes.os_version"]);
        assert_eq!(out.applied, vec!["attributes.ip_address"]);
        assert_eq!(
            field_value(&out.after, "attributes.os_version"),
            field_value(&stored, "attributes.os_version")
        );
        assert_eq!(
            field_value(&out.after, "attributes.ip_address"),
            field_value(&reported, "attributes.ip_address")
        );
    }

    #[test]
    fn the_higher_source_overwrites_the_lower() {
        let rules = [rule(
            "server",
            "attributes.os_version",
            &["sccm", "tool"],
            None,
        )];
        let stale = HashMap::new();
        let ctx = context("sccm", &rules, &stale, 10 * HOUR);
        let stored = ci_with("os_version", "20.04", Some(("tool", 9 * HOUR)));
        let reported = ci_with("os_version", "22.04", None);
        let fields = reported_fields(&reported, &[]);
        let out = reconcile(&stored, &reported, &fields, &ctx);
        assert_eq!(out.applied, vec!["attributes.os_version"]);
        assert!(out.overruled.is_empty());
    }

    #[test]
    fn a_stale_higher_source_loses_the_field() {
        let rules = [rule("server", "*", &["sccm", "tool"], Some(HOUR))];
        let stale = HashMap::new();
        let stored = ci_with("os_version", "22.04", Some(("sccm", 0)));
        let reported = ci_with("os_version", "24.04", None);
        let fields = vec!["attributes.os_version".to_owned()];
        let fresh = context("tool", &rules, &stale, HOUR / 2);
        assert_eq!(
            reconcile(&stored, &reported, &fields, &fresh).overruled,
            fields
        );
        let later = context("tool", &rules, &stale, 2 * HOUR);
        assert_eq!(
            reconcile(&stored, &reported, &fields, &later).applied,
            fields
        );
    }

    #[test]
    fn the_source_window_applies_when_the_rule_sets_none() {
        let rules = [rule("server", "*", &["sccm"], None)];
        let stale: HashMap<String, i64> = [("sccm".to_owned(), HOUR)].into();
        let stored = ci_with("os_version", "22.04", Some(("sccm", 0)));
        let reported = ci_with("os_version", "24.04", None);
        let fields = vec!["attributes.os_version".to_owned()];
        let ctx = context("agent", &rules, &stale, 2 * HOUR);
        assert_eq!(reconcile(&stored, &reported, &fields, &ctx).applied, fields);
    }

    #[test]
    fn the_most_specific_class_decides_and_a_field_rule_beats_the_star() {
        let rules = [
            rule("server", "attributes.os_version", &["tool", "sccm"], None),
            rule("linux_server", "*", &["sccm", "tool"], None),
            rule("linux_server", "attributes.ram", &["tool", "sccm"], None),
        ];
        let stale = HashMap::new();
        let ctx = context("tool", &rules, &stale, HOUR);
        assert_eq!(
            ctx.rule_for("attributes.os_version")
                .map(|r| r.field.as_str()),
            Some("*")
        );
        assert_eq!(
            ctx.rule_for("attributes.ram").map(|r| r.field.as_str()),
            Some("attributes.ram")
        );
        assert!(ctx.rule_for("owner").is_some());
        let none: [Rule; 0] = [];
        assert!(
            context("tool", &none, &stale, HOUR)
                .rule_for("owner")
                .is_none()
        );
    }

    #[test]
    fn same_value_refreshes_the_holders_report_time_only() {
        let rules = [rule("server", "*", &["sccm", "tool"], None)];
        let stale = HashMap::new();
        let stored = ci_with("os_version", "22.04", Some(("sccm", 0)));
        let reported = ci_with("os_version", "22.04", None);
        let fields = vec!["attributes.os_version".to_owned()];
        let by_sccm = reconcile(
            &stored,
            &reported,
            &fields,
            &context("sccm", &rules, &stale, HOUR),
        );
        assert!(by_sccm.refreshed && by_sccm.applied.is_empty());
        let p = &by_sccm.after.provenance["attributes.os_version"];
        assert_eq!(p.last_reported_time, Some(timestamp(HOUR)));
        assert_eq!(p.set_time, Some(timestamp(0)));
        let by_tool = reconcile(
            &stored,
            &reported,
            &fields,
            &context("tool", &rules, &stale, HOUR),
        );
        assert!(!by_tool.refreshed);
        assert_eq!(by_tool.after, stored);
    }

    #[test]
    fn cleared_fields_are_cleared_when_allowed() {
        let stale = HashMap::new();
        let stored = ci_with("ip_address", "10.0.0.1", Some(("agent", 0)));
        let reported = pb::Ci::default();
        let fields = reported_fields(&reported, &["attributes.ip_address".to_owned()]);
        let out = reconcile(
            &stored,
            &reported,
            &fields,
            &context("agent", &[], &stale, HOUR),
        );
        assert_eq!(out.applied, vec!["attributes.ip_address"]);
        assert!(!out.after.attributes.contains_key("ip_address"));
    }

    proptest! {
        /// With no rule the latest report always wins; a field is never both
        /// applied and overruled; unchanged values are never applied.
        #[test]
        fn decisions_are_consistent(
            stored_value in "[a-c]{0,2}",
            reported_value in "[a-c]{1,2}",
            holder in prop::sample::select(vec!["sccm", "tool", "agent", "manual"]),
            source in prop::sample::select(vec!["sccm", "tool", "agent"]),
            age in 0i64..(4 * HOUR),
            window in prop::option::of(0i64..(3 * HOUR)),
            with_rule in any::<bool>(),
        ) {
            let rules = if with_rule {
                vec![rule("server", "*", &["sccm", "tool"], window)]
            } else {
                Vec::new()
            };
            let stale = HashMap::new();
            let now = 5 * HOUR;
            let mut stored = ci_with("k", &stored_value, Some((holder, now - age)));
            if stored_value.is_empty() {
                stored.attributes.clear();
            }
            let reported = ci_with("k", &reported_value, None);
            let fields = vec!["attributes.k".to_owned()];
            let ctx = context(source, &rules, &stale, now);
            let out = reconcile(&stored, &reported, &fields, &ctx);
            prop_assert!(out.applied.is_empty() || out.overruled.is_empty());
            if stored_value == reported_value {
                prop_assert!(out.applied.is_empty() && out.overruled.is_empty());
            } else if !with_rule || stored_value.is_empty() || holder == source {
                prop_assert_eq!(&out.applied, &fields);
            }
            let rank = |s: &str| ["sccm", "tool"].iter().position(|x| *x == s).unwrap_or(2);
            if !out.overruled.is_empty() {
                prop_assert!(rank(holder) < rank(source));
                prop_assert!(window.is_none_or(|w| w == 0 || age <= w));
            }
            if out.applied.is_empty() {
                prop_assert_eq!(field_value(&out.after, "attributes.k"), field_value(&stored, "attributes.k"));
            } else {
                prop_assert_eq!(field_value(&out.after, "attributes.k"), field_value(&reported, "attributes.k"));
            }
        }
    }
}
