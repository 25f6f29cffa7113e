//! The `filter` language of every List method: a subset of
//! [AIP-160](https://google.aip.dev/160).
//!
//! # Comparisons
//!
//! A filter is made of comparisons, `field OPERATOR value`:
//!
//! | operator | meaning |
//! |---|---|
//! | `=`, `!=` | equal, not equal |
//! | `<`, `<=`, `>`, `>=` | ordered comparison (not on booleans) |
//! | `:` | "has": on text, contains, ignoring case; on anything else, equal |
//! | `:*` | the field is set (see below) |
//!
//! Only the fields a resource lists can be named, and each takes literals of
//! its kind:
//!
//! | kind | literals | example |
//! |---|---|---|
//! | text | a quoted string, or a bare word | `title:"disk full"`, `assignment_group = network` |
//! | integer | a whole number | `reopen_count >= 2` |
//! | number | a number | `score < 0.5`, `score > 1` |
//! | boolean | `true` or `false` | `major = true` |
//! | timestamp | an RFC 3339 timestamp in quotes | `create_time > "2026-01-01T00:00:00Z"` |
//! | enum | one of the value names, bare or quoted | `state = IN_PROGRESS`, `priority <= HIGH` |
//!
//! - Text `=` is exact and case-sensitive; `<`, `>` order text the way the
//!   database collates it. Text `:` is a case-insensitive "contains", with
//!   `%`, `_` and `\` matching themselves: `title:"50%"`. (Case folding of
//!   letters beyond ASCII is done by the database: PostgreSQL folds them,
//!   SQLite folds only ASCII.)
//! - Enum values are named as the API's enum value names, without the type
//!   prefix and case-sensitively (`HIGH`, not `high`). The full protobuf name
//!   is accepted too when its prefix ends with the field name, upper-cased:
//!   `priority = PRIORITY_HIGH`, `state = INCIDENT_STATE_NEW`. `<` and `>`
//!   compare the enum numbers: for `priority`, where CRITICAL is 1 and LOW 4,
//!   `priority <= HIGH` means "HIGH or more urgent".
//! - Timestamps may carry any offset (`"2026-01-01T09:00:00+02:00"`); they
//!   compare as instants, to the microsecond.
//! - `field:*` is true when the field is set, in protobuf's sense: text not
//!   empty, a number, timestamp or enum not zero (`0`, the epoch,
//!   `..._UNSPECIFIED`), a boolean true. `*` is accepted only after `:`; a
//!   `*` inside a quoted string is an ordinary character.
//!
//! # Combining
//!
//! - `a AND b`, or simply `a b`: both hold.
//! - `a OR b`: either holds.
//! - `NOT a`, or `-a`: `a` does not hold.
//! - Parentheses group: `(a OR b) AND c`.
//!
//! Precedence is AIP-160's, which is **not** the usual one: `NOT` binds
//! tightest, then `OR`, then `AND`. So `a AND b OR c` means `a AND (b OR c)`,
//! and `NOT a OR b` means `(NOT a) OR b`. Write parentheses when in doubt.
//! Keywords are upper case: `and` is a word, not an operator.
//!
//! # Literals
//!
//! - Strings: `"..."` or `'...'`, with the escapes `\\`, `\"`, `\'`, `\n`,
//!   `\r`, `\t`.
//! - Numbers: `42`, `-7`, `1.5`, `2.5e-3`; an integer has no `.` and no
//!   exponent and fits in 64 bits.
//! - Booleans: `true`, `false`.
//! - Bare words: letters, digits, `_` and `.`, starting with a letter or `_`
//!   (`IN_PROGRESS`, `network`).
//!
//! # Grammar
//!
//! ```text
//! filter      = [ expression ]
//! expression  = sequence { "AND" sequence }
//! sequence    = factor { factor }
//! factor      = term { "OR" term }
//! term        = [ "NOT" | "-" ] simple
//! simple      = "(" expression ")" | comparison
//! comparison  = FIELD ( "=" | "!=" | "<" | "<=" | ">" | ">=" | ":" ) value
//! value       = STRING | NUMBER | "true" | "false" | WORD | "*"   ("*" after ":" only)
//! ```
//!
//! A value on its own (`"disk"`, AIP-160's global search) is refused: name
//! the field, e.g. `title:"disk"`. Functions and `a.b` traversal are not
//! supported. An empty filter matches everything.
//!
//! # Limits
//!
//! At most 2,000 characters, parentheses nested at most 32 deep, at most 100
//! comparisons. Errors give the 0-based character position at fault:
//! `at position 8: expected a value after '=', found end of input`.
//!
//! # Examples
//!
//! ```text
//! state = IN_PROGRESS AND priority <= HIGH
//! title:"vpn" OR title:"remote access"
//! assignment_group = "service-desk" -state = CLOSED
//! create_time >= "2026-01-01T00:00:00Z" create_time < "2026-02-01T00:00:00Z"
//! major = true AND NOT (state = RESOLVED OR state = CLOSED)
//! resolution_notes:*
//! ```

mod ast;
mod compile;
mod eval;
mod lex;
mod literal;
mod parse;

pub use ast::{Comparison, Expr, Op, Value};
pub use eval::{Record, RecordValue};

use crate::error::QueryError;
use crate::schema::Schema;
use crate::sql::SqlBuilder;

/// The longest `filter` (and `order_by`) accepted, in characters.
pub const MAX_INPUT_CHARS: usize = 2_000;
/// How deep parentheses may nest.
pub const MAX_DEPTH: usize = 32;
/// How many comparisons one filter may hold.
pub const MAX_COMPARISONS: usize = 100;

/// Parses a filter. `Ok(None)` when it is empty or only whitespace.
pub fn parse_filter(input: &str) -> Result<Option<Expr>, QueryError> {
    let chars = checked_chars(input, "filter")?;
    let tokens = lex::lex(&chars)?;
    parse::parse(tokens, chars.len())
}

/// Parses `input` and appends its predicate to `out` (see [`Expr::compile`]).
/// Returns whether anything was appended: `false` for an empty filter.
pub fn filter_sql(input: &str, schema: &Schema, out: &mut SqlBuilder) -> Result<bool, QueryError> {
    match parse_filter(input)? {
        Some(expr) => expr.compile(schema, out).map(|()| true),
        None => Ok(false),
    }
}

/// The input as characters, so positions count characters, after checking
/// its length before any other work is done on it.
pub(crate) fn checked_chars(input: &str, field: &'static str) -> Result<Vec<char>, QueryError> {
    // Bytes bound characters from above: only count when it could matter.
    if input.len() > MAX_INPUT_CHARS {
        let count = input.chars().count();
        if count > MAX_INPUT_CHARS {
            return Err(QueryError {
                field,
                position: MAX_INPUT_CHARS,
                message: format!("{count} characters long; the limit is {MAX_INPUT_CHARS}"),
            });
        }
    }
    Ok(input.chars().collect())
}
