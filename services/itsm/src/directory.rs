//! Where practices learn group membership ("the assignee must belong to the
//! group"): the identity service.
//!
//! In `itsm dev` identity runs in this process, so its database answers
//! directly. In `itsm serve` the practice asks identity over gRPC with its own
//! credential: `ITSM_SERVICE_API_KEY`, or, where tokens are signed with a
//! shared development secret, a service token minted with it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use itsm_auth::forward::OwnCredential;
use itsm_incidents::{
    Cmdb, Directory, IdentityDirectory, Membership, NoCmdb, NoDirectory, RemoteCmdb,
};
use itsm_platform::ApiError;
use itsm_platform::config::Config;
use itsm_sla::zones::{NoZones, ZoneSource};
use itsm_store::{Db, StoreError};

use crate::practice::Practice;

/// Membership from the identity database of this process (`itsm dev`).
#[derive(Debug)]
pub struct LocalDirectory {
    identity: Db,
}

impl LocalDirectory {
    pub fn new(identity: Db) -> Self {
        Self { identity }
    }
}

#[async_trait]
impl Directory for LocalDirectory {
    async fn is_member(&self, group: &str, member: &str) -> Result<Membership, ApiError> {
        let mut conn = self
            .identity
            .pool()
            .acquire()
            .await
            .map_err(StoreError::from)?;
        let found =
            itsm_identity::store::group::select_membership(&mut conn, group, member).await?;
        Ok(match found {
            None => Membership::UnknownGroup,
            Some(true) => Membership::Member,
            Some(false) => Membership::NotMember,
        })
    }

    async fn members(&self, group: &str) -> Result<Vec<String>, ApiError> {
        let mut conn = self
            .identity
            .pool()
            .acquire()
            .await
            .map_err(StoreError::from)?;
        let found = itsm_identity::store::group::select_group(&mut conn, group, "").await?;
        Ok(found.map(|stored| stored.group.members).unwrap_or_default())
    }

    async fn manager(&self, group: &str) -> Result<Option<String>, ApiError> {
        let mut conn = self
            .identity
            .pool()
            .acquire()
            .await
            .map_err(StoreError::from)?;
        let found = itsm_identity::store::group::select_group(&mut conn, group, "").await?;
        Ok(found
            .map(|stored| stored.group.manager)
            .filter(|manager| !manager.is_empty()))
    }
}

/// CI support groups and time zones from the CMDB of this process (`itsm
/// dev`): its database, and its API for the zone up a CI's location chain.
#[derive(Debug)]
pub struct LocalCmdb {
    cmdb: Db,
    api: itsm_cmdb::CmdbApi,
}

impl LocalCmdb {
    /// Over the CMDB database, sharing the CMDB service's `cache`.
    pub fn new(cmdb: Db, cache: Arc<dyn itsm_events::cache::Cache>) -> Self {
        let api = itsm_cmdb::CmdbApi::new(cmdb.clone(), cache, itsm_cmdb::CACHE_PREFIX);
        Self { cmdb, api }
    }
}

#[async_trait]
impl ZoneSource for LocalCmdb {
    async fn ci_time_zone(&self, ci: &str) -> Result<Option<String>, ApiError> {
        self.api.ci_time_zone(ci).await
    }
}

/// CI time zones from the CMDB service (GetCi's `time_zone`).
#[derive(Debug)]
pub struct RemoteZones(RemoteCmdb);

#[async_trait]
impl ZoneSource for RemoteZones {
    async fn ci_time_zone(&self, ci: &str) -> Result<Option<String>, ApiError> {
        let found = self
            .0
            .get_ci(ci, &["time_zone"], "the time zone of")
            .await?;
        Ok(found.map(|ci| ci.time_zone).filter(|zone| !zone.is_empty()))
    }
}

/// Where the served SLA practice learns a CI's time zone (definitions with
/// time_zone_source CI_LOCATION): the CMDB service at `ITSM_CMDB_ADDR`, or
/// none (those clocks then count in their definition's zone, with a warning
/// at start).
pub fn zones_for_serve(
    config: &Config,
    practice: Practice,
) -> Result<Arc<dyn ZoneSource>, ApiError> {
    if practice != Practice::Sla {
        return Ok(Arc::new(NoZones));
    }
    match (&config.cmdb_addr, own_credential(config, practice)) {
        (Some(addr), Some(credential)) => Ok(Arc::new(RemoteZones(RemoteCmdb::connect_lazy(
            addr, credential,
        )?))),
        (addr, _) => {
            tracing::warn!(
                cmdb = ?addr,
                "no CMDB service (ITSM_CMDB_ADDR) or no credential for it: SLA definitions with time_zone_source CI_LOCATION count in their own zone"
            );
            Ok(Arc::new(NoZones))
        }
    }
}

#[async_trait]
impl Cmdb for LocalCmdb {
    async fn support_group(&self, ci: &str) -> Result<Option<String>, ApiError> {
        let mut conn = self.cmdb.pool().acquire().await.map_err(StoreError::from)?;
        let found = itsm_cmdb::write::load(&mut conn, ci, "").await?;
        Ok(found
            .map(|stored| stored.ci.support_group)
            .filter(|group| !group.is_empty()))
    }
}

/// The CMDB a served practice asks for CI support groups: the CMDB service at
/// `ITSM_CMDB_ADDR` with the practice's own credential, or none (rules using
/// a CI's support group then degrade, with a warning at start).
pub fn cmdb_for_serve(config: &Config, practice: Practice) -> Result<Arc<dyn Cmdb>, ApiError> {
    if practice != Practice::Incidents {
        return Ok(Arc::new(NoCmdb));
    }
    match (&config.cmdb_addr, own_credential(config, practice)) {
        (Some(addr), Some(credential)) => Ok(Arc::new(RemoteCmdb::connect_lazy(addr, credential)?)),
        (addr, _) => {
            tracing::warn!(
                cmdb = ?addr,
                "no CMDB service (ITSM_CMDB_ADDR) or no credential for it: assignment rules that use a CI's support group leave incidents unassigned"
            );
            Ok(Arc::new(NoCmdb))
        }
    }
}

/// The directory of a served practice, or none (every group then unknown,
/// with a warning, so assignments are refused rather than unchecked).
pub fn for_serve(config: &Config, practice: Practice) -> Result<Arc<dyn Directory>, ApiError> {
    let credential = own_credential(config, practice);
    match (&config.identity_addr, credential) {
        (Some(addr), Some(credential)) => {
            Ok(Arc::new(IdentityDirectory::connect_lazy(addr, credential)?))
        }
        (addr, _) => {
            tracing::warn!(
                identity = ?addr,
                "no identity service or no ITSM_SERVICE_API_KEY: group membership cannot be checked, so assignments to groups are refused"
            );
            Ok(Arc::new(NoDirectory))
        }
    }
}

/// The practice's credential for calls on nobody's behalf.
fn own_credential(config: &Config, practice: Practice) -> Option<OwnCredential> {
    if let Some(key) = &config.service_api_key {
        return OwnCredential::api_key(key.expose());
    }
    let secret = config.auth_hs256_secret.as_ref()?;
    let subject = format!("svc-{}", practice.name());
    let roles = vec![itsm_auth::roles::SERVICE.to_owned()];
    let request = itsm_auth::jwt::TokenRequest {
        subject: &subject,
        name: &subject,
        roles: &roles,
        groups: &[],
        // Development and compose only (production uses ITSM_SERVICE_API_KEY).
        ttl: Duration::from_secs(365 * 24 * 3600),
    };
    let settings = itsm_auth::config::jwt_settings(config);
    let token = itsm_auth::jwt::mint_hs256(secret.expose().as_bytes(), &settings, &request).ok()?;
    OwnCredential::bearer(&token)
}
