//! The class model and relationship types, in memory: inheritance, the
//! attributes and identification rules in force for a class, and the
//! validation of a CI's attributes against its class.
//!
//! Every call that needs the model reads it through [`ModelCache`]: one
//! cheap query for the model's generation (bumped in the transaction of
//! every class or relationship type change, see [`bump_generation`]) and a
//! reload only when it moved, so every replica sees a change at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use itsm_platform::{ApiError, Violations};
use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::{Db, StoreError};
use sqlx::AnyConnection;
use tokio::sync::RwLock;

use crate::store;

/// The root class every class descends from.
pub const ROOT_CLASS: &str = "configuration_item";
/// The class whose CIs (and subclasses') are business services.
pub const BUSINESS_SERVICE: &str = "business_service";
/// The class a CI's `location` must be of (or a subclass).
pub const LOCATION_CLASS: &str = "location";
/// The longest string attribute value when the definition sets no limit.
pub const MAX_STRING_CHARS: usize = 4_000;

/// The name of the singleton row holding the model generation.
const GENERATION: &str = "model_generation";

/// The class model at one generation. Immutable; replaced as a whole.
#[derive(Debug, Default)]
pub struct Model {
    pub generation: i64,
    /// Classes as stored (declared attributes and rules only), by id.
    classes: HashMap<String, pb::CiClass>,
    /// Relationship types by id ("depends_on").
    relationship_types: HashMap<String, pb::RelationshipType>,
    /// Subclass ids by parent id.
    children: HashMap<String, Vec<String>>,
}

/// The id of a class name: "classes/linux_server" -> "linux_server".
pub fn class_id(name: &str) -> Option<&str> {
    name.strip_prefix("classes/").filter(|id| !id.is_empty())
}

/// The id of a relationship type name: "relationshipTypes/depends_on" -> "depends_on".
pub fn relationship_type_id(name: &str) -> Option<&str> {
    name.strip_prefix("relationshipTypes/")
        .filter(|id| !id.is_empty())
}

/// Whether `id` is a valid class, relationship type or source id:
/// lower_snake_case, starting with a letter, at most 63 characters.
pub fn is_valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some('a'..='z'))
        && id.len() <= 63
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

impl Model {
    /// A model of these classes and relationship types (as stored: `name` set,
    /// declared attributes only).
    pub fn new(
        generation: i64,
        classes: Vec<pb::CiClass>,
        relationship_types: Vec<pb::RelationshipType>,
    ) -> Self {
        let mut children: HashMap<String, Vec<String>> = HashMap::new();
        let classes: HashMap<String, pb::CiClass> = classes
            .into_iter()
            .filter_map(|c| Some((class_id(&c.name)?.to_owned(), c)))
            .collect();
        for (id, class) in &classes {
            if let Some(parent) = class_id(&class.parent) {
                children
                    .entry(parent.to_owned())
                    .or_default()
                    .push(id.clone());
            }
        }
        for list in children.values_mut() {
            list.sort();
        }
        let relationship_types = relationship_types
            .into_iter()
            .filter_map(|t| Some((relationship_type_id(&t.name)?.to_owned(), t)))
            .collect();
        Self {
            generation,
            classes,
            relationship_types,
            children,
        }
    }

    /// The class `id` ("linux_server") as stored.
    pub fn class(&self, id: &str) -> Option<&pb::CiClass> {
        self.classes.get(id)
    }

    /// Every class, by id.
    pub fn classes(&self) -> impl Iterator<Item = (&str, &pb::CiClass)> {
        self.classes.iter().map(|(id, c)| (id.as_str(), c))
    }

    /// The ancestors of `id`, root first, without `id` itself. Stops at an
    /// unknown parent (and at a cycle, which the class writes never allow).
    pub fn ancestors(&self, id: &str) -> Vec<&str> {
        let mut chain = Vec::new();
        let mut current = self.classes.get(id);
        while let Some(class) = current {
            let Some(parent) = class_id(&class.parent) else {
                break;
            };
            if chain.contains(&parent) || parent == id || chain.len() > 64 {
                break;
            }
            chain.push(parent);
            current = self.classes.get(parent);
        }
        chain.reverse();
        chain
    }

    /// Whether `id` is `ancestor` or one of its subclasses.
    pub fn is_a(&self, id: &str, ancestor: &str) -> bool {
        id == ancestor || self.ancestors(id).contains(&ancestor)
    }

    /// `id` and all its subclasses, `id` first then depth-first by id.
    pub fn descendants<'a>(&'a self, id: &'a str) -> Vec<&'a str> {
        let mut out = vec![id];
        let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::from([id]);
        let mut next = 0;
        while next < out.len() {
            if let Some(children) = self.children.get(out[next]) {
                // A parent cycle is never stored; the guard keeps a bad row from looping.
                for child in children {
                    if seen.insert(child.as_str()) {
                        out.push(child.as_str());
                    }
                }
            }
            next += 1;
        }
        out
    }

    /// Direct subclasses of `id`.
    pub fn children(&self, id: &str) -> &[String] {
        self.children.get(id).map(Vec::as_slice).unwrap_or_default()
    }

    /// The attributes in force for `id`: inherited then declared, root first,
    /// each with `defined_in` set.
    pub fn effective_attributes(&self, id: &str) -> Vec<pb::AttributeDefinition> {
        let mut chain = self.ancestors(id);
        chain.push(id);
        let mut out = Vec::new();
        for class_id in chain {
            if let Some(class) = self.classes.get(class_id) {
                for attribute in &class.attributes {
                    let mut attribute = attribute.clone();
                    attribute.defined_in = format!("classes/{class_id}");
                    out.push(attribute);
                }
            }
        }
        out
    }

    /// The attribute `key` in force for class `id`.
    pub fn attribute(&self, id: &str, key: &str) -> Option<pb::AttributeDefinition> {
        self.effective_attributes(id)
            .into_iter()
            .find(|a| a.key == key)
    }

    /// The identification rules in force for `id`: its own, or the nearest
    /// ancestor's that has some.
    pub fn identification_rules(&self, id: &str) -> Vec<pb::IdentificationRule> {
        let mut chain = self.ancestors(id);
        chain.push(id);
        chain
            .iter()
            .rev()
            .filter_map(|c| self.classes.get(*c))
            .find(|c| !c.identification_rules.is_empty())
            .map(|c| c.identification_rules.clone())
            .unwrap_or_default()
    }

    /// The class `id` as the API shows it: with effective attributes and
    /// rules and its ancestors.
    pub fn effective_class(&self, id: &str) -> Option<pb::CiClass> {
        let mut class = self.classes.get(id)?.clone();
        for attribute in &mut class.attributes {
            attribute.defined_in = format!("classes/{id}");
        }
        class.effective_attributes = self.effective_attributes(id);
        class.effective_identification_rules = self.identification_rules(id);
        class.ancestors = self
            .ancestors(id)
            .into_iter()
            .map(|a| format!("classes/{a}"))
            .collect();
        Some(class)
    }

    /// The relationship type `id` ("depends_on").
    pub fn relationship_type(&self, id: &str) -> Option<&pb::RelationshipType> {
        self.relationship_types.get(id)
    }

    /// Every relationship type, by id.
    pub fn relationship_types(&self) -> impl Iterator<Item = (&str, &pb::RelationshipType)> {
        self.relationship_types
            .iter()
            .map(|(id, t)| (id.as_str(), t))
    }

    /// Checks the class of a CI: known, not abstract. Records a violation of
    /// `field` otherwise.
    pub fn check_ci_class(&self, name: &str, field: &str, violations: &mut Violations) {
        match class_id(name).and_then(|id| self.classes.get(id)) {
            None => violations.add(
                field,
                format!(
                    "\"{name}\" is not a class; expected \"classes/<id>\" of an existing class"
                ),
            ),
            Some(class) if class.is_abstract => violations.add(
                field,
                format!("\"{name}\" is abstract: choose one of its subclasses"),
            ),
            Some(_) => {}
        }
    }

    /// Checks `attributes` against the attributes in force for class `id`:
    /// every key known, every value of the attribute's type (enum among its
    /// values, string within its length, reference shaped "cis/<uuid>").
    /// Violations name `"{prefix}.{key}"`, e.g. `ci.attributes.cpu_count`.
    /// Required attributes and whether references exist are checked elsewhere
    /// ([`Model::missing_required`]; references need the database).
    pub fn check_attributes(
        &self,
        id: &str,
        attributes: &BTreeMap<String, pb::AttributeValue>,
        prefix: &str,
        violations: &mut Violations,
    ) {
        let definitions: BTreeMap<String, pb::AttributeDefinition> = self
            .effective_attributes(id)
            .into_iter()
            .map(|a| (a.key.clone(), a))
            .collect();
        let mut keys: Vec<&String> = attributes.keys().collect();
        keys.sort();
        for key in keys {
            let field = format!("{prefix}.{key}");
            let Some(definition) = definitions.get(key) else {
                violations.add(
                    field,
                    format!("class \"classes/{id}\" has no attribute \"{key}\""),
                );
                continue;
            };
            if let Some(problem) = check_value(definition, &attributes[key]) {
                violations.add(field, problem);
            }
        }
    }

    /// The required attributes of class `id` that `attributes` has no value for.
    pub fn missing_required(
        &self,
        id: &str,
        attributes: &BTreeMap<String, pb::AttributeValue>,
    ) -> Vec<String> {
        self.effective_attributes(id)
            .into_iter()
            .filter(|a| a.required)
            .filter(|a| attributes.get(&a.key).is_none_or(|v| v.value.is_none()))
            .map(|a| a.key)
            .collect()
    }
}

/// Why `value` does not fit `definition`, or `None` when it does. An unset
/// value (no case) always fits: it means "no value".
pub fn check_value(
    definition: &pb::AttributeDefinition,
    value: &pb::AttributeValue,
) -> Option<String> {
    use pb::attribute_value::Value;
    let expected = pb::AttributeType::try_from(definition.r#type).unwrap_or_default();
    let value = value.value.as_ref()?;
    let fits = matches!(
        (expected, value),
        (pb::AttributeType::String, Value::StringValue(_))
            | (pb::AttributeType::Number, Value::NumberValue(_))
            | (pb::AttributeType::Boolean, Value::BoolValue(_))
            | (pb::AttributeType::Date, Value::DateValue(_))
            | (pb::AttributeType::Enum, Value::EnumValue(_))
            | (pb::AttributeType::Reference, Value::ReferenceValue(_))
    );
    if !fits {
        return Some(format!(
            "expected a {} value ({}), got {}",
            type_word(expected),
            expected.as_str_name(),
            value_word(value)
        ));
    }
    match value {
        Value::StringValue(s) => {
            let limit = usize::try_from(definition.max_length)
                .ok()
                .filter(|l| *l > 0)
                .unwrap_or(MAX_STRING_CHARS);
            let count = s.chars().count();
            (count > limit).then(|| format!("{count} characters long; the limit is {limit}"))
        }
        Value::NumberValue(n) => (!n.is_finite()).then(|| "must be a finite number".to_owned()),
        Value::DateValue(d) => (!is_valid_date(d))
            .then(|| format!("{}-{}-{} is not a calendar date", d.year, d.month, d.day)),
        Value::EnumValue(e) => (!definition.enum_values.contains(e)).then(|| {
            format!(
                "\"{e}\" is not one of {}",
                definition
                    .enum_values
                    .iter()
                    .map(|v| format!("\"{v}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }),
        Value::ReferenceValue(r) => (crate::ci_uid(r).is_none())
            .then(|| format!("\"{r}\" is not a CI name; expected \"cis/<uuid>\"")),
        Value::BoolValue(_) => None,
    }
}

fn type_word(t: pb::AttributeType) -> &'static str {
    match t {
        pb::AttributeType::Unspecified => "typed",
        pb::AttributeType::String => "string",
        pb::AttributeType::Number => "number",
        pb::AttributeType::Boolean => "boolean",
        pb::AttributeType::Date => "date",
        pb::AttributeType::Enum => "enum",
        pb::AttributeType::Reference => "reference",
    }
}

fn value_word(value: &pb::attribute_value::Value) -> &'static str {
    use pb::attribute_value::Value;
    match value {
        Value::StringValue(_) => "a string",
        Value::NumberValue(_) => "a number",
        Value::BoolValue(_) => "a boolean",
        Value::DateValue(_) => "a date",
        Value::EnumValue(_) => "an enum value",
        Value::ReferenceValue(_) => "a reference",
    }
}

/// Whether `d` is a real calendar date in years 1..=9999.
pub fn is_valid_date(d: &itsm_proto::itsm::common::v1::Date) -> bool {
    let Ok(month) = u8::try_from(d.month)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .ok_or(())
    else {
        return false;
    };
    (1..=9999).contains(&d.year)
        && u8::try_from(d.day)
            .ok()
            .is_some_and(|day| time::Date::from_calendar_date(d.year, month, day).is_ok())
}

/// A value as text, the way `ci_attributes.text_value` stores it and history
/// shows it: numbers in their shortest form, booleans "true"/"false", dates
/// "YYYY-MM-DD", references "cis/<uuid>". `None` for no value.
pub fn value_text(value: &pb::AttributeValue) -> Option<String> {
    use pb::attribute_value::Value;
    Some(match value.value.as_ref()? {
        Value::StringValue(s) | Value::EnumValue(s) | Value::ReferenceValue(s) => s.clone(),
        Value::NumberValue(n) => n.to_string(),
        Value::BoolValue(b) => b.to_string(),
        Value::DateValue(d) => format!("{:04}-{:02}-{:02}", d.year, d.month, d.day),
    })
}

/// How identification and `ignore_case` compare text: trimmed, lower-cased.
pub fn normalize(text: &str) -> String {
    text.trim().to_lowercase()
}

/// The number a value holds, for numeric filters.
pub fn value_number(value: &pb::AttributeValue) -> Option<f64> {
    match value.value.as_ref()? {
        pb::attribute_value::Value::NumberValue(n) => Some(*n),
        _ => None,
    }
}

/// The model as last loaded, and the generation it was loaded at.
#[derive(Debug, Default)]
pub struct ModelCache {
    current: RwLock<Option<Arc<Model>>>,
    seeded: tokio::sync::OnceCell<()>,
}

impl ModelCache {
    /// The model in force: seeds the default model into an empty database
    /// (once per process; idempotent across replicas), then reloads when the
    /// stored generation differs from the loaded one.
    pub async fn current(&self, db: &Db) -> Result<Arc<Model>, ApiError> {
        self.seeded
            .get_or_try_init(|| async { crate::seed::ensure(db).await })
            .await?;
        let mut conn = db.pool().acquire().await.map_err(StoreError::from)?;
        let generation = generation(&mut conn).await?;
        if let Some(model) = self.current.read().await.as_ref()
            && model.generation == generation
        {
            return Ok(Arc::clone(model));
        }
        let model = Arc::new(load(&mut conn, generation).await?);
        *self.current.write().await = Some(Arc::clone(&model));
        Ok(model)
    }

    /// Forgets the loaded model (after a local change, before the next read).
    pub async fn invalidate(&self) {
        *self.current.write().await = None;
    }
}

/// Reads the whole model at `generation`.
pub async fn load(conn: &mut AnyConnection, generation: i64) -> Result<Model, StoreError> {
    let classes = store::classes::select_all(&mut *conn).await?;
    let types = store::relationship_types::select_all(&mut *conn).await?;
    Ok(Model::new(generation, classes, types))
}

/// The stored model generation (0 before the first change).
pub async fn generation(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    let value = sqlx::query_scalar::<_, i64>("SELECT version FROM cmdb_singletons WHERE name = $1")
        .bind(GENERATION)
        .fetch_optional(conn)
        .await?;
    Ok(value.unwrap_or(0))
}

/// Moves the model generation on, in the transaction of a class or
/// relationship type change: every replica reloads on its next call.
pub async fn bump_generation(conn: &mut AnyConnection, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO cmdb_singletons (name, version, updated_at, doc) VALUES ($1, 1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET version = cmdb_singletons.version + 1, updated_at = $2",
    )
    .bind(GENERATION)
    .bind(now)
    .bind(Vec::<u8>::new())
    .execute(conn)
    .await?;
    Ok(())
}
