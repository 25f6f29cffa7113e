//! Row-level rules ITIL needs on top of the per-method tables, in one place
//! so every practice applies them the same way:
//! - a requester sees and comments on their own tickets and requests only
//!   (those they are the caller/requester of, or watch);
//! - work notes are hidden from requesters;
//! - draft knowledge articles are visible to their author and reviewers only.
//!
//! A principal is "requester only" when `requester` is the only role that
//! lets it near tickets; anyone also holding a working role (agent, a
//! manager, CAB, auditor, admin, service) sees tickets as that role.

use crate::principal::Principal;
use crate::roles;

/// Roles that see every ticket of the practices they may read.
const WORKING_ROLES: &[&str] = &[
    roles::AGENT,
    roles::PROBLEM_MANAGER,
    roles::CHANGE_MANAGER,
    roles::CAB_MEMBER,
    roles::CATALOG_ADMIN,
    roles::CMDB_ADMIN,
    roles::KNOWLEDGE_AUTHOR,
    roles::AUDITOR,
    roles::ADMIN,
    roles::SERVICE,
];

/// True when the principal sees tickets only as a requester.
pub fn is_requester_only(principal: &Principal) -> bool {
    !WORKING_ROLES.iter().any(|role| principal.has_role(role))
}

/// The subject a ticket list must be restricted to: `Some(subject)` for a
/// requester-only principal, `None` for everyone else.
pub fn ticket_scope(principal: &Principal) -> Option<&str> {
    is_requester_only(principal).then_some(principal.subject.as_str())
}

/// Whether the principal may see (and comment on) a ticket whose
/// caller/requester is `owner` and whose watch list is `watchers`.
pub fn may_see_ticket(principal: &Principal, owner: &str, watchers: &[String]) -> bool {
    !is_requester_only(principal)
        || owner == principal.subject
        || watchers.contains(&principal.subject)
}

/// Whether the principal may see work notes (internal journal entries).
pub fn may_see_work_notes(principal: &Principal) -> bool {
    !is_requester_only(principal)
}

/// Whether the principal may see a draft (or in-review) article written by
/// `author`: its author, knowledge authors (who review each other), admins.
pub fn may_see_draft(principal: &Principal, author: &str) -> bool {
    principal.subject == author
        || principal.has_role(roles::KNOWLEDGE_AUTHOR)
        || principal.is_admin()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::PrincipalKind;

    fn who(subject: &str, roles: &[&str]) -> Principal {
        Principal {
            subject: subject.into(),
            display_name: subject.into(),
            kind: PrincipalKind::User,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            groups: vec![],
            tenant: String::new(),
        }
    }

    #[test]
    fn requesters_see_their_own_and_watched_tickets_only() {
        let ada = who("ada", &["requester"]);
        assert_eq!(ticket_scope(&ada), Some("ada"));
        assert!(may_see_ticket(&ada, "ada", &[]));
        assert!(may_see_ticket(&ada, "bob", &["ada".into()]));
        assert!(!may_see_ticket(&ada, "bob", &[]));
        assert!(!may_see_work_notes(&ada));
    }

    #[test]
    fn working_roles_see_every_ticket_and_work_notes() {
        for role in ["agent", "auditor", "admin", "service", "problem_manager"] {
            let p = who("x", &["requester", role]);
            assert_eq!(ticket_scope(&p), None, "{role}");
            assert!(may_see_ticket(&p, "someone", &[]), "{role}");
            assert!(may_see_work_notes(&p), "{role}");
        }
    }

    #[test]
    fn drafts_are_for_their_author_and_reviewers() {
        assert!(may_see_draft(&who("ada", &["requester"]), "ada"));
        assert!(may_see_draft(&who("bob", &["knowledge_author"]), "ada"));
        assert!(may_see_draft(&who("root", &["admin"]), "ada"));
        assert!(!may_see_draft(&who("eve", &["agent"]), "ada"));
        assert!(!may_see_draft(&who("eve", &["requester"]), "ada"));
    }
}
