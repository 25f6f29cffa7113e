//! SQL text with numbered placeholders and the values to bind to them.
//!
//! Placeholders are written `$1, $2, ...`: PostgreSQL's syntax, which sqlx also
//! accepts for SQLite, so one statement text serves both backends. Values are
//! never formatted into the text.

/// A value bound to a statement: only what every backend stores the same way.
/// Timestamps are `Int` microseconds since the Unix epoch (UTC); enums are
/// `Int` (their protobuf number) or `Text`, as the resource's schema says.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
}

impl From<bool> for SqlValue {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

impl From<i64> for SqlValue {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<i32> for SqlValue {
    fn from(value: i32) -> Self {
        Self::Int(i64::from(value))
    }
}

impl From<f64> for SqlValue {
    fn from(value: f64) -> Self {
        Self::Float(value)
    }
}

impl From<String> for SqlValue {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}

impl From<&str> for SqlValue {
    fn from(value: &str) -> Self {
        Self::Text(value.to_owned())
    }
}

impl From<Vec<u8>> for SqlValue {
    fn from(value: Vec<u8>) -> Self {
        Self::Bytes(value)
    }
}

impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(value: Option<T>) -> Self {
        value.map_or(Self::Null, Into::into)
    }
}

/// Builds one statement: SQL text pushed in pieces, values bound as `$N`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SqlBuilder {
    sql: String,
    params: Vec<SqlValue>,
}

impl SqlBuilder {
    /// Starts a statement with this text.
    pub fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            params: Vec::new(),
        }
    }

    /// Appends SQL text. Never pass values here: bind them with [`SqlBuilder::push_bind`].
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends a placeholder for `value` and records the value.
    pub fn push_bind(&mut self, value: impl Into<SqlValue>) -> &mut Self {
        self.params.push(value.into());
        self.sql.push('$');
        self.sql.push_str(&self.params.len().to_string());
        self
    }

    /// Appends `(v1, v2, ...)` with one placeholder per value; `(NULL)` when empty,
    /// so `x IN (NULL)` matches nothing instead of being a syntax error.
    pub fn push_bind_list<V: Into<SqlValue>>(
        &mut self,
        values: impl IntoIterator<Item = V>,
    ) -> &mut Self {
        self.sql.push('(');
        let mut any = false;
        for value in values {
            if any {
                self.sql.push_str(", ");
            }
            self.push_bind(value);
            any = true;
        }
        if !any {
            self.sql.push_str("NULL");
        }
        self.sql.push(')');
        self
    }

    /// Appends another builder's text and values, renumbering its
    /// placeholders to follow this one's: how separately built parts (a
    /// filter, a caller's conditions) join one statement.
    pub fn append(&mut self, part: &SqlBuilder) -> &mut Self {
        let mut rest = part.sql.as_str();
        while let Some(dollar) = rest.find('$') {
            self.sql.push_str(&rest[..dollar]);
            let after = &rest[dollar + 1..];
            let digits = after
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after.len());
            let value = after[..digits]
                .parse::<usize>()
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|i| part.params.get(i));
            match value {
                Some(value) => {
                    self.push_bind(value.clone());
                }
                // A `$` that is not one of the part's placeholders stays as written.
                None => {
                    self.sql.push('$');
                    self.sql.push_str(&after[..digits]);
                }
            }
            rest = &after[digits..];
        }
        self.sql.push_str(rest);
        self
    }

    /// The statement text.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The values, in placeholder order.
    pub fn params(&self) -> &[SqlValue] {
        &self.params
    }

    /// Both, to execute.
    pub fn into_parts(self) -> (String, Vec<SqlValue>) {
        (self.sql, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_are_numbered_in_order_and_never_inlined() {
        let mut sql = SqlBuilder::new("SELECT id FROM t WHERE a = ");
        sql.push_bind("x'; DROP TABLE t; --")
            .push(" AND b IN ")
            .push_bind_list([1_i64, 2])
            .push(" AND c IN ")
            .push_bind_list(Vec::<i64>::new());
        assert_eq!(
            sql.sql(),
            "SELECT id FROM t WHERE a = $1 AND b IN ($2, $3) AND c IN (NULL)"
        );
        assert_eq!(
            sql.params(),
            [
                SqlValue::Text("x'; DROP TABLE t; --".into()),
                SqlValue::Int(1),
                SqlValue::Int(2)
            ]
        );
    }

    #[test]
    fn appended_parts_are_renumbered_after_existing_placeholders() {
        let mut sql = SqlBuilder::new("a = ");
        sql.push_bind(1_i64).push(" AND ");
        let mut part = SqlBuilder::new("(b = ");
        part.push_bind("x")
            .push(" OR c = ")
            .push_bind(2_i64)
            .push(")");
        for _ in 0..10 {
            part.push(" OR d = ").push_bind(0_i64);
        }
        sql.append(&part);
        assert!(
            sql.sql()
                .starts_with("a = $1 AND (b = $2 OR c = $3) OR d = $4")
        );
        assert!(sql.sql().ends_with("d = $13"), "{}", sql.sql());
        assert_eq!(sql.params().len(), 13);
        assert_eq!(sql.params()[1], SqlValue::Text("x".into()));
    }

    #[test]
    fn options_bind_null() {
        let mut sql = SqlBuilder::default();
        sql.push_bind(None::<i64>).push_bind(Some("a"));
        assert_eq!(sql.params(), [SqlValue::Null, SqlValue::Text("a".into())]);
    }
}
