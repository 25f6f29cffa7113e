//! Running the `itsm` binary in tests: a clean environment, `itsm serve`
//! with a database and credentials, reading its output, stopping it.
#![allow(dead_code)] // each test binary uses its own subset

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tonic::transport::{Channel, Endpoint};

/// The HS256 secret `serve` configures.
pub const SECRET: &str = "a test secret that is long enough!!";

/// A 10-minute admin token (subject `root`) signed with [`SECRET`].
pub fn admin_token() -> String {
    use itsm_auth::jwt::{JwtSettings, TokenRequest, mint_hs256};
    let settings = JwtSettings {
        issuer: "itsm".into(),
        audience: "itsm".into(),
        clock_skew: Duration::from_secs(60),
        roles_claim: "roles".into(),
        groups_claim: "groups".into(),
    };
    let roles = vec!["admin".to_owned()];
    let request = TokenRequest {
        subject: "root",
        name: "Root",
        roles: &roles,
        groups: &[],
        ttl: Duration::from_secs(600),
    };
    mint_hs256(SECRET.as_bytes(), &settings, &request).expect("a test token signs")
}

/// A database CI supported by `dba` in the CMDB behind `cmdb`, and a rule of
/// the incidents service behind `incidents` routing incidents to their CI's
/// support group, so that creating an incident on the CI asks the CMDB.
/// Returns the CI's name.
pub async fn ci_routed_to_dba(
    cmdb: Channel,
    incidents: Channel,
    display_name: &str,
    token: &str,
) -> String {
    use itsm_proto::itsm::cmdb::v1 as cmdb_pb;
    use itsm_proto::itsm::incidents::v1 as incidents_pb;
    let ci = cmdb_pb::cmdb_service_client::CmdbServiceClient::new(cmdb)
        .create_ci(authorized(
            cmdb_pb::CreateCiRequest {
                ci: Some(cmdb_pb::Ci {
                    ci_class: "classes/database".into(),
                    display_name: display_name.into(),
                    support_group: "dba".into(),
                    ..cmdb_pb::Ci::default()
                }),
                request_id: String::new(),
                validate_only: false,
            },
            token,
        ))
        .await
        .expect("the CI is created")
        .into_inner();
    incidents_pb::incident_service_client::IncidentServiceClient::new(incidents)
        .create_assignment_rule(authorized(
            incidents_pb::CreateAssignmentRuleRequest {
                rule: Some(incidents_pb::AssignmentRule {
                    order: 1,
                    use_ci_support_group: true,
                    strategy: incidents_pb::AssignmentStrategy::GroupOnly as i32,
                    enabled: true,
                    ..incidents_pb::AssignmentRule::default()
                }),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .expect("the assignment rule is created");
    ci.name
}

/// `message` with `token` as its bearer credential.
pub fn authorized<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("a token is ASCII"),
    );
    request
}

const ITSM: &str = env!("CARGO_BIN_EXE_itsm");

pub fn itsm() -> Command {
    let mut command = Command::new(ITSM);
    // The test's own environment must not configure the binary under test.
    for (key, _) in std::env::vars() {
        if key.starts_with("ITSM_") {
            command.env_remove(key);
        }
    }
    command.kill_on_drop(true);
    command
}

/// `itsm serve <practice>` with what every practice needs: a database (a
/// SQLite file of its own) and a way to authenticate callers.
pub fn serve(practice: &str) -> Command {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("itsm-serve-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join(format!("{practice}-{}.db", uuid_like()));
    let mut command = itsm();
    command
        .args(["serve", practice])
        .env("ITSM_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("ITSM_AUTH_HS256_SECRET", SECRET);
    command
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

pub async fn output(command: &mut Command) -> (i32, String, String) {
    let output = command.output().await.unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Reads stdout lines until one contains `marker`; returns that line.
pub async fn wait_for_line(lines: &mut Lines<BufReader<ChildStdout>>, marker: &str) -> String {
    let deadline = Duration::from_secs(20);
    tokio::time::timeout(deadline, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains(marker) {
                return line;
            }
        }
        panic!("stdout closed before a line with {marker:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("no line with {marker:?} within {deadline:?}"))
}

/// What a child printed after the lines a test waited for, kept so a failure
/// can show it.
#[derive(Clone, Default)]
pub struct Tail(std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<String>>>);

impl Tail {
    /// The last lines read, oldest first.
    pub fn text(&self) -> String {
        let lines = self.0.lock().unwrap();
        lines.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

/// Keeps reading `lines` in the background, so the child never blocks on a
/// full stdout pipe (its logs go there too), and keeps the last 200 lines.
pub fn keep_reading(mut lines: Lines<BufReader<ChildStdout>>) -> Tail {
    let tail = Tail::default();
    let kept = tail.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let mut lines = kept.0.lock().unwrap();
            if lines.len() == 200 {
                lines.pop_front();
            }
            lines.push_back(line);
        }
    });
    tail
}

pub async fn connect(addr: &str) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

pub fn sigterm(child: &Child) {
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
}

pub async fn exit_code_within(child: &mut Child, limit: Duration) -> i32 {
    tokio::time::timeout(limit, child.wait())
        .await
        .unwrap_or_else(|_| panic!("did not exit within {limit:?}"))
        .unwrap()
        .code()
        .unwrap_or(-1)
}

/// A started `itsm serve`: the child and the address its log announced.
pub struct Served {
    pub child: Child,
    pub addr: String,
}

/// Starts `command` (an `itsm serve`), with JSON logs, on a free port, and
/// waits for the log line that says where it listens.
pub async fn start(mut command: Command) -> Served {
    let mut child = command
        .env("ITSM_GRPC_ADDR", "127.0.0.1:0")
        .env("ITSM_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = wait_for_line(&mut lines, "serving gRPC").await;
    let addr = line
        .split("\"addr\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    // Keep reading the logs so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Served { child, addr }
}

/// A running `itsm dev`: the child, its address and the admin token it printed.
pub struct Dev {
    pub child: Child,
    pub addr: String,
    pub admin_token: String,
}

/// Starts `itsm dev` on a free port with its data in `data_dir`, and reads
/// the address and admin token from its banner.
pub async fn start_dev(data_dir: &std::path::Path) -> Dev {
    let mut child = itsm()
        .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = wait_for_line(&mut lines, "gRPC")
        .await
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    let token = wait_for_line(&mut lines, "export ITSM_TOKEN=").await;
    let admin_token = token
        .trim()
        .trim_start_matches("export ITSM_TOKEN=")
        .to_owned();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Dev {
        child,
        addr,
        admin_token,
    }
}

/// Starts `command` (an `itsm serve gateway`), with JSON logs, on a free
/// port, and waits for the log line that says where it listens.
pub async fn start_gateway(mut command: Command) -> Served {
    let mut child = command
        .env("ITSM_GATEWAY_ADDR", "127.0.0.1:0")
        .env("ITSM_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = wait_for_line(&mut lines, "gateway started").await;
    let addr = line
        .split("\"addr\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Served { child, addr }
}
