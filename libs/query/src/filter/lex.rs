//! Filter text to tokens, each with the character offset it starts at.
//!
//! The lexer knows nothing of precedence or fields; it only decides where
//! each token ends, so that errors can point at the exact character.

use super::ast::Op;
use crate::error::{QueryError, excerpt};

/// A token of the filter language.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    LParen,
    RParen,
    Op(Op),
    /// `-` not followed by a digit: negation.
    Minus,
    Star,
    And,
    Or,
    Not,
    /// An identifier: a field name, an enum value, `true`, `false`.
    Word(String),
    /// A quoted string with its escapes resolved.
    Str(String),
    /// A number's text, sign included; the parser decides int or float.
    Num(String),
}

impl Tok {
    /// How a message names this token after "found".
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::LParen => "'('".into(),
            Self::RParen => "')'".into(),
            Self::Op(op) => format!("'{op}'"),
            Self::Minus => "'-'".into(),
            Self::Star => "'*'".into(),
            Self::And => "AND".into(),
            Self::Or => "OR".into(),
            Self::Not => "NOT".into(),
            Self::Word(word) => format!("\"{}\"", excerpt(word)),
            Self::Str(text) => format!("the string \"{}\"", excerpt(text)),
            Self::Num(text) => format!("the number {}", excerpt(text)),
        }
    }
}

/// A token and the character offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) pos: usize,
}

/// Splits `chars` into tokens; whitespace separates tokens and is dropped.
pub(crate) fn lex(chars: &[char]) -> Result<Vec<Token>, QueryError> {
    let mut lexer = Lexer { chars, pos: 0 };
    let mut tokens = Vec::new();
    while let Some(c) = lexer.peek(0) {
        if c.is_whitespace() {
            lexer.pos += 1;
            continue;
        }
        let pos = lexer.pos;
        let tok = lexer.token(c)?;
        tokens.push(Token { tok, pos });
    }
    Ok(tokens)
}

struct Lexer<'a> {
    chars: &'a [char],
    pos: usize,
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    /// Reads the token starting with `c` at the current position.
    fn token(&mut self, c: char) -> Result<Tok, QueryError> {
        let single = |tok| Ok((tok, 1));
        let (tok, len) = match (c, self.peek(1)) {
            ('(', _) => single(Tok::LParen),
            (')', _) => single(Tok::RParen),
            ('*', _) => single(Tok::Star),
            (':', _) => single(Tok::Op(Op::Has)),
            ('=', _) => single(Tok::Op(Op::Eq)),
            ('!', Some('=')) => Ok((Tok::Op(Op::Ne), 2)),
            ('<', Some('=')) => Ok((Tok::Op(Op::Le), 2)),
            ('<', _) => single(Tok::Op(Op::Lt)),
            ('>', Some('=')) => Ok((Tok::Op(Op::Ge), 2)),
            ('>', _) => single(Tok::Op(Op::Gt)),
            ('-', Some(d)) if d.is_ascii_digit() => return self.number(),
            ('-', _) => single(Tok::Minus),
            ('"' | '\'', _) => return self.string(c),
            (d, _) if d.is_ascii_digit() => return self.number(),
            (w, _) if is_word_start(w) => return Ok(self.word()),
            ('!', _) => Err(QueryError::filter(
                self.pos,
                "unexpected character '!' (did you mean '!=' or NOT?)",
            )),
            (other, _) => Err(QueryError::filter(
                self.pos,
                format!("unexpected character {other:?}"),
            )),
        }?;
        self.pos += len;
        Ok(tok)
    }

    /// An identifier; `AND`, `OR` and `NOT` (upper case only, as in
    /// AIP-160) are keywords.
    fn word(&mut self) -> Tok {
        let start = self.pos;
        while self.peek(0).is_some_and(is_word_char) {
            self.pos += 1;
        }
        let word: String = self.chars[start..self.pos].iter().collect();
        match word.as_str() {
            "AND" => Tok::And,
            "OR" => Tok::Or,
            "NOT" => Tok::Not,
            _ => Tok::Word(word),
        }
    }

    /// `-?digits(.digits)?([eE][+-]?digits)?`, not followed by a letter,
    /// digit, `_` or `.` (so `12abc` and `1.2.3` are refused, not split).
    fn number(&mut self) -> Result<Tok, QueryError> {
        let start = self.pos;
        if self.peek(0) == Some('-') {
            self.pos += 1;
        }
        self.digits();
        if self.peek(0) == Some('.') && self.peek(1).is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
            self.digits();
        }
        if matches!(self.peek(0), Some('e' | 'E')) {
            let sign = usize::from(matches!(self.peek(1), Some('+' | '-')));
            if self.peek(1 + sign).is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1 + sign;
                self.digits();
            }
        }
        if self.peek(0).is_some_and(is_word_char) {
            while self.peek(0).is_some_and(is_word_char) {
                self.pos += 1;
            }
            let text: String = self.chars[start..self.pos].iter().collect();
            return Err(QueryError::filter(
                start,
                format!(
                    "\"{}\" is not a number (quote text: \"...\")",
                    excerpt(&text)
                ),
            ));
        }
        Ok(Tok::Num(self.chars[start..self.pos].iter().collect()))
    }

    fn digits(&mut self) {
        while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    /// A string quoted with `quote` (`"` or `'`). Escapes: `\\`, `\"`, `\'`,
    /// `\n`, `\r`, `\t`; any other is refused rather than guessed at.
    fn string(&mut self, quote: char) -> Result<Tok, QueryError> {
        let start = self.pos;
        self.pos += 1;
        let mut text = String::new();
        loop {
            let Some(c) = self.peek(0) else {
                return Err(QueryError::filter(
                    start,
                    format!("string never closed: add the closing {quote}"),
                ));
            };
            self.pos += 1;
            if c == quote {
                return Ok(Tok::Str(text));
            }
            if c != '\\' {
                text.push(c);
                continue;
            }
            let escaped = match self.peek(0) {
                Some('\\') => '\\',
                Some('"') => '"',
                Some('\'') => '\'',
                Some('n') => '\n',
                Some('r') => '\r',
                Some('t') => '\t',
                Some(other) => {
                    return Err(QueryError::filter(
                        self.pos - 1,
                        format!(
                            "unknown escape \\{other} in string (known: \\\\ \\\" \\' \\n \\r \\t)"
                        ),
                    ));
                }
                // Loops round to "never closed".
                None => continue,
            };
            self.pos += 1;
            text.push(escaped);
        }
    }
}

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

/// Dots are allowed inside words so `incident.title` is one (unknown) field
/// name in the error, not a puzzling "unexpected character".
fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(input: &str) -> Vec<(Tok, usize)> {
        let chars: Vec<char> = input.chars().collect();
        lex(&chars)
            .unwrap()
            .into_iter()
            .map(|t| (t.tok, t.pos))
            .collect()
    }

    fn lex_err(input: &str) -> (usize, String) {
        let chars: Vec<char> = input.chars().collect();
        let e = lex(&chars).unwrap_err();
        (e.position, e.message)
    }

    #[test]
    fn splits_operators_words_numbers_and_strings_with_positions() {
        assert_eq!(
            toks(r#"a<=-1.5e3 AND(b!='x\'y')-c:*"#),
            vec![
                (Tok::Word("a".into()), 0),
                (Tok::Op(Op::Le), 1),
                (Tok::Num("-1.5e3".into()), 3),
                (Tok::And, 10),
                (Tok::LParen, 13),
                (Tok::Word("b".into()), 14),
                (Tok::Op(Op::Ne), 15),
                (Tok::Str("x'y".into()), 17),
                (Tok::RParen, 23),
                (Tok::Minus, 24),
                (Tok::Word("c".into()), 25),
                (Tok::Op(Op::Has), 26),
                (Tok::Star, 27),
            ]
        );
    }

    #[test]
    fn keywords_are_upper_case_only() {
        assert_eq!(
            toks("and OR Not"),
            vec![
                (Tok::Word("and".into()), 0),
                (Tok::Or, 4),
                (Tok::Word("Not".into()), 7)
            ]
        );
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        assert_eq!(toks(r#""héé" x"#)[1], (Tok::Word("x".into()), 6));
        assert_eq!(lex_err("\"é\" #").0, 4);
    }

    #[test]
    fn refuses_malformed_tokens_where_they_start() {
        assert_eq!(
            lex_err("a = 12abc"),
            (4, "\"12abc\" is not a number (quote text: \"...\")".into())
        );
        assert_eq!(lex_err("a = 1.2.3").0, 4);
        assert_eq!(
            lex_err("a = 'open"),
            (4, "string never closed: add the closing '".into())
        );
        assert_eq!(lex_err(r#"a = "x\"#).0, 4);
        assert_eq!(
            lex_err(r#"a = "x\q""#),
            (
                6,
                r#"unknown escape \q in string (known: \\ \" \' \n \r \t)"#.into()
            )
        );
        assert_eq!(lex_err("a ! b").0, 2);
        assert_eq!(lex_err("a = é"), (4, "unexpected character 'é'".into()));
    }
}
