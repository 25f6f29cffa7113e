//! The one error of this crate: where in `filter` or `order_by` the input is
//! wrong, and what was expected there.

use itsm_platform::ApiError;

/// A `filter` or `order_by` the caller must fix.
///
/// Displays as `filter: at position 12: expected a value after '=', found end of input`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {}", self.description())]
pub struct QueryError {
    /// The request field at fault: `"filter"` or `"order_by"`.
    pub field: &'static str,
    /// 0-based offset, in characters (not bytes), into that field's text.
    pub position: usize,
    /// What is wrong, without the position.
    pub message: String,
}

impl QueryError {
    pub(crate) fn filter(position: usize, message: impl Into<String>) -> Self {
        Self {
            field: "filter",
            position,
            message: message.into(),
        }
    }

    pub(crate) fn order_by(position: usize, message: impl Into<String>) -> Self {
        Self {
            field: "order_by",
            position,
            message: message.into(),
        }
    }

    /// `at position N: message`: the field violation's description.
    pub fn description(&self) -> String {
        format!("at position {}: {}", self.position, self.message)
    }
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        ApiError::invalid_field(error.field, error.description())
    }
}

/// Shortens a literal quoted in a message: the input may be 2,000 characters.
pub(crate) fn excerpt(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(MAX).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use itsm_platform::ErrorCode;

    #[test]
    fn becomes_invalid_argument_naming_the_field_and_position() {
        let error = QueryError::filter(12, "expected a value after '=', found end of input");
        assert_eq!(
            error.to_string(),
            "filter: at position 12: expected a value after '=', found end of input"
        );
        let api = ApiError::from(error);
        assert_eq!(api.code(), ErrorCode::InvalidArgument);
        assert_eq!(api.field_violations().len(), 1);
        assert_eq!(api.field_violations()[0].field, "filter");
        assert_eq!(
            api.field_violations()[0].description,
            "at position 12: expected a value after '=', found end of input"
        );
    }

    #[test]
    fn long_literals_are_shortened_in_messages() {
        assert_eq!(excerpt("short"), "short");
        let long = "x".repeat(100);
        assert_eq!(excerpt(&long).chars().count(), 41);
    }
}
