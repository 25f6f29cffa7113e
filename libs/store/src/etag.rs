//! Optimistic concurrency. Every resource row has a `version` that each write
//! increments; its etag is that version, opaque to clients. An update sent
//! with an etag that is not the current one is refused (ABORTED), so no
//! concurrent update is ever silently overwritten.
//!
//! The pattern, inside one transaction: read the row with
//! [`crate::Backend::lock_suffix`] (`FOR UPDATE` on PostgreSQL; SQLite's
//! `BEGIN IMMEDIATE` already holds the write lock), [`check`] the etag, write
//! with `version = version + 1`. A concurrent writer blocks on the row lock,
//! then sees the new version and gets ABORTED.

use crate::error::StoreError;

/// The etag of a version.
pub fn from_version(version: i64) -> String {
    format!("v{version}")
}

/// The version an etag names.
pub fn to_version(etag: &str) -> Result<i64, StoreError> {
    etag.strip_prefix('v')
        .and_then(|digits| digits.parse::<i64>().ok())
        .filter(|version| *version > 0)
        .ok_or_else(|| StoreError::BadEtag(etag.to_owned()))
}

/// Refuses a write whose etag is not the resource's current version. An empty
/// etag is accepted only when `required` is false (unconditional write).
pub fn check(resource: &str, etag: &str, current: i64, required: bool) -> Result<(), StoreError> {
    if etag.is_empty() {
        return if required {
            Err(StoreError::BadEtag(String::new()))
        } else {
            Ok(())
        };
    }
    if to_version(etag)? == current {
        Ok(())
    } else {
        Err(StoreError::StaleEtag(resource.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(to_version(&from_version(42)).unwrap(), 42);
    }

    #[test]
    fn refuses_forged_and_stale() {
        for bad in ["", "42", "v", "v-1", "v0", "vx", "W/\"v1\""] {
            assert!(to_version(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            check("incidents/INC1", "v1", 2, true),
            Err(StoreError::StaleEtag(_))
        ));
        assert!(check("incidents/INC1", "v2", 2, true).is_ok());
        assert!(check("incidents/INC1", "", 2, false).is_ok());
        assert!(matches!(
            check("incidents/INC1", "", 2, true),
            Err(StoreError::BadEtag(_))
        ));
    }
}
