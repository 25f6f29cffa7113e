//! How results are printed: aligned tables and `Field  value` lists for
//! people (enum names without their type prefix, times in local time), and
//! one canonical protobuf JSON document for scripts, the same shape the
//! gateway's REST mapping answers with.

use std::io::Write as _;
use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, DynamicMessage};

use super::ClientError;

/// Prints one line to stdout like `println!`, returning the error instead of
/// panicking; a reader that stopped reading (`itsm incident list | head`)
/// ends the output quietly.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::client::output::line(&format!($($arg)*))?
    };
}

/// Writes `text` and a newline to stdout; see [`out!`].
pub fn line(text: &str) -> Result<(), ClientError> {
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}") {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(error) => Err(ClientError::Output(error.to_string())),
    }
}

/// `-o table` or `-o json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people
    #[default]
    Table,
    /// One JSON document (canonical protobuf JSON) for scripts
    Json,
}

fn pool() -> Result<&'static DescriptorPool, ClientError> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(itsm_proto::FILE_DESCRIPTOR_SET).map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|error| ClientError::Output(format!("the built-in descriptors: {error}")))
}

/// Prints `message` (of the protobuf type `full_name`, e.g.
/// `itsm.incidents.v1.Incident`) as canonical protobuf JSON: lowerCamelCase
/// names, enums by name, RFC 3339 times, fields at their default left out.
pub fn print_json<M: prost::Message>(message: &M, full_name: &str) -> Result<(), ClientError> {
    let descriptor = pool()?
        .get_message_by_name(full_name)
        .ok_or_else(|| ClientError::Output(format!("no descriptor for {full_name}")))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(|error| ClientError::Output(error.to_string()))?;
    let text = serde_json::to_string_pretty(&dynamic)
        .map_err(|error| ClientError::Output(error.to_string()))?;
    line(&text)
}

/// Prints a JSON value built by the command (for what is not a protobuf message).
pub fn print_json_value(value: &serde_json::Value) -> Result<(), ClientError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|error| ClientError::Output(error.to_string()))?;
    line(&text)
}

/// Prints `Field  value` lines, names aligned; empty values are left out.
pub fn print_fields(fields: &[(&str, String)]) -> Result<(), ClientError> {
    let width = fields.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    for (name, value) in fields {
        if value.is_empty() {
            continue;
        }
        let mut lines = value.lines();
        out!("{name:<width$}  {}", lines.next().unwrap_or_default());
        for line in lines {
            out!("{:<width$}  {line}", "");
        }
    }
    Ok(())
}

/// Rows under headers, columns aligned to their widest cell.
#[derive(Debug)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Self {
        Self {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Prints the table, or `empty` when it has no rows.
    pub fn print(&self, empty: &str) -> Result<(), ClientError> {
        if self.rows.is_empty() {
            return line(empty);
        }
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let render = |cells: Vec<&str>| {
            let last = cells.len().saturating_sub(1);
            let mut text = String::new();
            for (i, (cell, width)) in cells.into_iter().zip(&widths).enumerate() {
                if i == last {
                    text.push_str(cell);
                } else {
                    let pad = width.saturating_sub(cell.chars().count());
                    text.push_str(cell);
                    text.push_str(&" ".repeat(pad + 2));
                }
            }
            line(text.trim_end())
        };
        render(self.headers.clone())?;
        for row in &self.rows {
            render(row.iter().map(String::as_str).collect())?;
        }
        Ok(())
    }
}

/// An enum value's name without its type prefix: `INCIDENT_STATE_ON_HOLD` -> `ON_HOLD`,
/// as the filter language spells it; empty for the unspecified value.
pub fn short(name: &str, prefix: &str) -> String {
    let name = name.strip_prefix(prefix).unwrap_or(name);
    if name == "UNSPECIFIED" {
        String::new()
    } else {
        name.to_owned()
    }
}

/// A timestamp in the local time zone ("2026-11-22 09:05:00 CET"); empty when unset.
pub fn local_time(time: Option<&prost_types::Timestamp>) -> String {
    match time {
        Some(time) => local_time_of(time.seconds, time.nanos),
        None => String::new(),
    }
}

/// Seconds and nanoseconds since the epoch in the local time zone.
pub fn local_time_of(seconds: i64, nanos: i32) -> String {
    match jiff::Timestamp::new(seconds, nanos) {
        Ok(at) => at
            .to_zoned(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
        Err(_) => format!("{seconds}s after the epoch"),
    }
}

/// A protobuf duration for people: "2d 03h", "1h 05m", "4m 10s", "-12m 00s".
pub fn duration(duration: Option<&prost_types::Duration>) -> String {
    match duration {
        Some(duration) => seconds(duration.seconds),
        None => String::new(),
    }
}

/// Whole seconds for people, as [`duration`].
pub fn seconds(total: i64) -> String {
    let sign = if total < 0 { "-" } else { "" };
    let total = total.unsigned_abs();
    let (days, hours, minutes, secs) = (
        total / 86_400,
        total % 86_400 / 3600,
        total % 3600 / 60,
        total % 60,
    );
    if days > 0 {
        format!("{sign}{days}d {hours:02}h")
    } else if hours > 0 {
        format!("{sign}{hours}h {minutes:02}m")
    } else if minutes > 0 {
        format!("{sign}{minutes}m {secs:02}s")
    } else {
        format!("{sign}{secs}s")
    }
}

/// `text` cut to `max` characters with an ellipsis, for table cells.
pub fn clip(text: &str, max: usize) -> String {
    let text = text.lines().next().unwrap_or_default();
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut clipped: String = text.chars().take(max.saturating_sub(1)).collect();
    clipped.push('…');
    clipped
}

/// A string literal of the filter language, quoted and escaped.
pub fn quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                quoted.push('\\');
                quoted.push(c);
            }
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(seconds(42), "42s");
        assert_eq!(seconds(250), "4m 10s");
        assert_eq!(seconds(3900), "1h 05m");
        assert_eq!(seconds(2 * 86_400 + 3 * 3600 + 59), "2d 03h");
        assert_eq!(seconds(-720), "-12m 00s");
    }

    #[test]
    fn enum_names_lose_their_prefix() {
        assert_eq!(
            short("INCIDENT_STATE_ON_HOLD", "INCIDENT_STATE_"),
            "ON_HOLD"
        );
        assert_eq!(short("PRIORITY_UNSPECIFIED", "PRIORITY_"), "");
    }

    #[test]
    fn filter_strings_are_escaped() {
        assert_eq!(quote(r#"a "b" \c"#), r#""a \"b\" \\c""#);
    }

    #[test]
    fn json_is_canonical_protobuf_json() {
        let message = itsm_proto::itsm::incidents::v1::Incident {
            number: "INC0000001".into(),
            state: 3,
            assignment_group: "network".into(),
            create_time: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: 0,
            }),
            ..Default::default()
        };
        let descriptor = pool()
            .unwrap()
            .get_message_by_name("itsm.incidents.v1.Incident")
            .unwrap();
        let dynamic = DynamicMessage::decode(
            descriptor,
            prost::Message::encode_to_vec(&message).as_slice(),
        )
        .unwrap();
        let value = serde_json::to_value(&dynamic).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "number": "INC0000001",
                "state": "INCIDENT_STATE_ON_HOLD",
                "assignmentGroup": "network",
                "createTime": "1970-01-01T00:00:00Z",
            })
        );
    }
}
