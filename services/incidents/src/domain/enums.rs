//! The contract's enums as domain types: their numbers (as stored and sent),
//! their names without the type prefix (as filters, audit entries and
//! messages write them), and the parsing of a number received from a caller,
//! which refuses unknown numbers naming the values allowed.

use itsm_platform::Violations;

/// Declares an enum mirroring a protobuf enum (without its UNSPECIFIED value).
macro_rules! contract_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $number:literal => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($variant = $number),+
        }

        impl $name {
            /// Every value, in number order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Names and numbers, as a list filter takes them.
            pub const NAMES: &'static [(&'static str, i64)] = &[$(($text, $number)),+];

            /// The value with this number, if any (0, unspecified, is none).
            pub fn from_number(number: i32) -> Option<Self> {
                match number {
                    $($number => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// The protobuf number.
            pub fn number(self) -> i32 {
                self as i32
            }

            /// The name without the type prefix, e.g. `IN_PROGRESS`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// Every name, comma-separated, for messages.
            pub fn allowed() -> String {
                Self::NAMES.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

contract_enum!(
    /// Lifecycle state of an incident (`IncidentState`).
    State {
        New = 1 => "NEW",
        InProgress = 2 => "IN_PROGRESS",
        OnHold = 3 => "ON_HOLD",
        Resolved = 4 => "RESOLVED",
        Closed = 5 => "CLOSED",
        Canceled = 6 => "CANCELED",
    }
);

contract_enum!(
    /// Impact on the business (`itsm.common.v1.Impact`).
    Impact {
        High = 1 => "HIGH",
        Medium = 2 => "MEDIUM",
        Low = 3 => "LOW",
    }
);

contract_enum!(
    /// How quickly the business needs a resolution (`itsm.common.v1.Urgency`).
    Urgency {
        High = 1 => "HIGH",
        Medium = 2 => "MEDIUM",
        Low = 3 => "LOW",
    }
);

contract_enum!(
    /// Priority from the matrix (`itsm.common.v1.Priority`).
    Priority {
        Critical = 1 => "CRITICAL",
        High = 2 => "HIGH",
        Moderate = 3 => "MODERATE",
        Low = 4 => "LOW",
        Planning = 5 => "PLANNING",
    }
);

contract_enum!(
    /// Why an incident is on hold (`HoldReason`).
    HoldReason {
        AwaitingCaller = 1 => "AWAITING_CALLER",
        AwaitingChange = 2 => "AWAITING_CHANGE",
        AwaitingProblem = 3 => "AWAITING_PROBLEM",
        AwaitingVendor = 4 => "AWAITING_VENDOR",
    }
);

contract_enum!(
    /// How an incident was resolved (`ResolutionCode`).
    ResolutionCode {
        SolvedPermanently = 1 => "SOLVED_PERMANENTLY",
        SolvedWorkaround = 2 => "SOLVED_WORKAROUND",
        SolvedRemotely = 3 => "SOLVED_REMOTELY",
        NotSolvedNotReproducible = 4 => "NOT_SOLVED_NOT_REPRODUCIBLE",
        NotSolvedTooCostly = 5 => "NOT_SOLVED_TOO_COSTLY",
        ClosedByCaller = 6 => "CLOSED_BY_CALLER",
        ResolvedByProblem = 7 => "RESOLVED_BY_PROBLEM",
        ResolvedByParent = 8 => "RESOLVED_BY_PARENT",
        AlertCleared = 9 => "ALERT_CLEARED",
    }
);

contract_enum!(
    /// How the incident was reported (`Channel`).
    Channel {
        Portal = 1 => "PORTAL",
        Email = 2 => "EMAIL",
        Phone = 3 => "PHONE",
        Chat = 4 => "CHAT",
        Monitoring = 5 => "MONITORING",
        Api = 6 => "API",
    }
);

contract_enum!(
    /// State of the major-incident flag (`MajorState`).
    MajorState {
        NotMajor = 1 => "NONE",
        Proposed = 2 => "PROPOSED",
        Accepted = 3 => "ACCEPTED",
        Rejected = 4 => "REJECTED",
    }
);

contract_enum!(
    /// Visibility of a journal entry (`itsm.common.v1.JournalKind`).
    JournalKind {
        WorkNote = 1 => "WORK_NOTE",
        Comment = 2 => "COMMENT",
    }
);

contract_enum!(
    /// How an incident relates to another record (`itsm.common.v1.LinkType`).
    LinkType {
        AffectedCi = 1 => "AFFECTED_CI",
        CausedBy = 2 => "CAUSED_BY",
        Problem = 3 => "PROBLEM",
        ResolvedBy = 4 => "RESOLVED_BY",
        KnowledgeArticle = 5 => "KNOWLEDGE_ARTICLE",
        DuplicateOf = 6 => "DUPLICATE_OF",
        Related = 7 => "RELATED",
    }
);

/// A required enum field: `None` (and a violation on `field`) when the number
/// is unspecified or unknown.
pub fn required<E: Copy>(
    v: &mut Violations,
    field: &str,
    number: i32,
    parse: fn(i32) -> Option<E>,
    allowed: fn() -> String,
) -> Option<E> {
    match (number, parse(number)) {
        (_, Some(value)) => Some(value),
        (0, None) => {
            v.add(field, format!("is required: one of {}", allowed()));
            None
        }
        (other, None) => {
            v.add(
                field,
                format!("unknown value {other}; allowed: {}", allowed()),
            );
            None
        }
    }
}

/// An optional enum field: `Ok(None)` when unspecified, a violation on
/// `field` when the number is unknown.
pub fn optional<E: Copy>(
    v: &mut Violations,
    field: &str,
    number: i32,
    parse: fn(i32) -> Option<E>,
    allowed: fn() -> String,
) -> Option<E> {
    if number == 0 {
        return None;
    }
    let parsed = parse(number);
    if parsed.is_none() {
        v.add(
            field,
            format!("unknown value {number}; allowed: {}", allowed()),
        );
    }
    parsed
}

/// The name of an optional value, `""` when unset (as audit entries write it).
pub fn name_or_empty<E: std::fmt::Display>(value: Option<E>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names_round_trip() {
        for state in State::ALL {
            assert_eq!(State::from_number(state.number()), Some(*state));
        }
        assert_eq!(State::from_number(0), None);
        assert_eq!(State::from_number(7), None);
        assert_eq!(State::InProgress.as_str(), "IN_PROGRESS");
        assert_eq!(Impact::allowed(), "HIGH, MEDIUM, LOW");
        assert_eq!(Priority::NAMES[4], ("PLANNING", 5));
    }

    #[test]
    fn required_and_optional_name_the_allowed_values() {
        let mut v = Violations::new();
        let none = required(
            &mut v,
            "incident.impact",
            0,
            Impact::from_number,
            Impact::allowed,
        );
        let bad = required(
            &mut v,
            "incident.urgency",
            9,
            Urgency::from_number,
            Urgency::allowed,
        );
        let ok = optional(
            &mut v,
            "incident.channel",
            0,
            Channel::from_number,
            Channel::allowed,
        );
        let unknown = optional(
            &mut v,
            "incident.channel",
            42,
            Channel::from_number,
            Channel::allowed,
        );
        assert_eq!((none, bad, ok, unknown), (None, None, None, None));
        let error = v.into_result().unwrap_err();
        let fields: Vec<_> = error
            .field_violations()
            .iter()
            .map(|f| (f.field.as_str(), f.description.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("incident.impact", "is required: one of HIGH, MEDIUM, LOW"),
                (
                    "incident.urgency",
                    "unknown value 9; allowed: HIGH, MEDIUM, LOW"
                ),
                (
                    "incident.channel",
                    "unknown value 42; allowed: PORTAL, EMAIL, PHONE, CHAT, MONITORING, API"
                ),
            ]
        );
    }
}
