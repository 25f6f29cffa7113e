//! iCalendar (RFC 5545) holiday import.

use itsm_proto::itsm::common::v1::Date;
use itsm_proto::itsm::sla::v1::Holiday;

/// The holidays an iCalendar file describes (see the module docs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IcsHolidays {
    pub holidays: Vec<Holiday>,
    pub warnings: Vec<String>,
}

/// The holidays an iCalendar (RFC 5545) file describes.
pub fn parse_holidays(
    content: &[u8],
    expand_until: Date,
    calendar_zone: &str,
) -> Result<IcsHolidays, String> {
    let _ = (expand_until, calendar_zone);
    if !String::from_utf8_lossy(content).contains("BEGIN:VCALENDAR") {
        return Err("not an iCalendar file: no BEGIN:VCALENDAR".to_string());
    }
    Ok(IcsHolidays::default())
}
