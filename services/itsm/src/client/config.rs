//! The client's own settings file: the server address and the token
//! `itsm login` stored, in the user's config directory
//! (`~/.config/itsm/client.toml` on Linux), readable by its owner only.
//!
//! Kept apart from the `--config` file of `itsm serve`/`itsm dev`: that one
//! configures a service, this one a person's terminal, and it holds a secret.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ClientError;

/// What `itsm login` remembers.
#[derive(Default, Deserialize, Serialize)]
pub struct ClientConfig {
    /// The address the commands call when neither --server nor ITSM_SERVER says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The bearer token the commands send when ITSM_TOKEN is not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl std::fmt::Debug for ClientConfig {
    // The token is a credential: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// `<config dir>/itsm/client.toml`.
pub fn path() -> Result<PathBuf, ClientError> {
    dirs::config_dir()
        .map(|dir| dir.join("itsm").join("client.toml"))
        .ok_or(ClientError::NoConfigDir)
}

impl ClientConfig {
    /// The stored settings; empty when nothing was stored yet.
    pub fn load(path: &Path) -> Result<Self, ClientError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::default());
            }
            Err(source) => {
                return Err(ClientError::ConfigFile {
                    path: path.to_owned(),
                    reason: source.to_string(),
                });
            }
        };
        toml::from_str(&text).map_err(|error| ClientError::ConfigFile {
            path: path.to_owned(),
            reason: error.message().to_owned(),
        })
    }

    /// Writes the settings, replacing the file in one step (a reader never
    /// sees half a file) with mode 0600 from the start (the token is never
    /// readable by others, not even for a moment).
    pub fn store(&self, path: &Path) -> Result<(), ClientError> {
        let fail = |reason: String| ClientError::ConfigFile {
            path: path.to_owned(),
            reason,
        };
        let text = toml::to_string(self).map_err(|error| fail(error.to_string()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|error| fail(error.to_string()))?;
        let staging = dir.join(format!(".client.toml.{}", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options
            .open(&staging)
            .and_then(|mut file| {
                file.write_all(text.as_bytes())
                    .and_then(|()| file.sync_all())
            })
            .and_then(|()| std::fs::rename(&staging, path));
        if let Err(error) = written {
            let _ = std::fs::remove_file(&staging);
            return Err(fail(error.to_string()));
        }
        Ok(())
    }
}
