//! One OpenTelemetry span per SQL statement.
//!
//! sqlx reports every statement it ran as a `sqlx::query` event (summary,
//! text, rows, elapsed time) when the statement finishes; no span exists
//! while it runs. This layer turns each such event into a client span that
//! started `elapsed` ago, under the span the statement ran in, with the
//! attributes the database semantic conventions name. A statement outside
//! any traced work (pool upkeep, pollers between their units of work) makes
//! no span: a one-span trace of a background `SELECT` helps no one.

use std::fmt;
use std::time::{Duration, SystemTime};

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Tracer as _};
use opentelemetry_sdk::trace::SdkTracer;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::{DbSystem, DispatchCell};

/// The longest `db.query.text` exported; longer statements are cut.
const MAX_QUERY_TEXT: usize = 2048;

/// The layer; see the module docs.
pub(super) struct SqlSpans {
    tracer: SdkTracer,
    database: DbSystem,
    dispatch: DispatchCell,
}

impl fmt::Debug for SqlSpans {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlSpans")
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl SqlSpans {
    pub(super) fn new(tracer: SdkTracer, database: DbSystem, dispatch: DispatchCell) -> Self {
        Self {
            tracer,
            database,
            dispatch,
        }
    }
}

impl<S> tracing_subscriber::Layer<S> for SqlSpans
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        let Some(parent) = ctx.event_scope(event).and_then(|scope| {
            scope
                .into_iter()
                .find_map(|span| self.dispatch.context_of(&span.id()))
        }) else {
            return;
        };
        let mut statement = Statement::default();
        event.record(&mut statement);
        let text = statement.text();
        if text.is_empty() {
            return;
        }
        let operation = operation(text);
        let collection = operation.as_deref().and_then(|op| collection(op, text));
        let name = match (&operation, &collection) {
            (Some(op), Some(table)) => format!("{op} {table}"),
            (Some(op), None) => op.clone(),
            _ => self.database.name().to_owned(),
        };
        let mut attributes = vec![
            KeyValue::new("db.system.name", self.database.name()),
            KeyValue::new("db.query.text", bounded(text, MAX_QUERY_TEXT).to_owned()),
        ];
        if let Some(op) = operation {
            attributes.push(KeyValue::new("db.operation.name", op));
        }
        if let Some(table) = collection {
            attributes.push(KeyValue::new("db.collection.name", table));
        }
        if let Some(rows) = statement
            .rows_returned
            .filter(|rows| *rows > 0 || statement.is_read())
        {
            attributes.push(KeyValue::new(
                "db.response.returned_rows",
                i64::try_from(rows).unwrap_or(i64::MAX),
            ));
        }
        let end = SystemTime::now();
        let start = end
            .checked_sub(statement.elapsed.unwrap_or_default())
            .unwrap_or(end);
        let mut span = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Client)
            .with_start_time(start)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &parent);
        span.end_with_timestamp(end);
    }
}

/// What a `sqlx::query` event says about the statement.
#[derive(Debug, Default)]
struct Statement {
    summary: String,
    /// The full text, only when longer than the summary.
    full: String,
    rows_returned: Option<u64>,
    elapsed: Option<Duration>,
}

impl Statement {
    fn text(&self) -> &str {
        let full = self.full.trim();
        if full.is_empty() {
            self.summary.trim()
        } else {
            full
        }
    }

    fn is_read(&self) -> bool {
        let text = self.text();
        starts_with_keyword(text, "SELECT") || starts_with_keyword(text, "WITH")
    }
}

impl Visit for Statement {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => value.clone_into(&mut self.summary),
            "db.statement" => value.clone_into(&mut self.full),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "rows_returned" {
            self.rows_returned = Some(value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "rows_returned" {
            self.rows_returned = u64::try_from(value).ok();
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "elapsed_secs" && value.is_finite() && value >= 0.0 {
            self.elapsed = Some(Duration::from_secs_f64(value));
        }
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn fmt::Debug) {
        // `elapsed` (human-readable) and `slow_threshold`: not needed.
    }
}

/// The statement's first keyword, upper-cased: `SELECT`, `INSERT`, `BEGIN`...
fn operation(text: &str) -> Option<String> {
    let word = text.split_whitespace().next()?;
    let word = word.trim_end_matches(';');
    (!word.is_empty() && word.chars().all(|c| c.is_ascii_alphabetic()))
        .then(|| word.to_ascii_uppercase())
}

/// The table a statement works on, when its shape makes it plain: `INSERT
/// INTO t`, `UPDATE t`, `DELETE FROM t`, `SELECT ... FROM t`.
fn collection(operation: &str, text: &str) -> Option<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let after = |keyword: &str| {
        words
            .iter()
            .position(|w| w.eq_ignore_ascii_case(keyword))
            .and_then(|i| words.get(i + 1))
    };
    let candidate = match operation {
        "INSERT" => after("INTO"),
        "UPDATE" => words.get(1),
        "DELETE" | "SELECT" => after("FROM"),
        _ => None,
    }?;
    let table = candidate.trim_end_matches([',', ';', ')']);
    let plain = !table.is_empty()
        && table
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '"')
        && !table.starts_with(|c: char| c.is_ascii_digit());
    plain.then(|| table.trim_matches('"').to_owned())
}

fn starts_with_keyword(text: &str, keyword: &str) -> bool {
    text.split_whitespace()
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case(keyword))
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn bounded(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_is_the_first_keyword() {
        assert_eq!(
            operation("select id from incidents").as_deref(),
            Some("SELECT")
        );
        assert_eq!(operation("BEGIN IMMEDIATE").as_deref(), Some("BEGIN"));
        assert_eq!(operation("COMMIT;").as_deref(), Some("COMMIT"));
        assert_eq!(operation("(SELECT 1)"), None);
        assert_eq!(operation(""), None);
    }

    #[test]
    fn collection_only_when_the_statement_names_one_plainly() {
        let of = |sql: &str| collection(&operation(sql).unwrap_or_default(), sql);
        assert_eq!(
            of("INSERT INTO outbox (id, body) VALUES ($1, $2)").as_deref(),
            Some("outbox")
        );
        assert_eq!(
            of("UPDATE incidents SET state = $1").as_deref(),
            Some("incidents")
        );
        assert_eq!(
            of("DELETE FROM sla_timers WHERE id = ?").as_deref(),
            Some("sla_timers")
        );
        assert_eq!(
            of("SELECT a, b FROM public.cis WHERE id = $1").as_deref(),
            Some("public.cis")
        );
        assert_eq!(of("SELECT 1"), None);
        assert_eq!(of("SELECT * FROM (SELECT 1) AS t"), None);
        assert_eq!(of("WITH x AS (SELECT 1) SELECT * FROM x"), None);
        assert_eq!(of("BEGIN"), None);
    }

    #[test]
    fn bounded_cuts_on_a_character_boundary() {
        assert_eq!(bounded("abc", 10), "abc");
        assert_eq!(bounded("abcdef", 3), "abc");
        assert_eq!(bounded("aé", 2), "a");
    }
}
