//! The rules of API keys, free of I/O: what a valid request for a key is,
//! which state a key is in, who may grant what, and when a key may be
//! revoked. Times are microseconds since the Unix epoch, as stored.
//! Assignment groups have their own rules in [`group`].

use itsm_auth::roles;
use itsm_platform::{ApiError, Violations};
use itsm_store::audit::{Actor, FieldChange};

pub mod group;

/// The collection of every key's resource name: `apiKeys/<key id>`.
pub const COLLECTION: &str = "apiKeys";
/// Longest display name (of a key or a group), in characters.
pub const DISPLAY_NAME_MAX: usize = 100;
/// Longest description (of a key or a group) or revoke reason, in characters.
pub const TEXT_MAX: usize = 1000;
/// Longest lifetime of a key: two years. 731 days, so that "now plus two
/// calendar years" fits whether or not a 29 February falls in between.
pub const MAX_LIFETIME_MICROS: i64 = 731 * 24 * 3600 * 1_000_000;
/// Length of the key id [`itsm_auth::apikey::generate`] makes (lowercase hex).
const KEY_ID_LEN: usize = 12;

/// Whether a key authenticates its holder now. Numbers as in `ApiKeyState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Active = 1,
    Expired = 2,
    Revoked = 3,
}

impl KeyState {
    /// The name callers see, as in the contract's enum without its prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Expired => "EXPIRED",
            Self::Revoked => "REVOKED",
        }
    }
}

/// A key as a caller asks for it, before any check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRequest {
    pub display_name: String,
    pub service_account: String,
    pub roles: Vec<String>,
    pub description: String,
    /// Seconds and nanoseconds, as the protobuf timestamp carries them; `None` when unset.
    pub expire_time: Option<(i64, i32)>,
}

/// A request that passed every check: roles sorted and without duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    pub display_name: String,
    pub service_account: String,
    pub roles: Vec<String>,
    pub description: String,
    pub expire_time: i64,
}

impl KeyRequest {
    /// Checks every field and reports every bad one at once, under its path
    /// in `CreateApiKeyRequest` (`api_key.display_name`, ...).
    pub fn validate(self, now: i64) -> Result<NewKey, ApiError> {
        let mut v = Violations::new();
        let name_len = self.display_name.chars().count();
        v.check(
            !self.display_name.trim().is_empty(),
            "api_key.display_name",
            "must not be empty or blank",
        );
        v.check(
            name_len <= DISPLAY_NAME_MAX,
            "api_key.display_name",
            format!("must be at most {DISPLAY_NAME_MAX} characters, is {name_len}"),
        );
        v.check(
            is_service_account(&self.service_account),
            "api_key.service_account",
            "must be a lowercase letter followed by 2 to 62 lowercase letters, digits or \
             hyphens, e.g. svc-monitoring",
        );
        v.check(
            !self.roles.is_empty(),
            "api_key.roles",
            "must name at least one role",
        );
        for (i, role) in self.roles.iter().enumerate() {
            v.check(
                roles::ALL.contains(&role.as_str()),
                format!("api_key.roles[{i}]"),
                format!("unknown role {role:?}; known: {}", roles::ALL.join(", ")),
            );
        }
        let description_len = self.description.chars().count();
        v.check(
            description_len <= TEXT_MAX,
            "api_key.description",
            format!("must be at most {TEXT_MAX} characters, is {description_len}"),
        );
        let expire_time = match self.expire_time {
            None => {
                v.add(
                    "api_key.expire_time",
                    "is required: when the key stops working",
                );
                0
            }
            Some((seconds, nanos)) => match micros_from_parts(seconds, nanos) {
                None => {
                    v.add("api_key.expire_time", "is not a valid timestamp");
                    0
                }
                Some(at) => {
                    v.check(at > now, "api_key.expire_time", "must be in the future");
                    v.check(
                        at <= now.saturating_add(MAX_LIFETIME_MICROS),
                        "api_key.expire_time",
                        "must be at most two years (731 days) from now",
                    );
                    at
                }
            },
        };
        v.into_result()?;
        let mut roles = self.roles;
        roles.sort();
        roles.dedup();
        Ok(NewKey {
            display_name: self.display_name,
            service_account: self.service_account,
            roles,
            description: self.description,
            expire_time,
        })
    }
}

/// PERMISSION_DENIED when a caller who is not an admin asks for a key with
/// the admin role: otherwise any holder of CreateApiKey could mint
/// themselves more power than they have.
pub fn check_grant(roles: &[String], caller_is_admin: bool) -> Result<(), ApiError> {
    if caller_is_admin || !roles.iter().any(|r| r == roles::ADMIN) {
        Ok(())
    } else {
        Err(ApiError::permission_denied(
            "identity.api_key.grant_admin (only an admin may issue a key with the admin role)",
        ))
    }
}

/// `^[a-z][a-z0-9-]{2,62}$`, written out: the subject a key acts as.
pub fn is_service_account(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// A protobuf timestamp's parts as microseconds; `None` when out of range.
pub fn micros_from_parts(seconds: i64, nanos: i32) -> Option<i64> {
    if !(0..1_000_000_000).contains(&nanos) {
        return None;
    }
    seconds
        .checked_mul(1_000_000)?
        .checked_add(i64::from(nanos / 1_000))
}

/// The key id in a resource name, `apiKeys/<key id>`; INVALID_ARGUMENT on `field` otherwise.
pub fn key_id_from_name<'a>(name: &'a str, field: &str) -> Result<&'a str, ApiError> {
    name.strip_prefix(COLLECTION)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|id| {
            id.len() == KEY_ID_LEN
                && id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        .ok_or_else(|| {
            ApiError::invalid_field(
                field,
                format!("must be {COLLECTION}/<key id> (12 lowercase hex characters)"),
            )
        })
}

/// A time as RFC 3339 in UTC, for audit entries and messages people read.
pub fn rfc3339(micros: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| micros.to_string())
}

/// INVALID_ARGUMENT when a revoke reason is too long.
pub fn check_reason(reason: &str) -> Result<(), ApiError> {
    let len = reason.chars().count();
    let mut v = Violations::new();
    v.check(
        len <= TEXT_MAX,
        "reason",
        format!("must be at most {TEXT_MAX} characters, is {len}"),
    );
    v.into_result()
}

/// An API key as stored, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub key_id: String,
    pub display_name: String,
    pub service_account: String,
    /// Sorted, without duplicates.
    pub roles: Vec<String>,
    pub description: String,
    pub create_time: i64,
    pub created_by: Actor,
    pub expire_time: i64,
    pub revoke_time: Option<i64>,
    pub revoked_by: Option<Actor>,
    pub revoke_reason: String,
    pub last_used_time: Option<i64>,
    /// The etag's version: 1 when created, incremented by every change.
    pub version: i64,
}

impl ApiKey {
    /// A new key from a validated request, issued by `creator` at `now`.
    pub fn issue(new: NewKey, key_id: String, creator: Actor, now: i64) -> Self {
        Self {
            key_id,
            display_name: new.display_name,
            service_account: new.service_account,
            roles: new.roles,
            description: new.description,
            create_time: now,
            created_by: creator,
            expire_time: new.expire_time,
            revoke_time: None,
            revoked_by: None,
            revoke_reason: String::new(),
            last_used_time: None,
            version: 1,
        }
    }

    /// `apiKeys/<key id>`.
    pub fn name(&self) -> String {
        format!("{COLLECTION}/{}", self.key_id)
    }

    /// The state at `now`. Revoked wins over expired: it is the stronger fact.
    pub fn state(&self, now: i64) -> KeyState {
        if self.revoke_time.is_some() {
            KeyState::Revoked
        } else if self.expire_time <= now {
            KeyState::Expired
        } else {
            KeyState::Active
        }
    }

    /// The audit trail of the creation: every field set, never the secret.
    pub fn creation_changes(&self) -> Vec<FieldChange> {
        vec![
            FieldChange::new("display_name", "", &self.display_name),
            FieldChange::new("service_account", "", &self.service_account),
            FieldChange::new("roles", "", self.roles.join(",")),
            FieldChange::new("description", "", &self.description),
            FieldChange::new("expire_time", "", rfc3339(self.expire_time)),
            FieldChange::new("state", "", KeyState::Active.as_str()),
        ]
    }

    /// Revokes the key, or FAILED_PRECONDITION when it already is revoked
    /// (an expired key may still be revoked: it makes the end explicit).
    /// Returns what changed; the key is left untouched on error.
    pub fn revoke(
        &mut self,
        by: Actor,
        reason: &str,
        now: i64,
    ) -> Result<Vec<FieldChange>, ApiError> {
        let state = self.state(now);
        if state == KeyState::Revoked {
            let name = self.name();
            return Err(ApiError::failed_precondition(
                "STATE",
                &name,
                format!(
                    "{name} is {}: it was revoked already; allowed from: ACTIVE, EXPIRED",
                    state.as_str()
                ),
            ));
        }
        self.revoke_time = Some(now);
        self.revoked_by = Some(by);
        self.revoke_reason = reason.to_owned();
        self.version += 1;
        Ok(vec![
            FieldChange::new("state", state.as_str(), KeyState::Revoked.as_str()),
            FieldChange::new("revoke_time", "", rfc3339(now)),
            FieldChange::new("revoke_reason", "", reason),
        ])
    }
}

#[cfg(test)]
mod tests;
