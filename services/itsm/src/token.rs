//! Development credentials: the signing key `itsm dev` keeps in its data
//! directory, and the tokens `itsm dev` and `itsm token` mint with it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use itsm_auth::jwt::{TokenRequest, mint_hs256};
use itsm_platform::config::{Config, Secret};
use rand::RngCore;

use crate::cli::CliError;

const KEY_FILE: &str = "dev-signing-key";

/// The HS256 secret of a dev data directory, created (readable by its owner
/// only) on first use.
pub fn dev_signing_key(data_dir: &Path) -> Result<Secret, CliError> {
    let path = data_dir.join(KEY_FILE);
    let io = |source| CliError::DataDir {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(key) if key.trim().len() >= 32 => return Ok(Secret::new(key.trim())),
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(io(error)),
    }
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(io)?;
    file.write_all(key.as_bytes()).map_err(io)?;
    Ok(Secret::new(key))
}

/// The secret tokens are minted with: the configured one, else the dev key.
pub fn signing_secret(config: &Config, data_dir: Option<PathBuf>) -> Result<Secret, CliError> {
    if let Some(secret) = &config.auth_hs256_secret {
        return Ok(secret.clone());
    }
    let data_dir = data_dir.ok_or(CliError::NoSigningKey)?;
    if !data_dir.join(KEY_FILE).is_file() {
        return Err(CliError::NoSigningKey);
    }
    dev_signing_key(&data_dir)
}

/// Mints a token for `subject` with `roles`.
pub fn mint(
    config: &Config,
    secret: &Secret,
    subject: &str,
    name: &str,
    roles: &[String],
    groups: &[String],
    ttl: Duration,
) -> Result<String, CliError> {
    if let Some(unknown) = roles
        .iter()
        .find(|r| !itsm_auth::roles::ALL.contains(&r.as_str()))
    {
        return Err(CliError::UnknownRole(unknown.clone()));
    }
    let request = TokenRequest {
        subject,
        name,
        roles,
        groups,
        ttl,
    };
    let settings = itsm_auth::config::jwt_settings(config);
    Ok(mint_hs256(secret.expose().as_bytes(), &settings, &request)?)
}
