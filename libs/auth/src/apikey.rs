//! API keys for service accounts: `itsm_<key id>_<secret>`.
//!
//! The key id (12 hex characters) is stored in clear to find the key; the
//! secret (32 random bytes, base64url) only as its SHA-256 hash, compared in
//! constant time. A slow password hash is not needed: the secret is random
//! and long, so the hash cannot be brute-forced. The full key is shown once,
//! when it is created.

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::AuthError;
use crate::principal::Principal;

const PREFIX: &str = "itsm_";
const KEY_ID_LEN: usize = 12;

/// A new key: what to store (id and hash) and what to show once (plaintext).
#[derive(Clone, PartialEq, Eq)]
pub struct GeneratedKey {
    pub key_id: String,
    pub secret_hash: String,
    pub plaintext: String,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// Makes a new random key.
pub fn generate() -> GeneratedKey {
    let mut rng = rand::rng();
    let mut id = [0_u8; KEY_ID_LEN / 2];
    rng.fill_bytes(&mut id);
    let mut secret = [0_u8; 32];
    rng.fill_bytes(&mut secret);
    let key_id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let secret = URL_SAFE_NO_PAD.encode(secret);
    GeneratedKey {
        secret_hash: hash_secret(&secret),
        plaintext: format!("{PREFIX}{key_id}_{secret}"),
        key_id,
    }
}

/// The parts of a presented key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    pub key_id: &'a str,
    pub secret: &'a str,
}

/// Splits a presented key; a malformed one is UNAUTHENTICATED.
pub fn parse(key: &str) -> Result<ParsedKey<'_>, AuthError> {
    let malformed =
        || AuthError::Unauthenticated("malformed API key: expected itsm_<id>_<secret>".into());
    let rest = key.strip_prefix(PREFIX).ok_or_else(malformed)?;
    let (key_id, secret) = rest.split_once('_').ok_or_else(malformed)?;
    let id_ok = key_id.len() == KEY_ID_LEN && key_id.bytes().all(|b| b.is_ascii_hexdigit());
    if !id_ok || secret.len() < 32 {
        return Err(malformed());
    }
    Ok(ParsedKey { key_id, secret })
}

/// The stored form of a secret.
pub fn hash_secret(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `secret` matches `stored_hash`, in time independent of where they differ.
pub fn verify_secret(secret: &str, stored_hash: &str) -> bool {
    hash_secret(secret)
        .as_bytes()
        .ct_eq(stored_hash.as_bytes())
        .into()
}

/// Turns a presented API key into the service account it belongs to. The
/// identity service answers for its own database; every other service asks
/// it over gRPC, with a short cache.
#[async_trait]
pub trait ApiKeyVerifier: Send + Sync + std::fmt::Debug {
    /// UNAUTHENTICATED for unknown, revoked or expired keys (the message says
    /// which, without echoing the key); Unavailable when it cannot be checked now.
    async fn verify(&self, key: &str) -> Result<Principal, AuthError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_verify() {
        let key = generate();
        let parsed = parse(&key.plaintext).unwrap();
        assert_eq!(parsed.key_id, key.key_id);
        assert!(verify_secret(parsed.secret, &key.secret_hash));
        assert!(!verify_secret(
            "not the secret at all, not at all",
            &key.secret_hash
        ));
        assert_ne!(generate().plaintext, key.plaintext);
        assert!(
            !format!("{key:?}").contains(parsed.secret),
            "Debug hides the secret"
        );
    }

    #[test]
    fn malformed_keys_are_refused_without_echo() {
        for bad in [
            "",
            "itsm_",
            "itsm_abc_def",
            "sk_0123456789ab_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "itsm_0123456789zz_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        ] {
            let error = parse(bad).unwrap_err();
            assert!(!bad.is_empty() || error.to_string().contains("malformed"));
            if bad.len() > 6 {
                assert!(!error.to_string().contains(bad));
            }
        }
    }
}
