//! Tokens to [`Expr`], by recursive descent over AIP-160's grammar:
//!
//! ```text
//! expression = sequence { "AND" sequence }
//! sequence   = factor { factor }                 (juxtaposition: also AND)
//! factor     = term { "OR" term }
//! term       = [ "NOT" | "-" ] simple
//! simple     = "(" expression ")" | restriction
//! restriction = NAME comparator value
//! ```
//!
//! Recursion happens only through parentheses, and their depth is capped, so
//! no input can overflow the stack.

use super::ast::{Comparison, Expr, Op, Value};
use super::lex::{Tok, Token};
use super::{MAX_COMPARISONS, MAX_DEPTH};
use crate::error::{QueryError, excerpt};

/// Parses a whole token list; `None` when there are no tokens.
pub(crate) fn parse(tokens: Vec<Token>, end: usize) -> Result<Option<Expr>, QueryError> {
    if tokens.is_empty() {
        return Ok(None);
    }
    let mut parser = Parser {
        tokens,
        at: 0,
        end,
        depth: 0,
        comparisons: 0,
    };
    let expr = parser.expression()?;
    match parser.peek() {
        None => Ok(Some(expr)),
        Some(token) if token.tok == Tok::RParen => Err(QueryError::filter(
            token.pos,
            "unmatched ')' (no '(' is open)",
        )),
        Some(_) => Err(parser.expected("AND, OR or the end of the filter")),
    }
}

struct Parser {
    tokens: Vec<Token>,
    /// Index of the next token.
    at: usize,
    /// Character length of the input: where "end of input" is.
    end: usize,
    /// Parentheses open around the current token.
    depth: usize,
    comparisons: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        let matched = self.peek().is_some_and(|t| &t.tok == tok);
        if matched {
            self.at += 1;
        }
        matched
    }

    /// "expected {what} after {previous token}, found {next token}", at the
    /// next token (or the end of input).
    fn expected(&self, what: &str) -> QueryError {
        let after = self
            .at
            .checked_sub(1)
            .and_then(|i| self.tokens.get(i))
            .map(|t| format!(" after {}", t.tok.describe()))
            .unwrap_or_default();
        self.found(&format!("expected {what}{after}"))
    }

    /// "{expected}, found {next token}", at the next token (or the end).
    fn found(&self, expected: &str) -> QueryError {
        let (pos, found) = match self.peek() {
            Some(token) => (token.pos, token.tok.describe()),
            None => (self.end, "end of input".to_owned()),
        };
        QueryError::filter(pos, format!("{expected}, found {found}"))
    }

    fn expression(&mut self) -> Result<Expr, QueryError> {
        let mut operands = vec![self.sequence()?];
        while self.eat(&Tok::And) {
            operands.push(self.sequence()?);
        }
        Ok(flatten(operands, Combine::And))
    }

    /// Factors side by side until AND, `)` or the end. Anything else starts
    /// another factor, which reports what is wrong with it if it is not one.
    fn sequence(&mut self) -> Result<Expr, QueryError> {
        let mut operands = vec![self.factor()?];
        while self
            .peek()
            .is_some_and(|t| !matches!(t.tok, Tok::And | Tok::RParen))
        {
            operands.push(self.factor()?);
        }
        Ok(flatten(operands, Combine::And))
    }

    fn factor(&mut self) -> Result<Expr, QueryError> {
        let mut operands = vec![self.term()?];
        while self.eat(&Tok::Or) {
            operands.push(self.term()?);
        }
        Ok(flatten(operands, Combine::Or))
    }

    fn term(&mut self) -> Result<Expr, QueryError> {
        if self.eat(&Tok::Not) || self.eat(&Tok::Minus) {
            return Ok(Expr::Not(Box::new(self.simple()?)));
        }
        self.simple()
    }

    fn simple(&mut self) -> Result<Expr, QueryError> {
        let Some(open) = self.peek().filter(|t| t.tok == Tok::LParen) else {
            return self.restriction();
        };
        let open_pos = open.pos;
        if self.depth >= MAX_DEPTH {
            return Err(QueryError::filter(
                open_pos,
                format!("parentheses nested more than {MAX_DEPTH} deep"),
            ));
        }
        self.at += 1;
        self.depth += 1;
        let expr = self.expression()?;
        if !self.eat(&Tok::RParen) {
            return Err(self.found(&format!(
                "expected ')' to close the '(' at position {open_pos}"
            )));
        }
        self.depth -= 1;
        Ok(expr)
    }

    /// `field OP value`. A lone value is refused: AIP-160's global search
    /// has no meaning against a whitelist of columns.
    fn restriction(&mut self) -> Result<Expr, QueryError> {
        let Some(first) = self.peek().cloned() else {
            return Err(self.expected("a comparison"));
        };
        let field = match first.tok {
            Tok::Word(word) => word,
            Tok::Str(_) | Tok::Num(_) => {
                self.at += 1;
                if self.peek().is_some_and(|t| matches!(t.tok, Tok::Op(_))) {
                    return Err(QueryError::filter(
                        first.pos,
                        format!(
                            "expected a field name, found {}: the field comes first, e.g. title = \"x\"",
                            first.tok.describe()
                        ),
                    ));
                }
                return Err(lone_value(first.pos, &first.tok));
            }
            _ => return Err(self.expected("a comparison")),
        };
        self.at += 1;
        let Some(Token {
            tok: Tok::Op(op),
            pos: op_pos,
        }) = self.peek().cloned()
        else {
            return Err(lone_word(first.pos, &field));
        };
        self.at += 1;
        self.comparisons += 1;
        if self.comparisons > MAX_COMPARISONS {
            return Err(QueryError::filter(
                first.pos,
                format!("more than {MAX_COMPARISONS} comparisons; narrow the filter"),
            ));
        }
        let (value, value_pos) = self.value(op)?;
        Ok(Expr::Compare(Comparison {
            field,
            op,
            value,
            field_pos: first.pos,
            op_pos,
            value_pos,
        }))
    }

    fn value(&mut self, op: Op) -> Result<(Value, usize), QueryError> {
        let Some(token) = self.peek().cloned() else {
            return Err(self.expected("a value"));
        };
        let value = match token.tok {
            Tok::Str(text) => Value::String(text),
            Tok::Num(text) => number(&text, token.pos)?,
            Tok::Word(word) => match word.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => Value::Name(word),
            },
            Tok::Star if op == Op::Has => Value::Any,
            Tok::Star => {
                return Err(QueryError::filter(
                    token.pos,
                    format!(
                        "'*' only follows ':' (field:* asks whether the field is set), not '{op}'"
                    ),
                ));
            }
            _ => return Err(self.expected("a value")),
        };
        self.at += 1;
        Ok((value, token.pos))
    }
}

#[derive(Clone, Copy)]
enum Combine {
    And,
    Or,
}

/// One operand stays itself; several become one AND/OR, with operands of the
/// same kind (from parentheses) merged in, which is what keeps trees canonical.
fn flatten(mut operands: Vec<Expr>, combine: Combine) -> Expr {
    if operands.len() == 1
        && let Some(only) = operands.pop()
    {
        return only;
    }
    let mut flat = Vec::with_capacity(operands.len());
    for operand in operands {
        match (combine, operand) {
            (Combine::And, Expr::And(inner)) | (Combine::Or, Expr::Or(inner)) => flat.extend(inner),
            (_, other) => flat.push(other),
        }
    }
    match combine {
        Combine::And => Expr::And(flat),
        Combine::Or => Expr::Or(flat),
    }
}

/// An integer unless it has a `.` or an exponent.
fn number(text: &str, pos: usize) -> Result<Value, QueryError> {
    if !text.contains(['.', 'e', 'E']) {
        return text.parse().map(Value::Int).map_err(|_| {
            QueryError::filter(
                pos,
                format!("{} does not fit in a 64-bit integer", excerpt(text)),
            )
        });
    }
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(Value::Float(x)),
        _ => Err(QueryError::filter(
            pos,
            format!("{} is too large for a number", excerpt(text)),
        )),
    }
}

fn lone_word(pos: usize, word: &str) -> QueryError {
    match word {
        "and" | "or" | "not" => QueryError::filter(
            pos,
            format!(
                "\"{word}\" is not an operator: write {} in capitals",
                word.to_ascii_uppercase()
            ),
        ),
        _ => lone_value(pos, &Tok::Word(word.to_owned())),
    }
}

fn lone_value(pos: usize, tok: &Tok) -> QueryError {
    QueryError::filter(
        pos,
        format!(
            "{} has no field to compare with: write field = value or field:value, e.g. title:\"disk\"",
            tok.describe()
        ),
    )
}
