//! The per-resource whitelist a filter or order_by is checked against: which
//! names a caller may use, the column each one reads, and what type it is.
//!
//! Schemas are `static` tables written by each service beside its storage
//! code, so column names reach SQL only from our own source, never from input.

/// What a field holds, which decides the literals and operators it accepts.
///
/// Every column a schema names is NOT NULL: text defaults to `''`, numbers,
/// timestamps and enums to `0`, booleans to false.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A string column; `:` is a case-insensitive "contains".
    Text,
    /// A 64-bit integer column.
    Int,
    /// A floating-point column; accepts integer literals too.
    Float,
    /// A boolean column; only `=`, `!=` and `:` apply.
    Bool,
    /// BIGINT microseconds since the Unix epoch (UTC); filters write RFC 3339.
    Timestamp,
    /// An INTEGER column holding an enum's number. The list names the values
    /// a filter may use (case-sensitively) with their numbers; `<` and `>`
    /// compare the numbers.
    Enum(&'static [(&'static str, i64)]),
}

/// One field a resource exposes to `filter` and `order_by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// The name callers write, as in the API (`create_time`).
    pub name: &'static str,
    /// The SQL column (or expression) it reads. Trusted: written into SQL as is.
    pub column: &'static str,
    pub kind: FieldKind,
    /// Whether `order_by` may name it (it should be indexed).
    pub sortable: bool,
}

/// The fields of one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schema {
    /// The resource's name, for messages (`incident`).
    pub resource: &'static str,
    pub fields: &'static [Field],
}

impl Schema {
    /// The field callers call `name` (exact, case-sensitive match).
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|field| field.name == name)
    }

    /// Every field name, comma-separated, for "unknown field" messages.
    pub(crate) fn field_names(&self) -> String {
        join_names(self.fields.iter())
    }

    /// Every sortable field name, comma-separated.
    pub(crate) fn sortable_names(&self) -> String {
        join_names(self.fields.iter().filter(|field| field.sortable))
    }
}

fn join_names<'a>(fields: impl Iterator<Item = &'a Field>) -> String {
    fields
        .map(|field| field.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[Field] = &[
        Field {
            name: "title",
            column: "title",
            kind: FieldKind::Text,
            sortable: false,
        },
        Field {
            name: "create_time",
            column: "created_at",
            kind: FieldKind::Timestamp,
            sortable: true,
        },
    ];
    const SCHEMA: Schema = Schema {
        resource: "incident",
        fields: FIELDS,
    };

    #[test]
    fn fields_are_found_by_exact_name() {
        assert_eq!(
            SCHEMA.field("create_time").map(|f| f.column),
            Some("created_at")
        );
        assert!(SCHEMA.field("Create_Time").is_none());
        assert!(
            SCHEMA.field("created_at").is_none(),
            "columns are not names"
        );
        assert_eq!(SCHEMA.field_names(), "title, create_time");
        assert_eq!(SCHEMA.sortable_names(), "create_time");
    }
}
