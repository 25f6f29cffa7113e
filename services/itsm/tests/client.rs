//! The client commands from the outside: the real `itsm` binary against an
//! `itsm dev` started here, as a person at a terminal and a script use them.
// Test helpers may unwrap and panic: that is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/process.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use itsm_proto::itsm::identity::v1::identity_service_client::IdentityServiceClient;
use itsm_proto::itsm::identity::v1::{CreateGroupRequest, Group};
use itsm_proto::itsm::sla::v1 as sla;
use itsm_proto::itsm::sla::v1::sla_service_client::SlaServiceClient;
use serde_json::Value;
use support::{authorized, connect, exit_code_within, itsm, output, sigterm, wait_for_line};
use tokio::io::{AsyncBufReadExt as _, BufReader};

/// A running `itsm dev`: its gRPC server, the gateway in front of it, and the admin token.
struct Dev {
    child: tokio::process::Child,
    grpc: String,
    gateway: String,
    admin: String,
}

/// Starts `itsm dev` on free ports with its data in `data_dir`, reading the
/// addresses and the admin token from its banner.
async fn start_dev(data_dir: &Path) -> Dev {
    let mut child = itsm()
        .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut address = async |marker: &str| {
        let line = wait_for_line(&mut lines, marker).await;
        line.split_whitespace().nth(1).unwrap().to_owned()
    };
    let grpc = address("gRPC").await;
    let gateway = address("gateway").await;
    let admin = address("export ITSM_TOKEN=")
        .await
        .trim_start_matches("ITSM_TOKEN=")
        .to_owned();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Dev {
        child,
        grpc,
        gateway,
        admin,
    }
}

/// A user's terminal: its own home and config directory, and the server it talks to.
struct Terminal {
    home: tempfile::TempDir,
    server: String,
}

impl Terminal {
    fn new(server: &str) -> Self {
        Self {
            home: tempfile::tempdir().unwrap(),
            server: server.to_owned(),
        }
    }

    fn config_file(&self) -> PathBuf {
        self.home.path().join("config/itsm/client.toml")
    }

    /// Runs `itsm <args>`; returns exit code, stdout and stderr.
    async fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut command = itsm();
        command
            .args(args)
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("ITSM_SERVER", &self.server)
            .env("TZ", "UTC");
        output(&mut command).await
    }

    /// Runs a command that must succeed; returns its stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let (code, stdout, stderr) = self.run(args).await;
        assert_eq!(code, 0, "itsm {args:?}\nstdout: {stdout}\nstderr: {stderr}");
        stdout
    }

    /// Runs a command with `-o json`; returns the one document it printed.
    async fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["-o", "json"]);
        let stdout = self.ok(&args).await;
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }

    /// Runs a command that must fail with `code`; returns its stderr.
    async fn fails(&self, code: i32, args: &[&str]) -> String {
        let (actual, stdout, stderr) = self.run(args).await;
        assert_eq!(
            actual, code,
            "itsm {args:?}\nstdout: {stdout}\nstderr: {stderr}"
        );
        stderr
    }
}

/// The numbers of the incidents in a ListIncidents JSON document.
fn numbers(list: &Value) -> Vec<String> {
    list["incidents"]
        .as_array()
        .map(|incidents| {
            incidents
                .iter()
                .map(|i| i["number"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn create_network_group(addr: &str, admin: &str) {
    IdentityServiceClient::new(connect(addr).await)
        .create_group(authorized(
            CreateGroupRequest {
                group: Some(Group {
                    display_name: "Network".into(),
                    members: vec!["ana".into()],
                    ..Group::default()
                }),
                group_id: "network".into(),
                request_id: String::new(),
            },
            admin,
        ))
        .await
        .unwrap();
}

async fn create_resolution_sla(addr: &str, admin: &str) {
    SlaServiceClient::new(connect(addr).await)
        .create_sla_definition(authorized(
            sla::CreateSlaDefinitionRequest {
                sla_definition: Some(sla::SlaDefinition {
                    display_name: "Resolve within 8 hours".into(),
                    kind: sla::SlaKind::Sla as i32,
                    ticket_type: "incidents".into(),
                    target: Some(prost_types::Duration {
                        seconds: 8 * 3600,
                        nanos: 0,
                    }),
                    stop_condition: "state = RESOLVED".into(),
                    enabled: true,
                    ..sla::SlaDefinition::default()
                }),
                sla_definition_id: "resolution".into(),
                request_id: String::new(),
                validate_only: false,
            },
            admin,
        ))
        .await
        .unwrap();
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn an_agent_drives_an_incident_from_creation_to_closure() {
    let data = tempfile::tempdir().unwrap();
    let Dev {
        mut child,
        grpc,
        gateway,
        admin,
    } = start_dev(data.path()).await;
    create_network_group(&grpc, &admin).await;
    create_resolution_sla(&grpc, &admin).await;
    // Through the gateway, as people's terminals reach the platform.
    let ana = Terminal::new(&gateway);
    let data_dir = data.path().to_str().unwrap();

    let stderr = ana.fails(1, &["incident", "list"]).await;
    assert!(
        stderr.contains("not logged in: run `itsm login --dev`"),
        "{stderr}"
    );
    let stdout = ana
        .ok(&["login", "--dev", "--subject", "ana", "--data-dir", data_dir])
        .await;
    assert!(
        stdout.starts_with("Logged in as ana (agent) until "),
        "{stdout}"
    );
    #[cfg(unix)]
    assert_eq!(
        mode(&ana.config_file()),
        0o600,
        "the token is its owner's only"
    );
    let me = ana.json(&["whoami"]).await;
    assert_eq!(
        (me["subject"].as_str(), me["roles"][0].as_str()),
        (Some("ana"), Some("agent"))
    );

    let created = ana
        .json(&[
            "incident",
            "create",
            "--title",
            "Core switch down in Building 4",
            "--impact",
            "high",
            "--urgency",
            "high",
        ])
        .await;
    assert_eq!(created["number"], "INC0000001");
    assert_eq!(created["priority"], "PRIORITY_CRITICAL");
    assert_eq!(created["state"], "INCIDENT_STATE_NEW");
    assert_eq!(created["caller"], "ana", "the caller defaults to me");
    assert!(numbers(&ana.json(&["incident", "list", "--mine"]).await).is_empty());

    let stdout = ana
        .ok(&[
            "incident",
            "assign",
            "INC0000001",
            "--group",
            "network",
            "--to",
            "ana",
        ])
        .await;
    assert_eq!(
        stdout.trim(),
        "INC0000001  NEW -> IN_PROGRESS  assigned to ana (network)"
    );
    assert_eq!(
        numbers(&ana.json(&["incident", "list", "--mine"]).await),
        ["INC0000001"]
    );
    let table = ana
        .ok(&["incident", "list", "--mine", "--state", "in-progress"])
        .await;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(
        lines[0].starts_with("NUMBER      PRIORITY  STATE        GROUP    ASSIGNEE"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("INC0000001  CRITICAL  IN_PROGRESS  network  ana"),
        "{table}"
    );
    assert!(
        lines[1].ends_with("UTC  Core switch down in Building 4"),
        "{table}"
    );
    assert!(numbers(&ana.json(&["incident", "list", "--state", "closed"]).await).is_empty());

    let stdout = ana
        .ok(&[
            "incident",
            "hold",
            "1",
            "--reason",
            "awaiting-caller",
            "--note",
            "asked for the switch logs",
        ])
        .await;
    assert_eq!(
        stdout.trim(),
        "INC0000001  IN_PROGRESS -> ON_HOLD (awaiting caller)"
    );
    let stdout = ana.ok(&["incident", "resume", "1"]).await;
    assert_eq!(stdout.trim(), "INC0000001  ON_HOLD -> IN_PROGRESS");
    ana.ok(&[
        "incident",
        "comment",
        "1",
        "Power-cycled the supervisor module",
    ])
    .await;

    // The SLA clock starts from the incident's events, a moment after creation.
    let deadline = Instant::now() + Duration::from_secs(15);
    let clocks = loop {
        let clocks = ana.json(&["sla", "show", "INC0000001"]).await;
        if clocks["taskSlas"].as_array().is_some_and(|c| !c.is_empty()) {
            break clocks;
        }
        assert!(
            Instant::now() < deadline,
            "no SLA clock after 15 s: {clocks}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        clocks["taskSlas"][0]["slaDefinition"],
        "slaDefinitions/resolution"
    );
    let table = ana.ok(&["sla", "show", "1"]).await;
    assert!(table.starts_with("SLA "), "{table}");
    assert!(
        table.contains("Resolve within 8 hours  SLA   IN_PROGRESS"),
        "{table}"
    );

    let stderr = ana
        .fails(
            1,
            &[
                "incident",
                "resolve",
                "1",
                "--code",
                "solved-permanently",
                "--notes",
                "",
            ],
        )
        .await;
    assert!(
        stderr.contains("the request was refused:\n  resolution_notes: "),
        "{stderr}"
    );
    let stdout = ana
        .ok(&[
            "incident",
            "resolve",
            "1",
            "--code",
            "solved-permanently",
            "--notes",
            "Replaced the supervisor module",
        ])
        .await;
    assert_eq!(stdout.trim(), "INC0000001  IN_PROGRESS -> RESOLVED");
    let stdout = ana.ok(&["incident", "close", "incidents/INC0000001"]).await;
    assert_eq!(stdout.trim(), "INC0000001  RESOLVED -> CLOSED");
    let stderr = ana.fails(1, &["incident", "close", "1"]).await;
    assert!(
        stderr.contains("not allowed now: incidents/INC0000001 is CLOSED")
            && stderr.contains("CLOSED is final"),
        "{stderr}"
    );

    let shown = ana.ok(&["incident", "show", "INC0000001"]).await;
    for expected in [
        "Number       INC0000001",
        "State        CLOSED",
        "Priority     CRITICAL (impact HIGH, urgency HIGH)",
        "Assignee     ana",
        "Resolution   SOLVED_PERMANENTLY: Replaced the supervisor module",
        "asked for the switch logs",
        "Power-cycled the supervisor module",
    ] {
        assert!(shown.contains(expected), "{expected:?} missing:\n{shown}");
    }
    let shown = ana.json(&["incident", "show", "1"]).await;
    assert_eq!(shown["state"], "INCIDENT_STATE_CLOSED");
    assert_eq!(
        shown["resolutionCode"],
        "RESOLUTION_CODE_SOLVED_PERMANENTLY"
    );

    let stderr = ana.fails(1, &["incident", "show", "INC0000099"]).await;
    assert_eq!(
        stderr.trim(),
        "itsm: not found: incidents/INC0000099 not found"
    );
    let stderr = ana
        .fails(
            1,
            &[
                "incident",
                "create",
                "--title",
                &"x".repeat(200),
                "--impact",
                "low",
                "--urgency",
                "low",
            ],
        )
        .await;
    assert!(stderr.contains("\n  incident.title: "), "{stderr}");

    ana.ok(&["logout"]).await;
    let stderr = ana.fails(1, &["incident", "list"]).await;
    assert!(stderr.contains("not logged in"), "{stderr}");

    sigterm(&child);
    assert_eq!(
        exit_code_within(&mut child, Duration::from_secs(10)).await,
        0
    );
    ana.ok(&["login", "--dev", "--subject", "ana", "--data-dir", data_dir])
        .await;
    let stderr = ana.fails(1, &["incident", "list"]).await;
    assert!(
        stderr.starts_with(&format!(
            "itsm: cannot reach the ITSM server at {gateway}: is `itsm dev` running?"
        )),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_bad_flag_value_exits_2_with_the_choices() {
    let terminal = Terminal::new("127.0.0.1:1");
    let stderr = terminal
        .fails(
            2,
            &[
                "incident",
                "create",
                "--title",
                "t",
                "--impact",
                "huge",
                "--urgency",
                "high",
            ],
        )
        .await;
    assert!(
        stderr.contains("invalid value 'huge' for '--impact <IMPACT>'")
            && stderr.contains("[possible values: high, medium, low]"),
        "{stderr}"
    );
    let stderr = terminal.fails(2, &["incident", "show", "PRB0000001"]).await;
    assert!(
        stderr.contains("expected an incident number such as INC0000042"),
        "{stderr}"
    );
    let stderr = terminal.fails(2, &["incident", "assign", "1"]).await;
    assert!(
        stderr.contains("--group") && stderr.contains("--to"),
        "{stderr}"
    );
    let stderr = terminal.fails(2, &["incident", "list", "-o", "yaml"]).await;
    assert!(
        stderr.contains("[possible values: table, json]"),
        "{stderr}"
    );
}

#[tokio::test]
async fn no_server_and_an_expired_token_say_what_to_do() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let terminal = Terminal::new(&addr);
    terminal.ok(&["login", "--token", "an-api-key"]).await;
    let stderr = terminal.fails(1, &["incident", "list", "--mine"]).await;
    assert!(
        stderr.starts_with(&format!(
            "itsm: cannot reach the ITSM server at {addr}: is `itsm dev` running?"
        )),
        "{stderr}"
    );
    let stderr = terminal.fails(2, &["whoami"]).await;
    assert!(stderr.contains("not a JWT"), "{stderr}");

    let encode = |json: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
    let expired = format!(
        "{}.{}.c2ln",
        encode(r#"{"alg":"HS256"}"#),
        encode(r#"{"sub":"ana","roles":["agent"],"exp":1700000000}"#)
    );
    let valid = format!(
        "{}.{}.c2ln",
        encode(r#"{"alg":"HS256"}"#),
        encode(
            r#"{"sub":"bo","name":"Bo","roles":["agent","auditor"],"groups":["network"],"exp":4102444800}"#
        )
    );
    let mut login = itsm();
    login
        .arg("login")
        .env("HOME", terminal.home.path())
        .env("XDG_CONFIG_HOME", terminal.home.path().join("config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = login.spawn().unwrap();
    {
        use tokio::io::AsyncWriteExt as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(format!("{valid}\n").as_bytes())
            .await
            .unwrap();
    }
    let done = child.wait_with_output().await.unwrap();
    assert_eq!(
        done.status.code(),
        Some(0),
        "login reads the token from stdin"
    );
    let me = terminal.ok(&["whoami"]).await;
    for expected in [
        "Subject     bo",
        "Roles       agent, auditor",
        "Groups      network",
        "Expires     2100-01-01 00:00:00 UTC (in ",
    ] {
        assert!(me.contains(expected), "{expected:?} missing:\n{me}");
    }

    let stderr = terminal.fails(1, &["login", "--token", &expired]).await;
    assert!(
        stderr.contains("the token expired at 2023-11-14 22:13:20 UTC"),
        "{stderr}"
    );
    let mut command = itsm();
    command
        .args(["ci", "show", "web-01"])
        .env("HOME", terminal.home.path())
        .env("XDG_CONFIG_HOME", terminal.home.path().join("config"))
        .env("ITSM_TOKEN", &expired)
        .env("TZ", "UTC");
    let (code, _, stderr) = output(&mut command).await;
    assert_eq!(code, 1);
    assert_eq!(
        stderr.trim(),
        "itsm: the token expired at 2023-11-14 22:13:20 UTC: run `itsm login --dev` (itsm dev) \
         or `itsm login --token ...` to get a new one"
    );
}

#[tokio::test]
async fn completion_scripts_for_bash_zsh_and_fish() {
    let terminal = Terminal::new("127.0.0.1:1");
    let bash = terminal.ok(&["completion", "bash"]).await;
    assert!(
        bash.contains("_itsm()") && bash.contains("incident"),
        "{bash}"
    );
    let zsh = terminal.ok(&["completion", "zsh"]).await;
    assert!(zsh.starts_with("#compdef itsm"), "{zsh}");
    let fish = terminal.ok(&["completion", "fish"]).await;
    assert!(
        fish.contains("complete -c itsm") && fish.contains("resolve"),
        "{fish}"
    );
    terminal.fails(2, &["completion", "powerpoint"]).await;
}

/// Creates a CI as the admin; returns its name, "cis/<uuid>".
async fn create_ci(grpc: &str, admin: &str, class: &str, display_name: &str) -> String {
    use itsm_proto::itsm::cmdb::v1 as cmdb;
    use itsm_proto::itsm::cmdb::v1::cmdb_service_client::CmdbServiceClient;
    CmdbServiceClient::new(connect(grpc).await)
        .create_ci(authorized(
            cmdb::CreateCiRequest {
                ci: Some(cmdb::Ci {
                    ci_class: class.into(),
                    display_name: display_name.into(),
                    status: cmdb::CiStatus::Operational as i32,
                    criticality: cmdb::Criticality::High as i32,
                    support_group: "network".into(),
                    ..cmdb::Ci::default()
                }),
                request_id: String::new(),
                validate_only: false,
            },
            admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .name
}

#[tokio::test]
async fn an_agent_looks_up_a_ci_and_what_its_failure_impacts() {
    use itsm_proto::itsm::cmdb::v1 as cmdb;
    use itsm_proto::itsm::cmdb::v1::cmdb_service_client::CmdbServiceClient;

    let data = tempfile::tempdir().unwrap();
    let Dev {
        mut child,
        grpc,
        gateway,
        admin,
    } = start_dev(data.path()).await;
    create_network_group(&grpc, &admin).await;
    let switch = create_ci(&grpc, &admin, "classes/network_device", "core-sw-01").await;
    let orders = create_ci(&grpc, &admin, "classes/business_service", "Online orders").await;
    CmdbServiceClient::new(connect(&grpc).await)
        .create_relationship(authorized(
            cmdb::CreateRelationshipRequest {
                relationship: Some(cmdb::Relationship {
                    r#type: "relationshipTypes/depends_on".into(),
                    source_ci: orders.clone(),
                    target_ci: switch.clone(),
                    ..cmdb::Relationship::default()
                }),
                request_id: String::new(),
            },
            &admin,
        ))
        .await
        .unwrap();
    let ana = Terminal::new(&gateway);
    ana.ok(&[
        "login",
        "--dev",
        "--subject",
        "ana",
        "--data-dir",
        data.path().to_str().unwrap(),
    ])
    .await;

    let shown = ana.ok(&["ci", "show", "core-sw-01"]).await;
    for expected in [
        format!("Name           {switch}"),
        "Class          classes/network_device".to_owned(),
        "Status         OPERATIONAL".to_owned(),
        "Criticality    HIGH".to_owned(),
        "Support group  network".to_owned(),
    ] {
        assert!(shown.contains(&expected), "{expected:?} missing:\n{shown}");
    }
    let by_name = ana.json(&["ci", "show", &switch]).await;
    assert_eq!(by_name["displayName"], "core-sw-01");

    let impact = ana.ok(&["ci", "impact", "core-sw-01"]).await;
    let lines: Vec<&str> = impact.lines().collect();
    assert!(lines[0].starts_with("DEPTH  LEVEL     CI"), "{impact}");
    assert!(
        lines[1].starts_with("1      IMPACTED  Online orders  business_service  HIGH"),
        "{impact}"
    );
    assert!(lines[1].ends_with("network        used by"), "{impact}");
    assert!(
        impact.contains(&format!("Business services affected: {orders}")),
        "{impact}"
    );
    let upstream = ana
        .json(&[
            "ci",
            "impact",
            "Online orders",
            "--upstream",
            "--depth",
            "3",
        ])
        .await;
    assert_eq!(upstream["impactedCis"][0]["ci"], switch.as_str());
    assert_eq!(upstream["impactedCis"][0]["level"], "IMPACT_LEVEL_REQUIRED");
    // The switch is no service: its last hop, no whole path.
    assert_eq!(upstream["impactedCis"][0]["via"]["toCi"], switch.as_str());
    assert!(
        upstream["impactedCis"][0]["path"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{upstream}"
    );

    let stderr = ana.fails(1, &["ci", "show", "core-sw-99"]).await;
    assert!(
        stderr.contains("no configuration item is named \"core-sw-99\""),
        "{stderr}"
    );
    let stderr = ana
        .fails(2, &["ci", "impact", "core-sw-01", "--depth", "0"])
        .await;
    assert!(stderr.contains("--depth"), "{stderr}");

    let created = ana
        .json(&[
            "incident",
            "create",
            "--title",
            "Orders time out",
            "--impact",
            "medium",
            "--urgency",
            "high",
            "--ci",
            "core-sw-01",
        ])
        .await;
    assert_eq!(created["configurationItem"], switch.as_str());
    assert_eq!(created["priority"], "PRIORITY_HIGH");

    sigterm(&child);
    assert_eq!(
        exit_code_within(&mut child, Duration::from_secs(10)).await,
        0
    );
}
