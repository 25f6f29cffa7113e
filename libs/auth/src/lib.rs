//! Authentication and authorization, checked by every service on every call
//! (internal systems call services directly, not only through the gateway).
//!
//! - [`principal`]: who is calling: subject, name, roles, groups, tenant.
//! - [`jwt`]: bearer tokens (issuer, audience, expiry, clock skew; RS256/ES256
//!   keys from a JWKS file or URL, cached and refreshed on rotation; HS256 with
//!   a configured secret for development).
//! - [`apikey`]: API keys for service accounts: format, generation, hashing,
//!   and the [`apikey::ApiKeyVerifier`] the identity service answers.
//! - [`policy`]: per-service tables mapping each RPC to a permission and the
//!   roles that hold it. Default deny: a method with no rule is refused.
//! - [`rows`]: the row-level rules (own tickets, hidden work notes, drafts)
//!   every practice applies on top of the tables.
//! - [`layer`]: the tower layer every service installs; [`forward`]: the
//!   client interceptor that forwards the caller's credentials.

pub mod apikey;
pub mod authn;
pub mod call;
pub mod config;
pub mod error;
pub mod forward;
pub mod jwt;
pub mod layer;
pub mod policy;
pub mod principal;
pub mod remote;
pub mod roles;
pub mod rows;

pub use authn::Authenticator;
pub use call::Call;
pub use error::AuthError;
pub use layer::{Guard, Protected};
pub use principal::{Principal, PrincipalKind, principal};
