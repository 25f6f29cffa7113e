//! The endpoints (replicas) of one backend and the choice among them.
//!
//! A target is a static list (`http://a:50051|http://b:50051`) or a
//! Kubernetes headless service (`dns://incidents-headless.itsm.svc:50051`),
//! whose A/AAAA records are the ready pods: it is re-resolved on every probe
//! round, new pods are added and vanished ones dropped. Each replica keeps one
//! few lazily connected HTTP/2 connections, used in turn: calls multiplex over
//! them, and more than one keeps a busy replica from being served by a single
//! connection's task (one core) in the gateway. A call goes to
//! the less busy of two replicas picked in turn (power of two choices),
//! skipping replicas that failed their last health check or connection while
//! any healthy one remains.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

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
    channels: Box<[Channel]>,
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
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        let channels = (0..connections.max(1))
            .map(|_| endpoint.connect_lazy())
            .collect();
        Some(Self {
            uri,
            channels,
            next: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            healthy: AtomicBool::new(true),
        })
    }

    /// One of the replica's connections, in turn.
    pub fn channel(&self) -> Channel {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.channels[i % self.channels.len()].clone()
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
        let replicas = self.replicas();
        let n = replicas.len();
        if n <= 1 {
            return replicas.first().cloned();
        }
        // With none healthy, try them all: the health view may be stale.
        let any_healthy = replicas.iter().any(|r| r.is_healthy());
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut candidates = (0..n)
            .map(|i| &replicas[(start + i) % n])
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
