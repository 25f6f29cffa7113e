//! Bearer token verification: every way a token can be wrong gets its own
//! UNAUTHENTICATED reason; JWKS keys rotate without a restart, from a file
//! or a URL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use itsm_auth::AuthError;
use itsm_auth::jwt::{JwksSource, JwtSettings, JwtVerifier, TokenRequest, mint_hs256};
use itsm_auth::principal::PrincipalKind;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::ecdsa::SigningKey;
use p256::pkcs8::{EncodePrivateKey, LineEnding};

const SECRET: &[u8] = b"a development secret of 32+ bytes!";

fn settings() -> JwtSettings {
    JwtSettings {
        issuer: "https://idp.example.test".into(),
        audience: "itsm".into(),
        clock_skew: Duration::from_secs(30),
        roles_claim: "roles".into(),
        groups_claim: "groups".into(),
    }
}

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn claims(overrides: serde_json::Value) -> serde_json::Value {
    let mut claims = serde_json::json!({
        "iss": "https://idp.example.test",
        "aud": "itsm",
        "sub": "u-1042",
        "name": "Ada Lovelace",
        "exp": now() + 600,
        "roles": ["agent"],
        "groups": ["network"],
    });
    for (key, value) in overrides.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(key);
        } else {
            claims[key] = value.clone();
        }
    }
    claims
}

fn hs256(claims: &serde_json::Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

async fn reason(verifier: &JwtVerifier, token: &str) -> String {
    match verifier.verify(token).await {
        Err(AuthError::Unauthenticated(reason)) => reason,
        other => panic!("expected UNAUTHENTICATED, got {other:?}"),
    }
}

#[tokio::test]
async fn a_valid_token_yields_its_principal() {
    let verifier = JwtVerifier::hs256(SECRET, settings());
    let principal = verifier
        .verify(&hs256(&claims(serde_json::json!({})), SECRET))
        .await
        .unwrap();
    assert_eq!(principal.subject, "u-1042");
    assert_eq!(principal.display_name, "Ada Lovelace");
    assert_eq!(principal.roles, ["agent"]);
    assert_eq!(principal.groups, ["network"]);
    assert_eq!(principal.kind, PrincipalKind::User);
}

#[tokio::test]
async fn each_bad_token_says_what_is_wrong() {
    let verifier = JwtVerifier::hs256(SECRET, settings());
    let cases = [
        (
            hs256(&claims(serde_json::json!({"exp": now() - 120})), SECRET),
            "token expired",
        ),
        (
            hs256(&claims(serde_json::json!({"nbf": now() + 600})), SECRET),
            "token not valid yet (nbf is in the future)",
        ),
        (
            hs256(&claims(serde_json::json!({"aud": "billing"})), SECRET),
            "token audience does not include \"itsm\"",
        ),
        (
            hs256(
                &claims(serde_json::json!({"iss": "https://evil.test"})),
                SECRET,
            ),
            "token issuer is not \"https://idp.example.test\"",
        ),
        (
            hs256(
                &claims(serde_json::json!({})),
                b"another secret of 32+ bytes, sure",
            ),
            "token signature does not verify",
        ),
        (
            hs256(&claims(serde_json::json!({"exp": null})), SECRET),
            "token lacks the exp claim",
        ),
        ("not.a.jwt".to_owned(), "malformed bearer token: not a JWT"),
    ];
    for (token, expected) in cases {
        assert_eq!(reason(&verifier, &token).await, expected);
    }
    // Within the clock skew, a just-expired token still passes.
    let lenient = hs256(&claims(serde_json::json!({"exp": now() - 10})), SECRET);
    assert!(verifier.verify(&lenient).await.is_ok());
}

#[tokio::test]
async fn minted_development_tokens_verify() {
    let roles = vec!["admin".to_owned(), "service".to_owned()];
    let token = mint_hs256(
        SECRET,
        &settings(),
        &TokenRequest {
            subject: "svc-ci",
            name: "CI",
            roles: &roles,
            groups: &[],
            ttl: Duration::from_secs(60),
        },
    )
    .unwrap();
    let principal = JwtVerifier::hs256(SECRET, settings())
        .verify(&token)
        .await
        .unwrap();
    assert_eq!(principal.roles, roles);
    assert_eq!(principal.kind, PrincipalKind::ServiceAccount);
}

/// An ES256 key pair: the signing key and its public JWK.
fn es256_key(kid: &str) -> (EncodingKey, serde_json::Value) {
    let signing = SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    let pem = signing.to_pkcs8_pem(LineEnding::LF).unwrap();
    let point = signing.verifying_key().to_encoded_point(false);
    let jwk = serde_json::json!({
        "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
        "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
    });
    (EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(), jwk)
}

fn es256(key: &EncodingKey, kid: &str) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, &claims(serde_json::json!({})), key).unwrap()
}

#[tokio::test]
async fn jwks_file_keys_rotate_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let (k1, jwk1) = es256_key("k1");
    let (k2, jwk2) = es256_key("k2");
    std::fs::write(&path, serde_json::json!({"keys": [jwk1]}).to_string()).unwrap();
    let verifier = JwtVerifier::jwks(JwksSource::File(path.clone()), settings()).unwrap();
    assert_eq!(
        verifier.verify(&es256(&k1, "k1")).await.unwrap().subject,
        "u-1042"
    );
    assert_eq!(
        reason(&verifier, &es256(&k2, "k2")).await,
        "token signed with unknown key id \"k2\""
    );

    // The identity provider rotates to k2; an unknown kid re-reads the set
    // (at most every 30 s, so a fresh verifier stands in for the wait).
    std::fs::write(&path, serde_json::json!({"keys": [jwk2]}).to_string()).unwrap();
    let verifier = JwtVerifier::jwks(JwksSource::File(path), settings()).unwrap();
    assert!(verifier.verify(&es256(&k2, "k2")).await.is_ok());
    assert_eq!(
        reason(&verifier, &es256(&k1, "k1")).await,
        "token signed with unknown key id \"k1\""
    );

    // A token with a kid but signed by another key.
    let (forger, _) = es256_key("k2");
    assert_eq!(
        reason(&verifier, &es256(&forger, "k2")).await,
        "token signature does not verify"
    );
    // An HS256 token presented to an ES256 key: refused, not confused.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k2".into());
    let confused = jsonwebtoken::encode(
        &header,
        &claims(serde_json::json!({})),
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    assert!(reason(&verifier, &confused).await.contains("accepts ES256"));
}

#[tokio::test]
async fn jwks_from_a_url_and_an_unreachable_one() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (key, jwk) = es256_key("url-key");
    let body = serde_json::json!({"keys": [jwk]}).to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0_u8; 4096];
            let _ = socket.read(&mut buf).await;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    let verifier = JwtVerifier::jwks(
        JwksSource::parse(&format!("http://{addr}/jwks.json")),
        settings(),
    )
    .unwrap();
    assert!(verifier.verify(&es256(&key, "url-key")).await.is_ok());

    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let verifier = JwtVerifier::jwks(
        JwksSource::parse(&format!("http://{dead}/jwks.json")),
        settings(),
    )
    .unwrap();
    match verifier.verify(&es256(&key, "url-key")).await {
        Err(AuthError::Unavailable(reason)) => {
            assert!(reason.starts_with("cannot fetch the JWKS from"), "{reason}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
