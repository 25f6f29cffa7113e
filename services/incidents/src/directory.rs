//! What other practices know and this one asks: who belongs to which
//! assignment group ([`Directory`], the identity service: asked before an
//! assignee is accepted, and for the members assignment rules pick from), and
//! which group supports a configuration item ([`Cmdb`], for rules that use
//! the CI's support group). Both are traits so tests and deployments without
//! those services can answer differently, and never by accepting everyone.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use itsm_auth::forward::OwnCredential;
use itsm_platform::client::{Traced, TracedChannel};
use itsm_platform::{ApiError, ErrorCode};
use itsm_proto::itsm::cmdb::v1::cmdb_service_client::CmdbServiceClient;
use itsm_proto::itsm::cmdb::v1::{Ci, GetCiRequest};
use itsm_proto::itsm::identity::v1::identity_service_client::IdentityServiceClient;
use itsm_proto::itsm::identity::v1::{CheckMembershipRequest, GetGroupRequest, Group};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Endpoint;

/// What the directory knows about a subject and a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    Member,
    NotMember,
    /// No such group.
    UnknownGroup,
}

/// Answers membership questions. `group` is the group's id (`network`), as
/// incidents store it.
#[async_trait]
pub trait Directory: Send + Sync + Debug {
    /// Whether `member` belongs to `group`. Errors are the caller's to
    /// return as they are (UNAVAILABLE when the directory cannot be reached).
    async fn is_member(&self, group: &str, member: &str) -> Result<Membership, ApiError>;

    /// The subjects in `group`, sorted; empty for an unknown group. Errors as
    /// for [`Directory::is_member`].
    async fn members(&self, group: &str) -> Result<Vec<String>, ApiError>;

    /// The subject of `group`'s manager: `None` when the group has none or
    /// there is no such group. Errors as for [`Directory::is_member`]; an
    /// escalation then goes ahead without notifying anyone.
    async fn manager(&self, group: &str) -> Result<Option<String>, ApiError>;
}

/// A directory that knows no group: every assignment is refused as naming an
/// unknown group. For deployments where the identity service is not wired
/// yet: refusing is safe, accepting every assignee would not be.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDirectory;

#[async_trait]
impl Directory for NoDirectory {
    async fn is_member(&self, _group: &str, _member: &str) -> Result<Membership, ApiError> {
        Ok(Membership::UnknownGroup)
    }

    async fn members(&self, _group: &str) -> Result<Vec<String>, ApiError> {
        Ok(Vec::new())
    }

    async fn manager(&self, _group: &str) -> Result<Option<String>, ApiError> {
        Ok(None)
    }
}

/// The identity service's `CheckMembership`, called with this service's own
/// credential (a membership check is made on nobody's behalf).
#[derive(Debug, Clone)]
pub struct IdentityDirectory {
    client: IdentityServiceClient<InterceptedService<TracedChannel, OwnCredential>>,
}

impl IdentityDirectory {
    /// A directory over a (traced) channel to the identity service.
    pub fn new(channel: TracedChannel, credential: OwnCredential) -> Self {
        Self {
            client: IdentityServiceClient::with_interceptor(channel, credential),
        }
    }

    /// A directory for the identity service at `addr` (`http://identity:50051`).
    /// Connects lazily: incidents start while identity is still starting.
    pub fn connect_lazy(addr: &str, credential: OwnCredential) -> Result<Self, ApiError> {
        let endpoint = Endpoint::from_shared(addr.to_owned())
            .map_err(|e| ApiError::internal(format!("bad identity service address {addr}: {e}")))?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(3));
        Ok(Self::new(Traced::connect_lazy(endpoint), credential))
    }
}

#[async_trait]
impl Directory for IdentityDirectory {
    async fn is_member(&self, group: &str, member: &str) -> Result<Membership, ApiError> {
        let request = CheckMembershipRequest {
            group: format!("groups/{group}"),
            member: member.to_owned(),
        };
        match self.client.clone().check_membership(request).await {
            Ok(reply) => {
                let reply = reply.into_inner();
                Ok(match (reply.group_exists, reply.member) {
                    (false, _) => Membership::UnknownGroup,
                    (true, true) => Membership::Member,
                    (true, false) => Membership::NotMember,
                })
            }
            Err(status) => {
                let error = ApiError::from_status(&status);
                // A group id or subject identity cannot parse names no
                // group, or no member: the answer, not a failure.
                if error.code() == ErrorCode::InvalidArgument {
                    let violations = error.field_violations();
                    let about_member =
                        !violations.is_empty() && violations.iter().all(|v| v.field == "member");
                    return Ok(if about_member {
                        Membership::NotMember
                    } else {
                        Membership::UnknownGroup
                    });
                }
                Err(identity_failure("CheckMembership", &status, &error))
            }
        }
    }

    async fn members(&self, group: &str) -> Result<Vec<String>, ApiError> {
        let found = self.group(group).await?;
        let mut members = found.map(|g| g.members).unwrap_or_default();
        members.sort();
        Ok(members)
    }

    async fn manager(&self, group: &str) -> Result<Option<String>, ApiError> {
        let found = self.group(group).await?;
        Ok(found.map(|g| g.manager).filter(|m| !m.is_empty()))
    }
}

impl IdentityDirectory {
    /// The group `group` (GetGroup); `None` when identity knows no such group
    /// or cannot parse its name.
    async fn group(&self, group: &str) -> Result<Option<Group>, ApiError> {
        let request = GetGroupRequest {
            name: format!("groups/{group}"),
        };
        match self.client.clone().get_group(request).await {
            Ok(reply) => Ok(Some(reply.into_inner())),
            Err(status) => {
                let error = ApiError::from_status(&status);
                match error.code() {
                    ErrorCode::NotFound | ErrorCode::InvalidArgument => Ok(None),
                    _ => Err(identity_failure("GetGroup", &status, &error)),
                }
            }
        }
    }
}

/// What a failed call to identity becomes. Identity's own refusals (its
/// credentials, its validation) are not the caller's to fix: they are
/// reported as ours to look at.
fn identity_failure(method: &str, status: &tonic::Status, error: &ApiError) -> ApiError {
    match error.code() {
        ErrorCode::Unavailable | ErrorCode::DeadlineExceeded => ApiError::new(
            ErrorCode::Unavailable,
            "the identity service, which knows group members, is unavailable; retry with backoff",
        ),
        _ => ApiError::internal(format!("identity {method} failed: {status:?}")),
    }
}

/// Answers which group supports a configuration item. `ci` is the incident's
/// `configuration_item`, `cis/<id>`.
#[async_trait]
pub trait Cmdb: Send + Sync + Debug {
    /// The support group's id (`network`, without `groups/`) of `ci`, or
    /// `None` when the CI has none or the CMDB knows no such CI. UNAVAILABLE
    /// when the CMDB cannot answer: assignment then degrades, it does not fail.
    async fn support_group(&self, ci: &str) -> Result<Option<String>, ApiError>;
}

/// No CMDB configured: every question
/// is UNAVAILABLE, so rules using the CI's support group leave incidents
/// unassigned and say so (`incidents.incident.assignment_degraded`) rather
/// than guessing a group.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCmdb;

#[async_trait]
impl Cmdb for NoCmdb {
    async fn support_group(&self, _ci: &str) -> Result<Option<String>, ApiError> {
        Err(ApiError::new(
            ErrorCode::Unavailable,
            "no CMDB is configured: the support group of a configuration item is unknown",
        ))
    }
}

/// The CMDB service's `GetCi` (support group only), called with this
/// service's own credential. A CI the CMDB does not know has no support
/// group; a CMDB that cannot be reached is UNAVAILABLE (assignment degrades).
#[derive(Debug, Clone)]
pub struct RemoteCmdb {
    client: CmdbServiceClient<InterceptedService<TracedChannel, OwnCredential>>,
}

impl RemoteCmdb {
    /// A CMDB over a (traced) channel to the CMDB service.
    pub fn new(channel: TracedChannel, credential: OwnCredential) -> Self {
        Self {
            client: CmdbServiceClient::with_interceptor(channel, credential),
        }
    }

    /// A CMDB for the service at `addr` (`http://cmdb:50051`), connecting lazily.
    pub fn connect_lazy(addr: &str, credential: OwnCredential) -> Result<Self, ApiError> {
        let endpoint = Endpoint::from_shared(addr.to_owned())
            .map_err(|e| ApiError::internal(format!("bad CMDB service address {addr}: {e}")))?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(3));
        Ok(Self::new(Traced::connect_lazy(endpoint), credential))
    }
}

impl RemoteCmdb {
    /// The fields `paths` of CI `ci` (GetCi with a read mask): `None` for a
    /// CI the CMDB does not know (or not a CI name at all); UNAVAILABLE,
    /// saying what was asked (`wanted`), when the CMDB cannot answer.
    pub async fn get_ci(
        &self,
        ci: &str,
        paths: &[&str],
        wanted: &str,
    ) -> Result<Option<Ci>, ApiError> {
        let request = GetCiRequest {
            name: ci.to_owned(),
            read_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            }),
        };
        match self.client.clone().get_ci(request).await {
            Ok(reply) => Ok(Some(reply.into_inner())),
            Err(status)
                if matches!(
                    status.code(),
                    tonic::Code::NotFound | tonic::Code::InvalidArgument
                ) =>
            {
                Ok(None)
            }
            Err(status) => Err(ApiError::new(
                ErrorCode::Unavailable,
                format!("the CMDB could not say {wanted} {ci}: {}", status.message()),
            )),
        }
    }
}

#[async_trait]
impl Cmdb for RemoteCmdb {
    async fn support_group(&self, ci: &str) -> Result<Option<String>, ApiError> {
        let found = self
            .get_ci(ci, &["support_group"], "which group supports")
            .await?;
        Ok(found
            .map(|ci| ci.support_group)
            .filter(|group| !group.is_empty()))
    }
}
