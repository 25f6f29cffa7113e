//! The endpoints (replicas) of one backend and the choice among them.
//!
//! A target is a static list (`http://a:50051|http://b:50051`) or a
//! Kubernetes headless service (`dns://incidents-headless.itsm.svc:50051`),
//! whose A/AAAA records are the ready pods: it is re-resolved on every probe
//! round, new pods are added and vanished ones dropped. Each replica keeps a
//! few lazily connected HTTP/2 connections ([`Connection`]), used in turn:
//! calls multiplex over them, and more than one keeps a busy replica from
//! being served by a single connection's task (one core) in the gateway. A
//! call goes to the less busy of two replicas picked in turn (power of two
//! choices), skipping replicas that failed their last health check or
//! connection while any healthy one remains.
//!
//! Calls go straight onto hyper's HTTP/2 connection, not through a tonic
//! `Channel`: the channel's buffer would put one more task hand-off on every
//! call (measurable at 32 concurrent clients on two cores), and a connection
//! of our own tells apart "could not connect, nothing was sent" (safe to try
//! another replica) from a failure after the request left. Health checks use
//! a tonic channel of their own ([`Replica::probe_channel`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tonic::transport::{Channel, Endpoint};

/// Where a backend is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Fixed addresses (`http://` or `https://` URIs).
    Static(Vec<String>),
    /// A DNS name re-resolved periodically; every address is a replica.
    Dns { host: String, port: u16 },
}

impl Target {
    /// Parses `http://a:1|http://b:1` or `dns://name:port`.
    pub fn parse(raw: &str) -> Option<Self> {
        if let Some(rest) = raw.strip_prefix("dns://") {
            let (host, port) = rest.rsplit_once(':')?;
            let port = port.parse().ok()?;
            return (!host.is_empty()).then(|| Self::Dns {
                host: host.to_owned(),
                port,
            });
        }
        let uris: Vec<String> = raw.split('|').map(|u| u.trim().to_owned()).collect();
        let valid = uris.iter().all(|u| {
            (u.starts_with("http://") || u.starts_with("https://"))
                && Endpoint::from_shared(u.clone()).is_ok()
        });
        (valid && !uris.is_empty()).then_some(Self::Static(uris))
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Static(uris) => f.write_str(&uris.join("|")),
            Self::Dns { host, port } => write!(f, "dns://{host}:{port}"),
        }
    }
}

/// One replica of a backend.
#[derive(Debug)]
pub struct Replica {
    /// `http://10.1.2.3:50051`.
    pub uri: String,
    connections: Box<[Connection]>,
    probe: Channel,
    next: AtomicUsize,
    in_flight: AtomicUsize,
    /// False after a failed health check or connection, true again after a good one.
    healthy: AtomicBool,
}

impl Replica {
    fn new(uri: String, connect_timeout: Duration, connections: usize) -> Option<Self> {
        let endpoint = Endpoint::from_shared(uri.clone())
            .ok()?
            .connect_timeout(connect_timeout)
            .tcp_nodelay(true);
        let parsed: http::Uri = uri.parse().ok()?;
        let scheme = parsed.scheme()?.clone();
        let authority = parsed.authority()?.clone();
        let connections = (0..connections.max(1))
            .map(|_| Connection {
                scheme: scheme.clone(),
                authority: authority.clone(),
                connect_timeout,
                sender: Mutex::new(None),
                connecting: tokio::sync::Mutex::new(()),
            })
            .collect();
        Some(Self {
            uri,
            connections,
            probe: endpoint.connect_lazy(),
            next: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            healthy: AtomicBool::new(true),
        })
    }

    /// One of the replica's connections, in turn.
    pub fn connection(&self) -> &Connection {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        &self.connections[i % self.connections.len()]
    }

    /// A tonic channel to the replica, for health checks (its own connection).
    pub fn probe_channel(&self) -> Channel {
        self.probe.clone()
    }

    /// Marks the replica healthy or not (health checks and connection errors).
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Counts a call in flight until the guard is dropped.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }
}

/// One HTTP/2 connection to a replica, made on first use and made again
/// once it has closed.
#[derive(Debug)]
pub struct Connection {
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    connect_timeout: Duration,
    sender: Mutex<Option<SendRequest<tonic::body::Body>>>,
    /// One connection attempt at a time; the others wait for its outcome.
    connecting: tokio::sync::Mutex<()>,
}

/// Why a call did not get to a replica, or what became of it there.
#[derive(Debug)]
pub enum SendError {
    /// Nothing was sent (no connection could be made, or the connection
    /// closed before the request was written): another replica may be
    /// tried with the request given back.
    NotSent {
        request: Box<http::Request<tonic::body::Body>>,
        reason: String,
    },
    /// The request (or part of it) may have reached the replica.
    Failed(String),
}

impl Connection {
    /// Sends `request` (its URI only a path; the replica's scheme and
    /// authority are put on it) and waits for the response head.
    pub async fn send(
        &self,
        mut request: http::Request<tonic::body::Body>,
    ) -> Result<http::Response<hyper::body::Incoming>, SendError> {
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = request.uri().path_and_query().cloned();
        match http::Uri::from_parts(parts) {
            Ok(uri) => *request.uri_mut() = uri,
            Err(error) => return Err(SendError::Failed(format!("bad request URI: {error}"))),
        }
        let mut sender = match self.sender().await {
            Ok(sender) => sender,
            Err(reason) => {
                return Err(SendError::NotSent {
                    request: Box::new(request),
                    reason,
                });
            }
        };
        match sender.try_send_request(request).await {
            Ok(response) => Ok(response),
            Err(mut error) => {
                let reason = error_chain(error.error());
                match error.take_message() {
                    Some(request) => {
                        self.forget(&sender);
                        Err(SendError::NotSent {
                            request: Box::new(request),
                            reason,
                        })
                    }
                    None => Err(SendError::Failed(reason)),
                }
            }
        }
    }

    /// The open connection's sender, connecting first when there is none.
    async fn sender(&self) -> Result<SendRequest<tonic::body::Body>, String> {
        if let Some(sender) = self.open() {
            return Ok(sender);
        }
        let _connecting = self.connecting.lock().await;
        // Another call may have connected while this one waited.
        if let Some(sender) = self.open() {
            return Ok(sender);
        }
        let sender = tokio::time::timeout(self.connect_timeout, self.connect())
            .await
            .map_err(|_| format!("connecting timed out after {:?}", self.connect_timeout))??;
        *self.sender.lock().unwrap_or_else(|e| e.into_inner()) = Some(sender.clone());
        Ok(sender)
    }

    fn open(&self) -> Option<SendRequest<tonic::body::Body>> {
        let sender = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        sender
            .as_ref()
            .filter(|s| !s.is_closed() && s.is_ready())
            .cloned()
    }

    fn forget(&self, closed: &SendRequest<tonic::body::Body>) {
        let mut sender = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        if sender
            .as_ref()
            .is_some_and(|s| s.is_closed() || closed.is_closed())
        {
            *sender = None;
        }
    }

    async fn connect(&self) -> Result<SendRequest<tonic::body::Body>, String> {
        if self.scheme != http::uri::Scheme::HTTP {
            return Err(format!(
                "{}://{}: only plain-text HTTP/2 (http://) is spoken to backends",
                self.scheme, self.authority
            ));
        }
        let port = self.authority.port_u16().unwrap_or(80);
        let host = self
            .authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let stream = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", self.authority))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true)
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| {
                format!(
                    "HTTP/2 handshake with {} failed: {}",
                    self.authority,
                    error_chain(&e)
                )
            })?;
        let authority = self.authority.clone();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(backend = %authority, %error, "backend connection ended with an error");
            }
        });
        Ok(sender)
    }
}

/// An error and its causes on one line.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A call in flight on a replica.
#[derive(Debug)]
pub struct InFlight(Arc<Replica>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The replicas of one backend.
#[derive(Debug)]
pub struct Pool {
    pub target: Target,
    connect_timeout: Duration,
    connections: usize,
    replicas: RwLock<Arc<Vec<Arc<Replica>>>>,
    next: AtomicUsize,
}

impl Pool {
    /// A pool for `target`, `connections` per replica; DNS targets start
    /// empty until [`Pool::refresh`].
    pub fn new(target: Target, connect_timeout: Duration, connections: usize) -> Self {
        let replicas = match &target {
            Target::Static(uris) => uris
                .iter()
                .filter_map(|uri| Replica::new(uri.clone(), connect_timeout, connections))
                .map(Arc::new)
                .collect(),
            Target::Dns { .. } => Vec::new(),
        };
        Self {
            target,
            connect_timeout,
            connections,
            replicas: RwLock::new(Arc::new(replicas)),
            next: AtomicUsize::new(0),
        }
    }

    /// The current replicas.
    pub fn replicas(&self) -> Arc<Vec<Arc<Replica>>> {
        Arc::clone(&self.replicas.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The replica for the next call, or none when the target resolved to nothing.
    pub fn pick(&self) -> Option<Arc<Replica>> {
        self.pick_other(&[])
    }

    /// The replica for the next attempt of a call, other than those in
    /// `tried`; none when every replica was tried.
    pub fn pick_other(&self, tried: &[Arc<Replica>]) -> Option<Arc<Replica>> {
        let replicas = self.replicas();
        let n = replicas.len();
        let untried = |r: &&Arc<Replica>| !tried.iter().any(|t| Arc::ptr_eq(t, r));
        if n <= 1 {
            return replicas.first().filter(untried).cloned();
        }
        // With none healthy, try them all: the health view may be stale.
        let any_healthy = replicas.iter().filter(untried).any(|r| r.is_healthy());
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut candidates = (0..n)
            .map(|i| &replicas[(start + i) % n])
            .filter(untried)
            .filter(|r| !any_healthy || r.is_healthy());
        let a = candidates.next()?;
        let chosen = match candidates.next() {
            Some(b)
                if b.in_flight.load(Ordering::Relaxed) < a.in_flight.load(Ordering::Relaxed) =>
            {
                b
            }
            _ => a,
        };
        Some(Arc::clone(chosen))
    }

    /// Re-resolves a DNS target: new addresses become replicas, vanished ones
    /// are dropped (their in-flight calls finish on the channel they hold).
    /// A failed lookup keeps the replicas known so far. Static targets do nothing.
    pub async fn refresh(&self) -> Result<(), String> {
        let Target::Dns { host, port } = &self.target else {
            return Ok(());
        };
        let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), *port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .collect();
        addrs.sort();
        addrs.dedup();
        let uris: Vec<String> = addrs.iter().map(|a| format!("http://{a}")).collect();
        let current = self.replicas();
        if current.len() == uris.len() && current.iter().zip(&uris).all(|(r, u)| &r.uri == u) {
            return Ok(());
        }
        let next: Vec<Arc<Replica>> = uris
            .into_iter()
            .filter_map(|uri| match current.iter().find(|r| r.uri == uri) {
                Some(kept) => Some(Arc::clone(kept)),
                None => Replica::new(uri, self.connect_timeout, self.connections).map(Arc::new),
            })
            .collect();
        tracing::info!(
            target = %self.target,
            replicas = next.len(),
            "backend replicas changed"
        );
        *self.replicas.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(
            Target::parse("dns://cmdb-headless.itsm.svc:50051"),
            Some(Target::Dns {
                host: "cmdb-headless.itsm.svc".into(),
                port: 50051
            })
        );
        assert_eq!(
            Target::parse("http://a:1|http://b:2"),
            Some(Target::Static(vec![
                "http://a:1".into(),
                "http://b:2".into()
            ]))
        );
        assert_eq!(Target::parse("tcp://a:1"), None);
        assert_eq!(Target::parse("dns://a"), None);
    }

    #[tokio::test]
    async fn spreads_calls_and_skips_unhealthy_replicas() {
        let pool = Pool::new(
            Target::parse("http://127.0.0.1:1|http://127.0.0.1:2").unwrap(),
            Duration::from_secs(1),
            2,
        );
        let a = pool.pick().unwrap();
        let _busy = a.start();
        let b = pool.pick().unwrap();
        assert_ne!(a.uri, b.uri, "the idle replica is chosen");
        b.set_healthy(false);
        for _ in 0..4 {
            assert_eq!(pool.pick().unwrap().uri, a.uri);
        }
        a.set_healthy(false);
        assert!(pool.pick().is_some(), "none healthy: still tried");
    }
}
