//! The rules of assignment groups, free of I/O: what a valid group is, which
//! fields an update may name, and how members come and go. Members are
//! subjects (a token's `sub`, a service account's name), kept sorted and
//! without duplicates. Times are microseconds since the Unix epoch.
//!
//! Membership changes are recorded one subject per [`FieldChange`] of the
//! field `members`: old `""` and new the subject when it joined, the
//! reverse when it left. A list of 1000 members never lands in one string.

use itsm_platform::{ApiError, ErrorCode, Violations};
use itsm_store::audit::FieldChange;

use super::{DISPLAY_NAME_MAX, TEXT_MAX};

/// The collection of every group's resource name: `groups/<group id>`.
pub const COLLECTION: &str = "groups";
/// Most members a group may have.
pub const MEMBERS_MAX: usize = 1000;
/// Longest subject (member or manager), in characters.
pub const SUBJECT_MAX: usize = 256;
/// Longest email address (RFC 5321's path limit), in characters.
pub const EMAIL_MAX: usize = 254;
/// The fields `update_mask` may name, in the order callers read them.
pub const UPDATABLE: &str = "display_name, description, email, manager, members";

/// A group's fields as a caller sets them, before any check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupRequest {
    pub display_name: String,
    pub description: String,
    pub email: String,
    pub manager: String,
    pub members: Vec<String>,
}

/// Fields that passed every check: members sorted and without duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFields {
    pub display_name: String,
    pub description: String,
    pub email: String,
    pub manager: String,
    pub members: Vec<String>,
}

/// A field `UpdateGroup` may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupField {
    DisplayName,
    Description,
    Email,
    Manager,
    Members,
}

impl GroupRequest {
    /// Checks a new group and its id, reporting every bad field at once under
    /// its path in `CreateGroupRequest` (`group_id`, `group.display_name`, ...).
    pub fn validate_new(self, group_id: &str) -> Result<GroupFields, ApiError> {
        let mut v = Violations::new();
        v.check(
            is_group_id(group_id),
            "group_id",
            "must be a lowercase letter followed by 1 to 62 lowercase letters, digits or \
             hyphens, e.g. network",
        );
        self.check(&mut v);
        v.into_result()?;
        Ok(self.normalized())
    }

    /// Checks the fields of a group, reporting every bad one at once under
    /// `group.<field>`.
    pub fn validate(self) -> Result<GroupFields, ApiError> {
        let mut v = Violations::new();
        self.check(&mut v);
        v.into_result()?;
        Ok(self.normalized())
    }

    /// These fields with those `mask` names taken from `wanted`: what an
    /// update asks the group to become.
    pub fn merge(mut self, mut wanted: GroupRequest, mask: &[GroupField]) -> GroupRequest {
        use std::mem::take;
        // `parse_update_mask` drops repeated paths, so each field is taken once.
        for field in mask {
            match field {
                GroupField::DisplayName => self.display_name = take(&mut wanted.display_name),
                GroupField::Description => self.description = take(&mut wanted.description),
                GroupField::Email => self.email = take(&mut wanted.email),
                GroupField::Manager => self.manager = take(&mut wanted.manager),
                GroupField::Members => self.members = take(&mut wanted.members),
            }
        }
        self
    }

    fn check(&self, v: &mut Violations) {
        let name_len = self.display_name.chars().count();
        v.check(
            !self.display_name.trim().is_empty(),
            "group.display_name",
            "must not be empty or blank",
        );
        v.check(
            name_len <= DISPLAY_NAME_MAX,
            "group.display_name",
            format!("must be at most {DISPLAY_NAME_MAX} characters, is {name_len}"),
        );
        let description_len = self.description.chars().count();
        v.check(
            description_len <= TEXT_MAX,
            "group.description",
            format!("must be at most {TEXT_MAX} characters, is {description_len}"),
        );
        v.check(
            self.email.is_empty() || is_email(&self.email),
            "group.email",
            format!(
                "must be empty or an address like team@example.com, at most {EMAIL_MAX} characters"
            ),
        );
        v.check(
            self.manager.is_empty() || is_subject(&self.manager),
            "group.manager",
            subject_rule(),
        );
        let mut distinct: Vec<&str> = self.members.iter().map(String::as_str).collect();
        distinct.sort_unstable();
        distinct.dedup();
        v.check(
            distinct.len() <= MEMBERS_MAX,
            "group.members",
            format!(
                "must name at most {MEMBERS_MAX} members, names {}",
                distinct.len()
            ),
        );
        for (i, member) in self.members.iter().enumerate() {
            v.check(
                is_subject(member),
                format!("group.members[{i}]"),
                subject_rule(),
            );
        }
    }

    fn normalized(self) -> GroupFields {
        let mut members = self.members;
        members.sort();
        members.dedup();
        GroupFields {
            display_name: self.display_name,
            description: self.description,
            email: self.email,
            manager: self.manager,
            members,
        }
    }
}

/// The fields an `update_mask` names; INVALID_ARGUMENT naming each unknown
/// path, or the mask when it names none (an update must say what it changes).
pub fn parse_update_mask(paths: &[String]) -> Result<Vec<GroupField>, ApiError> {
    let mut v = Violations::new();
    v.check(
        !paths.is_empty(),
        "update_mask",
        format!("must name at least one field: {UPDATABLE}"),
    );
    let mut fields = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let field = match path.as_str() {
            "display_name" => GroupField::DisplayName,
            "description" => GroupField::Description,
            "email" => GroupField::Email,
            "manager" => GroupField::Manager,
            "members" => GroupField::Members,
            other => {
                v.add(
                    format!("update_mask.paths[{i}]"),
                    format!("{other:?} cannot be updated; updatable: {UPDATABLE}"),
                );
                continue;
            }
        };
        if !fields.contains(&field) {
            fields.push(field);
        }
    }
    v.into_result()?;
    Ok(fields)
}

/// `^[a-z][a-z0-9-]{1,62}$`, written out: the id in `groups/<id>`.
pub fn is_group_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    (2..=63).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// A subject as identity providers issue them (UUIDs, user names, email
/// addresses, service accounts): 1 to 256 characters, none of them
/// whitespace, a control character or a comma (so a list of subjects reads
/// unambiguously wherever it is joined).
pub fn is_subject(subject: &str) -> bool {
    let len = subject.chars().count();
    (1..=SUBJECT_MAX).contains(&len)
        && subject
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != ',')
}

fn subject_rule() -> String {
    format!(
        "must be a subject: 1 to {SUBJECT_MAX} characters without whitespace, commas or \
         control characters"
    )
}

/// INVALID_ARGUMENT on `field` unless `subject` is a valid subject.
pub fn check_subject(subject: &str, field: &str) -> Result<(), ApiError> {
    let mut v = Violations::new();
    v.check(is_subject(subject), field, subject_rule());
    v.into_result()
}

/// Loosely an address: one `@` between a non-empty local part and domain,
/// no whitespace or control characters. Deliverability is the mail
/// system's business, not this check's.
fn is_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.chars().count() <= EMAIL_MAX
        && !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && email.chars().all(|c| !c.is_whitespace() && !c.is_control())
}

/// The group id in a resource name, `groups/<group id>`; INVALID_ARGUMENT on `field` otherwise.
pub fn group_id_from_name<'a>(name: &'a str, field: &str) -> Result<&'a str, ApiError> {
    name.strip_prefix(COLLECTION)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|id| is_group_id(id))
        .ok_or_else(|| {
            ApiError::invalid_field(
                field,
                format!(
                    "must be {COLLECTION}/<group id> (a lowercase letter, then 1 to 62 \
                     lowercase letters, digits or hyphens), e.g. {COLLECTION}/network"
                ),
            )
        })
}

/// The subjects only in `old` and only in `new`, both sorted lists:
/// `(added, removed)`.
pub fn member_diff(old: &[String], new: &[String]) -> (Vec<String>, Vec<String>) {
    let added = new
        .iter()
        .filter(|m| old.binary_search(m).is_err())
        .cloned()
        .collect();
    let removed = old
        .iter()
        .filter(|m| new.binary_search(m).is_err())
        .cloned()
        .collect();
    (added, removed)
}

/// An assignment group as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub group_id: String,
    pub display_name: String,
    pub description: String,
    pub email: String,
    pub manager: String,
    /// Sorted, without duplicates.
    pub members: Vec<String>,
    pub create_time: i64,
    pub update_time: i64,
    /// The etag's version: 1 when created, incremented by every change,
    /// membership changes included.
    pub version: i64,
}

impl Group {
    /// A new group from validated fields, created at `now`.
    pub fn create(group_id: String, fields: GroupFields, now: i64) -> Self {
        Self {
            group_id,
            display_name: fields.display_name,
            description: fields.description,
            email: fields.email,
            manager: fields.manager,
            members: fields.members,
            create_time: now,
            update_time: now,
            version: 1,
        }
    }

    /// `groups/<group id>`.
    pub fn name(&self) -> String {
        format!("{COLLECTION}/{}", self.group_id)
    }

    /// The fields as they are, for an update to be merged into.
    pub fn request(&self) -> GroupRequest {
        GroupRequest {
            display_name: self.display_name.clone(),
            description: self.description.clone(),
            email: self.email.clone(),
            manager: self.manager.clone(),
            members: self.members.clone(),
        }
    }

    /// Whether `subject` is a member.
    pub fn is_member(&self, subject: &str) -> bool {
        self.members
            .binary_search_by(|m| m.as_str().cmp(subject))
            .is_ok()
    }

    /// The audit trail of the creation: every field set, each member.
    pub fn creation_changes(&self) -> Vec<FieldChange> {
        let mut changes = vec![FieldChange::new("display_name", "", &self.display_name)];
        for (field, value) in [
            ("description", &self.description),
            ("email", &self.email),
            ("manager", &self.manager),
        ] {
            if !value.is_empty() {
                changes.push(FieldChange::new(field, "", value));
            }
        }
        changes.extend(
            self.members
                .iter()
                .map(|m| FieldChange::new("members", "", m)),
        );
        changes
    }

    /// Makes the group hold `fields`; returns what changed, nothing (and
    /// no new version) when nothing did.
    pub fn update(&mut self, fields: GroupFields, now: i64) -> Vec<FieldChange> {
        let mut changes = Vec::new();
        for (field, current, wanted) in [
            ("display_name", &mut self.display_name, fields.display_name),
            ("description", &mut self.description, fields.description),
            ("email", &mut self.email, fields.email),
            ("manager", &mut self.manager, fields.manager),
        ] {
            if *current != wanted {
                changes.push(FieldChange::new(field, &*current, &wanted));
                *current = wanted;
            }
        }
        let (added, removed) = member_diff(&self.members, &fields.members);
        changes.extend(removed.iter().map(|m| FieldChange::new("members", m, "")));
        changes.extend(added.iter().map(|m| FieldChange::new("members", "", m)));
        self.members = fields.members;
        if !changes.is_empty() {
            self.touch(now);
        }
        changes
    }

    /// Adds `member` (a valid subject). `None`, and nothing changed, when
    /// it is a member already; FAILED_PRECONDITION when the group is full.
    pub fn add_member(&mut self, member: &str, now: i64) -> Result<Option<FieldChange>, ApiError> {
        let Err(at) = self.members.binary_search_by(|m| m.as_str().cmp(member)) else {
            return Ok(None);
        };
        if self.members.len() >= MEMBERS_MAX {
            let name = self.name();
            return Err(ApiError::failed_precondition(
                "MEMBERS",
                &name,
                format!(
                    "{name} has {MEMBERS_MAX} members, the most a group may have; \
                     remove one first"
                ),
            ));
        }
        self.members.insert(at, member.to_owned());
        self.touch(now);
        Ok(Some(FieldChange::new("members", "", member)))
    }

    /// Removes `member`; NOT_FOUND naming it when it is not a member (the
    /// group is left untouched).
    pub fn remove_member(&mut self, member: &str, now: i64) -> Result<FieldChange, ApiError> {
        let Ok(at) = self.members.binary_search_by(|m| m.as_str().cmp(member)) else {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("{member:?} is not a member of {}", self.name()),
            ));
        };
        self.members.remove(at);
        self.touch(now);
        Ok(FieldChange::new("members", member, ""))
    }

    /// Marks the group deleted at `now`: its last version, so the deletion's
    /// event orders after every earlier one. Returns every field as it was.
    pub fn delete(&mut self, now: i64) -> Vec<FieldChange> {
        self.touch(now);
        let mut changes = vec![FieldChange::new("display_name", &self.display_name, "")];
        for (field, value) in [
            ("description", &self.description),
            ("email", &self.email),
            ("manager", &self.manager),
        ] {
            if !value.is_empty() {
                changes.push(FieldChange::new(field, value, ""));
            }
        }
        changes.extend(
            self.members
                .iter()
                .map(|m| FieldChange::new("members", m, "")),
        );
        changes
    }

    fn touch(&mut self, now: i64) {
        self.update_time = now;
        self.version += 1;
    }
}

#[cfg(test)]
mod tests;
