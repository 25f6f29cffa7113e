//! The `order_by` of every List method (AIP-132): a comma-separated list of
//! sortable fields, each optionally followed by `asc` or `desc`:
//! `"priority, create_time desc"`.
//!
//! Only fields the schema marks sortable are accepted (they are the indexed
//! ones), each at most once. Direction words are case-insensitive; field names
//! are not. An empty `order_by` gives no terms: the caller applies its default.

use std::fmt;

use crate::error::{QueryError, excerpt};
use crate::filter::checked_chars;
use crate::schema::{Field, Schema};

/// One sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderTerm {
    pub field: &'static Field,
    pub descending: bool,
}

impl OrderTerm {
    /// `ASC` or `DESC`, to follow the column in `ORDER BY`.
    pub fn sql_direction(&self) -> &'static str {
        if self.descending { "DESC" } else { "ASC" }
    }
}

/// Canonical text: `create_time desc`, or the bare name when ascending.
impl fmt::Display for OrderTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.field.name)?;
        if self.descending {
            f.write_str(" desc")?;
        }
        Ok(())
    }
}

/// Parses an `order_by` against `schema`. `Ok(vec![])` when empty or blank.
pub fn parse_order_by(input: &str, schema: &Schema) -> Result<Vec<OrderTerm>, QueryError> {
    let chars = checked_chars(input, "order_by")?;
    let mut terms: Vec<OrderTerm> = Vec::new();
    let mut state = State::Field;
    for (pos, token) in tokens(&chars) {
        state = match (state, token) {
            (State::Field, Token::Word(word)) => {
                terms.push(term(schema, &terms, &word, pos)?);
                State::Direction
            }
            (State::Direction, Token::Word(word)) => {
                let descending = match word.to_ascii_lowercase().as_str() {
                    "asc" => false,
                    "desc" => true,
                    _ => {
                        return Err(expected(
                            "asc, desc or ','",
                            &terms,
                            pos,
                            &token_text(&word),
                        ));
                    }
                };
                if let Some(last) = terms.last_mut() {
                    last.descending = descending;
                }
                State::Comma
            }
            (State::Comma, Token::Word(word)) => {
                return Err(expected("','", &terms, pos, &token_text(&word)));
            }
            (State::Field, Token::Comma) => {
                return Err(expected("a field name", &terms, pos, "','"));
            }
            (State::Direction | State::Comma, Token::Comma) => State::Field,
        };
    }
    if state == State::Field && !terms.is_empty() {
        return Err(expected(
            "a field name",
            &terms,
            chars.len(),
            "end of input",
        ));
    }
    Ok(terms)
}

/// What the parser expects next.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Field,
    Direction,
    Comma,
}

enum Token {
    Word(String),
    Comma,
}

/// Words (runs of anything but whitespace and commas) and commas, with the
/// character offset each starts at.
fn tokens(chars: &[char]) -> Vec<(usize, Token)> {
    let mut tokens = Vec::new();
    let mut word: Option<(usize, String)> = None;
    for (pos, &c) in chars.iter().enumerate() {
        if c == ',' || c.is_whitespace() {
            if let Some((start, text)) = word.take() {
                tokens.push((start, Token::Word(text)));
            }
            if c == ',' {
                tokens.push((pos, Token::Comma));
            }
        } else {
            word.get_or_insert_with(|| (pos, String::new())).1.push(c);
        }
    }
    if let Some((start, text)) = word {
        tokens.push((start, Token::Word(text)));
    }
    tokens
}

fn term(
    schema: &Schema,
    terms: &[OrderTerm],
    name: &str,
    pos: usize,
) -> Result<OrderTerm, QueryError> {
    let Some(field) = schema.field(name) else {
        return Err(QueryError::order_by(
            pos,
            format!(
                "unknown field \"{}\" (sortable fields: {})",
                excerpt(name),
                schema.sortable_names()
            ),
        ));
    };
    if !field.sortable {
        return Err(QueryError::order_by(
            pos,
            format!(
                "{} cannot be sorted on (sortable fields: {})",
                field.name,
                schema.sortable_names()
            ),
        ));
    }
    if terms.iter().any(|t| t.field.name == field.name) {
        return Err(QueryError::order_by(
            pos,
            format!("{} appears twice", field.name),
        ));
    }
    Ok(OrderTerm {
        field,
        descending: false,
    })
}

fn token_text(word: &str) -> String {
    format!("\"{}\"", excerpt(word))
}

/// "expected {what} after {the last term}, found {found}".
fn expected(what: &str, terms: &[OrderTerm], pos: usize, found: &str) -> QueryError {
    let after = terms
        .last()
        .map(|t| format!(" after \"{t}\""))
        .unwrap_or_default();
    QueryError::order_by(pos, format!("expected {what}{after}, found {found}"))
}
