//! Shared test helpers: Redis location, per-test key prefixes with cleanup,
//! redis-server child processes, and polling with a deadline.

use std::future::Future;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use itsm_events::{EventBus, MemoryBus, MemoryBusConfig, Message, RedisBus, RedisBusConfig};

/// The shared test Redis.
pub fn redis_url() -> String {
    std::env::var("ITSM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A key prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("itsm-test-{}:", uuid::Uuid::new_v4())
}

/// Deletes every key under `prefix` in the shared test Redis (best effort).
pub struct Cleanup(pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        // Synchronous on purpose: runs even while a failed test unwinds.
        let Ok(client) = redis::Client::open(redis_url()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(1)) else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.0))
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}

/// Which bus a suite test runs against.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Redis,
    Memory,
}

/// A bus for one test, with its keys removed when dropped.
pub struct TestBus {
    pub bus: Arc<dyn EventBus>,
    pub prefix: String,
    _cleanup: Option<Cleanup>,
}

impl Backend {
    pub async fn bus(self, claim_timeout: Duration) -> TestBus {
        let prefix = unique_prefix();
        match self {
            Self::Redis => {
                let config = RedisBusConfig {
                    key_prefix: prefix.clone(),
                    claim_timeout,
                    ..RedisBusConfig::default()
                };
                let bus = RedisBus::open(&redis_url(), config).await.unwrap();
                TestBus {
                    bus: Arc::new(bus),
                    _cleanup: Some(Cleanup(prefix.clone())),
                    prefix,
                }
            }
            Self::Memory => {
                let config = MemoryBusConfig {
                    claim_timeout,
                    ..MemoryBusConfig::default()
                };
                TestBus {
                    bus: Arc::new(MemoryBus::new(config)),
                    prefix,
                    _cleanup: None,
                }
            }
        }
    }
}

/// Message `n` of `stream`, with a fresh event id.
pub fn message(stream: &str, n: usize) -> Message {
    Message {
        id: uuid::Uuid::new_v4().to_string(),
        stream: stream.to_owned(),
        key: format!("{stream}/INC{n:07}"),
        payload: format!("payload {n}").into_bytes(),
    }
}

/// Calls `check` until it returns `Some`, failing the test after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A redis-server of the test's own, killed when dropped (also on failure).
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts redis-server on `port`, keeping nothing on disk, and waits until it listens.
    pub fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for the outage tests");
        let server = Self {
            port,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
