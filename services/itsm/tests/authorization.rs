//! Every RPC of every service, enumerated from the descriptor set, called for
//! real against `itsm dev`: anonymous callers and callers with no role are
//! refused, every method has a rule in its service's policy table (so a new
//! method cannot ship unprotected), and each role gets exactly what the table
//! grants it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::Duration;

use itsm_auth::jwt::{TokenRequest, mint_hs256};
use itsm_auth::policy::Policy;
use itsm_auth::principal::{Principal, PrincipalKind};
use itsm_auth::roles;
use prost::Message;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

const POLICIES: [&str; 8] = [
    itsm_incidents::POLICY,
    itsm_problems::POLICY,
    itsm_changes::POLICY,
    itsm_requests::POLICY,
    itsm_cmdb::POLICY,
    itsm_sla::POLICY,
    itsm_knowledge::POLICY,
    itsm_identity::POLICY,
];

/// Every (service, method) of our packages in the descriptor set.
fn rpcs() -> BTreeMap<String, BTreeSet<String>> {
    let set = prost_types::FileDescriptorSet::decode(itsm_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut rpcs = BTreeMap::new();
    for file in set.file {
        let package = file.package().to_owned();
        if !package.starts_with("itsm.") {
            continue;
        }
        for service in file.service {
            let methods = rpcs
                .entry(format!("{package}.{}", service.name()))
                .or_insert_with(BTreeSet::new);
            for method in service.method {
                assert!(
                    !method.client_streaming() && !method.server_streaming(),
                    "{} streams: extend this test",
                    method.name()
                );
                methods.insert(method.name().to_owned());
            }
        }
    }
    rpcs
}

fn policies() -> BTreeMap<String, Policy> {
    POLICIES
        .iter()
        .map(|text| {
            let policy = Policy::from_toml(text).unwrap();
            (policy.service.clone(), policy)
        })
        .collect()
}

struct Dev {
    child: tokio::process::Child,
    addr: String,
    key: String,
    _data: tempfile::TempDir,
}

async fn dev() -> Dev {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_itsm"))
        .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env_remove("ITSM_AUTH_HS256_SECRET")
        .env_remove("ITSM_AUTH_JWKS")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("gRPC") {
                return line.split_whitespace().nth(1).unwrap().to_owned();
            }
        }
        panic!("itsm dev printed no address");
    })
    .await
    .unwrap();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let key = std::fs::read_to_string(data.path().join("dev-signing-key")).unwrap();
    Dev {
        child,
        addr,
        key,
        _data: data,
    }
}

fn token(key: &str, roles: &[&str]) -> String {
    let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
    let settings = itsm_auth::jwt::JwtSettings {
        issuer: "itsm".into(),
        audience: "itsm".into(),
        clock_skew: Duration::from_secs(60),
        roles_claim: "roles".into(),
        groups_claim: "groups".into(),
    };
    let request = TokenRequest {
        subject: "matrix",
        name: "Matrix",
        roles: &roles,
        groups: &[],
        ttl: Duration::from_secs(600),
    };
    mint_hs256(key.trim().as_bytes(), &settings, &request).unwrap()
}

/// Calls `/service/method` with an empty request message.
async fn call(
    channel: &Channel,
    service: &str,
    method: &str,
    token: Option<&str>,
) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(());
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let path = format!("/{service}/{method}").parse().unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    match grpc.unary(request, path, codec).await {
        Ok(_) => tonic::Status::ok(""),
        Err(status) => status,
    }
}

#[test]
fn every_rpc_has_exactly_one_rule_and_every_rule_an_rpc() {
    let rpcs = rpcs();
    let policies = policies();
    assert_eq!(
        rpcs.keys().collect::<Vec<_>>(),
        policies.keys().collect::<Vec<_>>(),
        "every service has a policy table"
    );
    for (service, methods) in &rpcs {
        let ruled: BTreeSet<String> = policies[service].methods.keys().cloned().collect();
        let missing: Vec<_> = methods.difference(&ruled).collect();
        let stale: Vec<_> = ruled.difference(methods).collect();
        assert!(
            missing.is_empty(),
            "{service}: methods without a rule (refused to everyone): {missing:?}"
        );
        assert!(
            stale.is_empty(),
            "{service}: rules for methods that do not exist: {stale:?}"
        );
    }
}

#[tokio::test]
async fn every_rpc_refuses_anonymous_and_roleless_callers_and_honours_each_role() {
    let mut dev = dev().await;
    let channel = Endpoint::from_shared(format!("http://{}", dev.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let policies = policies();
    let no_role = token(&dev.key, &[]);
    let role_tokens: Vec<(&str, String)> = roles::ALL
        .iter()
        .map(|role| (*role, token(&dev.key, &[role])))
        .collect();
    let mut calls = 0;
    for (service, methods) in rpcs() {
        let policy = &policies[&service];
        for method in methods {
            let anonymous = call(&channel, &service, &method, None).await;
            assert_eq!(
                anonymous.code(),
                Code::Unauthenticated,
                "{service}/{method} anonymous: {anonymous:?}"
            );
            let roleless = call(&channel, &service, &method, Some(&no_role)).await;
            assert_eq!(
                roleless.code(),
                Code::PermissionDenied,
                "{service}/{method} without roles: {roleless:?}"
            );

            for (role, token) in &role_tokens {
                let principal = Principal {
                    subject: "matrix".into(),
                    display_name: "Matrix".into(),
                    kind: PrincipalKind::User,
                    roles: vec![(*role).to_owned()],
                    groups: vec![],
                    tenant: String::new(),
                };
                let status = call(&channel, &service, &method, Some(token)).await;
                calls += 1;
                let permission = &policy.methods[&method].permission;
                let guard_denied = status.code() == Code::PermissionDenied
                    && status.message().contains(permission.as_str());
                match policy.authorize(&method, &principal) {
                    // Past the guard; the handler may still refuse (row-level rules).
                    Ok(()) => assert!(
                        !guard_denied,
                        "{service}/{method} must be open to {role}: {status:?}"
                    ),
                    Err(_) => {
                        assert!(
                            guard_denied,
                            "{service}/{method} must be closed to {role}: {status:?}"
                        );
                    }
                }
            }
        }
    }
    println!("{calls} role/method calls checked");
    dev.child.kill().await.unwrap();
}
