//! The checks of the model's writes: a class's definition against the
//! hierarchy it would sit in, update masks, and the event payloads and
//! audit changes the model's writes record.

use std::collections::HashSet;

use itsm_platform::{ApiError, Violations};
use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_proto::itsm::common::v1 as common;
use itsm_store::audit::FieldChange;
use prost::Message;

use crate::model::{self, Model, class_id};

/// The longest display name of a class or attribute.
const MAX_DISPLAY_NAME: usize = 255;

/// Core CI fields: attribute keys may not take these names (identification
/// rules and filters name both in one namespace).
const CORE_FIELDS: &[&str] = &[
    "name",
    "ci_class",
    "display_name",
    "description",
    "status",
    "owner",
    "support_group",
    "criticality",
    "location",
    "time_zone",
    "attributes",
    "min_members_up",
    "labels",
];

/// The core fields an identification rule may name besides attributes.
const RULE_CORE_FIELDS: &[&str] = &["display_name", "location"];

/// The mask's paths checked against `editable`: not empty, each path once,
/// each one of `editable`. Records every bad path in `v` and returns the
/// good ones, so the fields they name are checked too.
pub fn mask_fields(
    paths: &[String],
    editable: &[&'static str],
    v: &mut Violations,
) -> Vec<&'static str> {
    v.check(
        !paths.is_empty(),
        "update_mask",
        format!(
            "must name the fields to change, among: {}",
            editable.join(", ")
        ),
    );
    let mut fields = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        match editable.iter().find(|f| **f == path.as_str()) {
            Some(field) if !fields.contains(field) => fields.push(*field),
            Some(_) => v.add(
                format!("update_mask.paths[{i}]"),
                format!("repeats {path:?}"),
            ),
            None => v.add(
                format!("update_mask.paths[{i}]"),
                format!(
                    "{path:?} cannot be updated; updatable: {}",
                    editable.join(", ")
                ),
            ),
        }
    }
    fields
}

/// An event payload: `message` packed as `itsm.cmdb.v1.<type_name>`.
pub fn payload(type_name: &str, message: &impl Message) -> prost_types::Any {
    prost_types::Any {
        type_url: format!("type.googleapis.com/itsm.cmdb.v1.{type_name}"),
        value: message.encode_to_vec(),
    }
}

/// Audit changes as the events carry them.
pub fn field_changes(changes: &[FieldChange]) -> Vec<common::FieldChange> {
    changes
        .iter()
        .map(|c| common::FieldChange {
            field: c.field.clone(),
            old_value: c.old.clone(),
            new_value: c.new.clone(),
        })
        .collect()
}

/// `model` with `class` added or replacing the class of the same name, and
/// without the class `removed`.
pub fn model_with(model: &Model, class: Option<&pb::CiClass>, removed: Option<&str>) -> Model {
    let replaced = class.and_then(|c| class_id(&c.name));
    let mut classes: Vec<pb::CiClass> = model
        .classes()
        .filter(|(id, _)| Some(*id) != replaced && Some(*id) != removed)
        .map(|(_, c)| c.clone())
        .collect();
    classes.extend(class.cloned());
    let types = model.relationship_types().map(|(_, t)| t.clone()).collect();
    Model::new(model.generation, classes, types)
}

/// Checks `parent` (the request's field `field`) as the parent of class
/// `id` in `model`: an existing class, not `id` nor one of its subclasses.
/// Returns whether it passed: a model must never be built with a parent
/// that failed (a cycle of parents has no root).
pub fn check_parent(
    model: &Model,
    id: &str,
    parent: &str,
    field: &str,
    v: &mut Violations,
) -> bool {
    let problem = match class_id(parent) {
        None if parent.is_empty() => {
            "is required: the parent class, e.g. \"classes/configuration_item\"".to_owned()
        }
        None => format!("\"{parent}\" is not a class name; expected \"classes/<id>\""),
        Some(p) if model.class(p).is_none() => format!("\"{parent}\" is not an existing class"),
        Some(p) if model.descendants(id).contains(&p) => format!(
            "\"{parent}\" is \"classes/{id}\" or one of its subclasses: a class cannot \
             descend from itself"
        ),
        Some(_) => return true,
    };
    v.add(field, problem);
    false
}

/// Checks the definition of class `id` as it would stand in `after` (the
/// model with the class in place): display name, every attribute (key
/// valid and unique along the ancestry and among the subclasses, type,
/// enum values, reference class, length, default) and every identification
/// rule (naming attributes in force or display_name/location). Violations
/// are named under `prefix` ("ci_class").
pub fn check_class(after: &Model, id: &str, class: &pb::CiClass, prefix: &str, v: &mut Violations) {
    let display_name = class.display_name.trim();
    if display_name.is_empty() {
        v.add(format!("{prefix}.display_name"), "is required");
    } else if display_name.chars().count() > MAX_DISPLAY_NAME {
        v.add(
            format!("{prefix}.display_name"),
            format!("must be at most {MAX_DISPLAY_NAME} characters"),
        );
    }
    let inherited: Vec<(String, String)> = after
        .ancestors(id)
        .into_iter()
        .filter_map(|a| after.class(a).map(|c| (a, c)))
        .flat_map(|(a, c)| {
            c.attributes
                .iter()
                .map(move |d| (d.key.clone(), a.to_owned()))
        })
        .collect();
    let below: Vec<(String, String)> = after
        .descendants(id)
        .into_iter()
        .skip(1)
        .filter_map(|d| after.class(d).map(|c| (d, c)))
        .flat_map(|(d, c)| {
            c.attributes
                .iter()
                .map(move |a| (a.key.clone(), d.to_owned()))
        })
        .collect();
    let mut seen = HashSet::new();
    for (i, definition) in class.attributes.iter().enumerate() {
        let field = format!("{prefix}.attributes[{i}]");
        check_key(definition, &field, &inherited, &below, &mut seen, v);
        check_attribute(after, definition, &field, v);
    }
    let in_force: HashSet<&str> = inherited
        .iter()
        .map(|(k, _)| k.as_str())
        .chain(class.attributes.iter().map(|a| a.key.as_str()))
        .chain(RULE_CORE_FIELDS.iter().copied())
        .collect();
    for (i, rule) in class.identification_rules.iter().enumerate() {
        let field = format!("{prefix}.identification_rules[{i}]");
        check_rule(rule, &field, &in_force, v);
    }
}

fn check_key(
    definition: &pb::AttributeDefinition,
    field: &str,
    inherited: &[(String, String)],
    below: &[(String, String)],
    seen: &mut HashSet<String>,
    v: &mut Violations,
) {
    let key = definition.key.as_str();
    let field = format!("{field}.key");
    if key.is_empty() {
        v.add(field, "is required");
    } else if !model::is_valid_id(key) {
        v.add(
            field,
            format!(
                "\"{key}\" is not a valid key: lower_snake_case, starting with a letter, at most \
                 63 characters"
            ),
        );
    } else if CORE_FIELDS.contains(&key) {
        v.add(
            field,
            format!("\"{key}\" is a core CI field; choose another key"),
        );
    } else if !seen.insert(key.to_owned()) {
        v.add(field, format!("\"{key}\" is declared twice"));
    } else if let Some((_, owner)) = inherited.iter().find(|(k, _)| k == key) {
        v.add(
            field,
            format!("\"{key}\" is already declared by the ancestor \"classes/{owner}\""),
        );
    } else if let Some((_, owner)) = below.iter().find(|(k, _)| k == key) {
        v.add(
            field,
            format!("\"{key}\" is already declared by the subclass \"classes/{owner}\""),
        );
    }
}

fn check_attribute(after: &Model, d: &pb::AttributeDefinition, field: &str, v: &mut Violations) {
    use pb::AttributeType as T;
    let kind = pb::AttributeType::try_from(d.r#type).unwrap_or_default();
    if kind == T::Unspecified {
        v.add(
            format!("{field}.type"),
            "is required: STRING, NUMBER, BOOLEAN, DATE, ENUM or REFERENCE",
        );
    }
    if d.display_name.chars().count() > MAX_DISPLAY_NAME {
        v.add(
            format!("{field}.display_name"),
            format!("must be at most {MAX_DISPLAY_NAME} characters"),
        );
    }
    if kind == T::Enum {
        if d.enum_values.is_empty() {
            v.add(
                format!("{field}.enum_values"),
                "an ENUM attribute needs its values",
            );
        }
        let mut values = HashSet::new();
        for (j, value) in d.enum_values.iter().enumerate() {
            if value.trim().is_empty() {
                v.add(format!("{field}.enum_values[{j}]"), "must not be empty");
            } else if !values.insert(value.as_str()) {
                v.add(
                    format!("{field}.enum_values[{j}]"),
                    format!("\"{value}\" is listed twice"),
                );
            }
        }
    } else if !d.enum_values.is_empty() {
        v.add(
            format!("{field}.enum_values"),
            "only ENUM attributes have enum values",
        );
    }
    if kind == T::Reference {
        match class_id(&d.reference_class) {
            _ if d.reference_class.is_empty() => v.add(
                format!("{field}.reference_class"),
                "a REFERENCE attribute needs the class its CIs must be of",
            ),
            Some(c) if after.class(c).is_some() => {}
            _ => v.add(
                format!("{field}.reference_class"),
                format!("\"{}\" is not an existing class", d.reference_class),
            ),
        }
    } else if !d.reference_class.is_empty() {
        v.add(
            format!("{field}.reference_class"),
            "only REFERENCE attributes have a reference class",
        );
    }
    if d.max_length < 0 {
        v.add(format!("{field}.max_length"), "must not be negative");
    } else if d.max_length > 0 && kind != T::String {
        v.add(
            format!("{field}.max_length"),
            "only STRING attributes have a maximum length",
        );
    }
    if kind != T::Unspecified
        && let Some(default) = &d.default_value
        && let Some(problem) = model::check_value(d, default)
    {
        v.add(format!("{field}.default_value"), problem);
    }
}

fn check_rule(
    rule: &pb::IdentificationRule,
    field: &str,
    in_force: &HashSet<&str>,
    v: &mut Violations,
) {
    if rule.attributes.is_empty() {
        v.add(
            format!("{field}.attributes"),
            "must name at least one attribute (or display_name, location)",
        );
    }
    let mut named = HashSet::new();
    for (j, key) in rule.attributes.iter().enumerate() {
        if !in_force.contains(key.as_str()) {
            v.add(
                format!("{field}.attributes[{j}]"),
                format!(
                    "\"{key}\" is neither an attribute of the class nor display_name or location"
                ),
            );
        } else if !named.insert(key.as_str()) {
            v.add(
                format!("{field}.attributes[{j}]"),
                format!("\"{key}\" is named twice"),
            );
        }
    }
}

/// A problem the change of class `id` causes in its subclasses, as they
/// would stand in `after`: a key a subclass declares that a new ancestor
/// declares too, or an identification rule naming an attribute no longer in
/// force. FAILED_PRECONDITION naming the subclass.
pub fn subtree_problem(after: &Model, id: &str) -> Option<ApiError> {
    for sub in after.descendants(id).into_iter().skip(1) {
        let Some(class) = after.class(sub) else {
            continue;
        };
        let inherited: HashSet<String> = after
            .ancestors(sub)
            .into_iter()
            .filter_map(|a| after.class(a))
            .flat_map(|c| c.attributes.iter().map(|d| d.key.clone()))
            .collect();
        if let Some(d) = class.attributes.iter().find(|d| inherited.contains(&d.key)) {
            return Some(ApiError::failed_precondition(
                "ATTRIBUTE_KEY_CONFLICT",
                format!("classes/{sub}"),
                format!(
                    "the subclass \"classes/{sub}\" declares \"{}\", which it would also inherit",
                    d.key
                ),
            ));
        }
        let in_force: HashSet<&str> = inherited
            .iter()
            .map(String::as_str)
            .chain(class.attributes.iter().map(|a| a.key.as_str()))
            .chain(RULE_CORE_FIELDS.iter().copied())
            .collect();
        for rule in &class.identification_rules {
            if let Some(key) = rule
                .attributes
                .iter()
                .find(|k| !in_force.contains(k.as_str()))
            {
                return Some(ApiError::failed_precondition(
                    "IDENTIFICATION_RULE_BROKEN",
                    format!("classes/{sub}"),
                    format!(
                        "an identification rule of the subclass \"classes/{sub}\" names \"{key}\", \
                         which would no longer be in force"
                    ),
                ));
            }
        }
    }
    None
}

/// An attribute definition as the audit trail shows it:
/// `ENUM [a, b] required` or `REFERENCE classes/location`.
pub fn describe_attribute(d: &pb::AttributeDefinition) -> String {
    let kind = pb::AttributeType::try_from(d.r#type).unwrap_or_default();
    let mut text = kind
        .as_str_name()
        .trim_start_matches("ATTRIBUTE_TYPE_")
        .to_owned();
    if !d.enum_values.is_empty() {
        text.push_str(&format!(" [{}]", d.enum_values.join(", ")));
    }
    if !d.reference_class.is_empty() {
        text.push_str(&format!(" {}", d.reference_class));
    }
    if d.required {
        text.push_str(" required");
    }
    if d.max_length > 0 {
        text.push_str(&format!(" max_length={}", d.max_length));
    }
    if let Some(default) = d.default_value.as_ref().and_then(model::value_text) {
        text.push_str(&format!(" default={default}"));
    }
    if !d.display_name.is_empty() {
        text.push_str(&format!(" \"{}\"", d.display_name));
    }
    text
}

/// Identification rules as the audit trail shows them:
/// `[serial_number] ignore_case; [host_name, dns_domain]`.
pub fn describe_rules(rules: &[pb::IdentificationRule]) -> String {
    rules
        .iter()
        .map(|r| {
            let mut text = format!("[{}]", r.attributes.join(", "));
            if r.ignore_case {
                text.push_str(" ignore_case");
            }
            if r.match_related_classes {
                text.push_str(" match_related_classes");
            }
            text
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The audit changes from class `before` to `after` (declared fields only):
/// one per core field, one per attribute added, removed or changed
/// ("attributes.<key>"), one for the identification rules.
pub fn class_changes(before: &pb::CiClass, after: &pb::CiClass) -> Vec<FieldChange> {
    let mut changes = Vec::new();
    let mut field = |name: &str, old: String, new: String| {
        if old != new {
            changes.push(FieldChange::new(name, old, new));
        }
    };
    field(
        "display_name",
        before.display_name.clone(),
        after.display_name.clone(),
    );
    field(
        "description",
        before.description.clone(),
        after.description.clone(),
    );
    field("parent", before.parent.clone(), after.parent.clone());
    field(
        "is_abstract",
        before.is_abstract.to_string(),
        after.is_abstract.to_string(),
    );
    let describe = |class: &pb::CiClass, key: &str| {
        class
            .attributes
            .iter()
            .find(|a| a.key == key)
            .map(describe_attribute)
            .unwrap_or_default()
    };
    let mut keys: Vec<&str> = before
        .attributes
        .iter()
        .chain(&after.attributes)
        .map(|a| a.key.as_str())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        field(
            &format!("attributes.{key}"),
            describe(before, key),
            describe(after, key),
        );
    }
    field(
        "identification_rules",
        describe_rules(&before.identification_rules),
        describe_rules(&after.identification_rules),
    );
    changes
}
