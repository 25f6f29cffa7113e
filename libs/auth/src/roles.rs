//! The roles a principal can hold. Permissions are granted to roles in each
//! service's policy table; these two are special everywhere:
//! [`ADMIN`] may call every method, [`AUDITOR`] every method marked `read`.

pub const REQUESTER: &str = "requester";
pub const AGENT: &str = "agent";
pub const PROBLEM_MANAGER: &str = "problem_manager";
pub const CHANGE_MANAGER: &str = "change_manager";
pub const CAB_MEMBER: &str = "cab_member";
pub const CATALOG_ADMIN: &str = "catalog_admin";
pub const CMDB_ADMIN: &str = "cmdb_admin";
pub const KNOWLEDGE_AUTHOR: &str = "knowledge_author";
/// Read-only access to everything, for auditors.
pub const AUDITOR: &str = "auditor";
/// Everything.
pub const ADMIN: &str = "admin";
/// Other internal systems and services calling on their own behalf.
pub const SERVICE: &str = "service";

/// Every role, for validating policy tables and token requests.
pub const ALL: &[&str] = &[
    REQUESTER,
    AGENT,
    PROBLEM_MANAGER,
    CHANGE_MANAGER,
    CAB_MEMBER,
    CATALOG_ADMIN,
    CMDB_ADMIN,
    KNOWLEDGE_AUTHOR,
    AUDITOR,
    ADMIN,
    SERVICE,
];
