//! Gap-free human numbers: INC0000001, INC0000002, ...
//!
//! The counter row is incremented inside the creating transaction: concurrent
//! creators queue on its row lock, and a rolled-back create gives its number
//! back, so numbers are unique and without gaps across replicas.

use sqlx::AnyConnection;

use crate::error::StoreError;

/// The next value of the named counter (1 for a new counter).
pub async fn next(conn: &mut AnyConnection, name: &str) -> Result<i64, StoreError> {
    let value: i64 = sqlx::query_scalar(
        "INSERT INTO counters (name, value) VALUES ($1, 1) \
         ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 \
         RETURNING value",
    )
    .bind(name)
    .fetch_one(conn)
    .await?;
    Ok(value)
}

/// `INC` and 42 -> `INC0000042` (seven digits, more when the number needs them).
pub fn format_number(prefix: &str, value: i64) -> String {
    format!("{prefix}{value:07}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_are_zero_padded_to_seven_digits() {
        assert_eq!(super::format_number("INC", 42), "INC0000042");
        assert_eq!(super::format_number("KB", 12_345_678), "KB12345678");
    }
}
