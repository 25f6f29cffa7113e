//! Watchers and links: who follows an incident, and what it relates to.
//! Adding what is there already, or removing what is not, changes nothing
//! and succeeds, so a retried call is harmless.

use itsm_platform::{ApiError, Violations};
use itsm_store::audit::{Actor, FieldChange};

use super::enums::{self, LinkType};
use super::incident::{Incident, Link};

/// The collection a link's target must be in, by type (`None`: any).
pub fn target_collection(link_type: LinkType) -> Option<&'static str> {
    match link_type {
        LinkType::AffectedCi => Some("cis"),
        LinkType::CausedBy | LinkType::ResolvedBy => Some("changes"),
        LinkType::Problem => Some("problems"),
        LinkType::KnowledgeArticle => Some("articles"),
        LinkType::DuplicateOf => Some(super::COLLECTION),
        LinkType::Related => None,
    }
}

/// A watcher to add or remove, checked.
pub fn check_watcher(watcher: &str) -> Result<(), ApiError> {
    let mut v = Violations::new();
    v.check(
        !watcher.is_empty(),
        "watcher",
        "is required: the subject to notify",
    );
    super::check_identifier(&mut v, "watcher", watcher);
    v.into_result()
}

/// A link's type and target, checked; `name` is the incident's own name,
/// which it may not link to.
pub fn check_link(name: &str, link_type: i32, target: &str) -> Result<LinkType, ApiError> {
    let mut v = Violations::new();
    let parsed = enums::required(
        &mut v,
        "type",
        link_type,
        LinkType::from_number,
        LinkType::allowed,
    );
    v.check(
        !target.is_empty(),
        "target",
        "is required: the resource name linked to",
    );
    if let Some(link_type) = parsed {
        super::check_reference(&mut v, "target", target, target_collection(link_type));
    }
    v.check(
        target != name,
        "target",
        "an incident cannot link to itself",
    );
    v.into_result()?;
    Ok(parsed.unwrap_or(LinkType::Related))
}

/// How a link reads in the audit trail: `PROBLEM problems/PRB0000042`.
fn link_text(link_type: LinkType, target: &str) -> String {
    format!("{link_type} {target}")
}

impl Incident {
    /// Adds a watcher; `None` when it watches already.
    pub fn add_watcher(&mut self, watcher: &str) -> Option<FieldChange> {
        match self.watchers.binary_search_by(|w| w.as_str().cmp(watcher)) {
            Ok(_) => None,
            Err(at) => {
                self.watchers.insert(at, watcher.to_owned());
                Some(FieldChange::new("watchers", "", watcher))
            }
        }
    }

    /// Removes a watcher; `None` when it did not watch.
    pub fn remove_watcher(&mut self, watcher: &str) -> Option<FieldChange> {
        let at = self.watchers.iter().position(|w| w == watcher)?;
        self.watchers.remove(at);
        Some(FieldChange::new("watchers", watcher, ""))
    }

    /// Adds a link made by `by` at `now`; `None` when it exists already.
    pub fn add_link(
        &mut self,
        link_type: LinkType,
        target: &str,
        by: &Actor,
        now: i64,
    ) -> Option<FieldChange> {
        if self.has_link(link_type, target) {
            return None;
        }
        self.links.push(Link {
            link_type,
            target: target.to_owned(),
            created_by: by.clone(),
            create_time: now,
        });
        Some(FieldChange::new("links", "", link_text(link_type, target)))
    }

    /// Removes a link; `None` when there was none.
    pub fn remove_link(&mut self, link_type: LinkType, target: &str) -> Option<FieldChange> {
        let at = self
            .links
            .iter()
            .position(|l| l.link_type == link_type && l.target == target)?;
        self.links.remove(at);
        Some(FieldChange::new("links", link_text(link_type, target), ""))
    }

    fn has_link(&self, link_type: LinkType, target: &str) -> bool {
        self.links
            .iter()
            .any(|l| l.link_type == link_type && l.target == target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_point_into_the_collection_of_their_type() {
        let me = "incidents/INC0000001";
        assert_eq!(
            check_link(me, 3, "problems/PRB0000042").unwrap(),
            LinkType::Problem
        );
        assert_eq!(
            check_link(me, 7, "anything/at-all").unwrap(),
            LinkType::Related
        );
        let fields = |e: ApiError| -> Vec<String> {
            e.field_violations()
                .iter()
                .map(|v| v.field.clone())
                .collect()
        };
        assert_eq!(
            fields(check_link(me, 3, "changes/CHG1").unwrap_err()),
            ["target"]
        );
        assert_eq!(fields(check_link(me, 6, me).unwrap_err()), ["target"]);
        assert_eq!(
            fields(check_link(me, 0, "").unwrap_err()),
            ["type", "target"]
        );
        assert_eq!(fields(check_link(me, 99, "cis/1").unwrap_err()), ["type"]);
    }

    #[test]
    fn watchers_are_subjects() {
        assert!(check_watcher("ada").is_ok());
        assert!(check_watcher("").is_err());
        assert!(check_watcher("ada lovelace").is_err());
    }
}
