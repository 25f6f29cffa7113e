//! The parsed filter, and its canonical text.
//!
//! Equality ignores positions: two expressions are equal when they are the
//! same filter, wherever in the text their parts were written. That is what
//! makes "print, re-parse, compare" a meaningful round trip.

use std::fmt;

/// A parsed filter.
///
/// The parser builds canonical trees: `And` and `Or` have at least two
/// operands and never directly contain an operand of their own kind (`a AND
/// (b AND c)` is flattened into one `And`), so equal filters compare equal.
/// Only such trees are guaranteed to print as text that parses back to them.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// All of the operands hold: `a AND b`, or `a b` (juxtaposition).
    And(Vec<Expr>),
    /// Any of the operands holds: `a OR b`.
    Or(Vec<Expr>),
    /// The operand does not hold: `NOT a` or `-a`.
    Not(Box<Expr>),
    /// One restriction: `field OP value`.
    Compare(Comparison),
}

/// One restriction, `field OP value`, with where each part was written.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// The field name as written; checked against a [`crate::Schema`] on compile.
    pub field: String,
    pub op: Op,
    pub value: Value,
    /// 0-based character offsets of the field, operator and value, for errors.
    pub field_pos: usize,
    pub op_pos: usize,
    pub value_pos: usize,
}

impl Comparison {
    /// A comparison with no positions (all 0), for building filters in code.
    pub fn new(field: impl Into<String>, op: Op, value: Value) -> Self {
        Self {
            field: field.into(),
            op,
            value,
            field_pos: 0,
            op_pos: 0,
            value_pos: 0,
        }
    }
}

impl PartialEq for Comparison {
    fn eq(&self, other: &Self) -> bool {
        // Positions deliberately left out: see the module docs.
        self.field == other.field && self.op == other.op && self.value == other.value
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `:` (has): contains for text, equality otherwise, presence with `*`.
    Has,
}

impl Op {
    /// The operator as written in a filter.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Has => ":",
        }
    }

    /// Whether this operator orders values (`<`, `<=`, `>`, `>=`).
    pub fn is_ordering(self) -> bool {
        matches!(self, Self::Lt | Self::Le | Self::Gt | Self::Ge)
    }
}

/// A literal, as written. Its meaning (an enum number, a timestamp) depends on
/// the field it is compared with, so it is only interpreted on compile.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A quoted string, escapes resolved: `"disk full"`, `'it\'s'`.
    String(String),
    /// An integer without `.` or exponent: `3`, `-12`.
    Int(i64),
    /// A number with `.` or exponent: `1.5`, `2e3`. Always finite.
    Float(f64),
    /// `true` or `false` (lower case).
    Bool(bool),
    /// A bare identifier such as an enum value: `IN_PROGRESS`. Never a
    /// keyword (`AND`, `OR`, `NOT`) nor `true`/`false`.
    Name(String),
    /// `*`, only after `:`: the field is set.
    Any,
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::And(operands) => write_joined(f, operands, " AND "),
            Self::Or(operands) => write_joined(f, operands, " OR "),
            // NOT takes one term: a comparison or a parenthesized expression.
            Self::Not(operand) => match operand.as_ref() {
                Self::Compare(comparison) => write!(f, "NOT {comparison}"),
                _ => write!(f, "NOT ({operand})"),
            },
            Self::Compare(comparison) => comparison.fmt(f),
        }
    }
}

fn write_joined(f: &mut fmt::Formatter<'_>, operands: &[Expr], separator: &str) -> fmt::Result {
    for (i, operand) in operands.iter().enumerate() {
        if i > 0 {
            f.write_str(separator)?;
        }
        write_operand(f, operand)?;
    }
    Ok(())
}

/// Writes an operand of AND or OR. Nested AND and OR go in parentheses even
/// where precedence would not need them (`a AND (b OR c)`): AIP-160's OR
/// binding tighter than AND surprises readers, and parentheses cost nothing.
fn write_operand(f: &mut fmt::Formatter<'_>, operand: &Expr) -> fmt::Result {
    match operand {
        Expr::Compare(_) | Expr::Not(_) => write!(f, "{operand}"),
        Expr::And(_) | Expr::Or(_) => write!(f, "({operand})"),
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.op {
            Op::Has => write!(f, "{}:{}", self.field, self.value),
            op => write!(f, "{} {} {}", self.field, op, self.value),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String(text) => write_quoted(f, text),
            Self::Int(n) => write!(f, "{n}"),
            // Debug keeps a `.` or an exponent (`1.0`, `1e21`), so the text
            // parses back as a float rather than an integer.
            Self::Float(x) => write!(f, "{x:?}"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Name(name) => f.write_str(name),
            Self::Any => f.write_str("*"),
        }
    }
}

/// Double-quotes `text`, escaping what the lexer would otherwise end or
/// misread the string at.
fn write_quoted(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in text.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(field: &str, op: Op, value: Value) -> Expr {
        Expr::Compare(Comparison::new(field, op, value))
    }

    #[test]
    fn prints_canonical_text_with_composites_parenthesized() {
        let expr = Expr::And(vec![
            cmp("state", Op::Eq, Value::Name("NEW".into())),
            Expr::Or(vec![
                cmp("title", Op::Has, Value::String("say \"hi\"\\\n".into())),
                Expr::Not(Box::new(cmp("major", Op::Has, Value::Any))),
            ]),
            Expr::Not(Box::new(Expr::Or(vec![
                cmp("reopen_count", Op::Ge, Value::Int(-2)),
                cmp("score", Op::Lt, Value::Float(1.0)),
            ]))),
        ]);
        assert_eq!(
            expr.to_string(),
            r#"state = NEW AND (title:"say \"hi\"\\\n" OR NOT major:*) AND NOT (reopen_count >= -2 OR score < 1.0)"#
        );
    }

    #[test]
    fn equality_ignores_positions() {
        let mut a = Comparison::new("title", Op::Eq, Value::Bool(true));
        let b = a.clone();
        a.field_pos = 7;
        assert_eq!(a, b);
        assert_ne!(a, Comparison::new("title", Op::Ne, Value::Bool(true)));
    }
}
