//! The authenticated caller, available to every handler.

use itsm_store::audit::Actor;

use crate::error::AuthError;
use crate::roles;

/// Whether the caller is a person or a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    User,
    ServiceAccount,
}

/// Who is calling, as the credential says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Stable identifier: the token's `sub`, or the service account's name.
    pub subject: String,
    pub display_name: String,
    pub kind: PrincipalKind,
    /// Role names (see [`crate::roles`]); unknown roles are kept but grant nothing.
    pub roles: Vec<String>,
    pub groups: Vec<String>,
    /// Empty in a single-tenant deployment.
    pub tenant: String,
}

impl Principal {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    pub fn is_admin(&self) -> bool {
        self.has_role(roles::ADMIN)
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// The principal as recorded in audit entries and events.
    pub fn actor(&self) -> Actor {
        use itsm_store::audit::Actor as A;
        let kind = match self.kind {
            PrincipalKind::User => 1,
            PrincipalKind::ServiceAccount => 2,
        };
        A {
            subject: self.subject.clone(),
            display_name: self.display_name.clone(),
            kind,
        }
    }
}

/// The caller of `request`, put there by the auth layer. A handler reached
/// without one is a wiring bug: it answers UNAUTHENTICATED rather than act
/// for nobody.
pub fn principal<T>(request: &tonic::Request<T>) -> Result<&Principal, tonic::Status> {
    request.extensions().get::<Principal>().ok_or_else(|| {
        tonic::Status::from(AuthError::Unauthenticated(
            "no authenticated caller for this call".into(),
        ))
    })
}
