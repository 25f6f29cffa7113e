//! A throwaway PostgreSQL database for one benchmark run.

use sqlx::{Connection, Executor, PgConnection};

pub fn admin_url() -> String {
    std::env::var("ITSM_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database created for the run and dropped by [`BenchDb::drop_now`].
#[derive(Debug)]
pub struct BenchDb {
    pub name: String,
    pub url: String,
}

impl BenchDb {
    pub async fn create() -> Result<Self, sqlx::Error> {
        let admin = admin_url();
        let name = format!("itsm_bench_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin).await?;
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await?;
        conn.close().await?;
        let base = admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(base, _)| base);
        Ok(Self {
            url: format!("{base}/{name}"),
            name,
        })
    }

    /// A database that exists already (not dropped by this run).
    pub fn existing(name: &str) -> Self {
        let admin = admin_url();
        let base = admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(base, _)| base);
        Self {
            url: format!("{base}/{name}"),
            name: name.to_owned(),
        }
    }

    pub async fn drop_now(self) -> Result<(), sqlx::Error> {
        let mut conn = PgConnection::connect(&admin_url()).await?;
        conn.execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .await?;
        conn.close().await
    }
}

/// Latency percentiles of a sample, in milliseconds.
pub fn percentiles(mut micros: Vec<u64>) -> (f64, f64, f64) {
    micros.sort_unstable();
    let at = |p: f64| {
        let index = ((micros.len() as f64 - 1.0) * p).round() as usize;
        micros.get(index).copied().unwrap_or(0) as f64 / 1000.0
    };
    (at(0.50), at(0.99), at(1.0))
}

/// Runs pgbench with `script` at `clients` for `seconds` against the bench
/// database; returns its transactions per second.
pub fn pgbench(
    bench: &BenchDb,
    clients: usize,
    seconds: u64,
    script: &str,
) -> Result<f64, Box<dyn std::error::Error>> {
    let file =
        std::env::temp_dir().join(format!("itsm-bench-{}.sql", uuid::Uuid::new_v4().simple()));
    std::fs::write(&file, script)?;
    let threads = clients.min(2).to_string();
    let output = std::process::Command::new("pgbench")
        .args([
            "-n",
            "-M",
            "prepared",
            "-c",
            &clients.to_string(),
            "-j",
            &threads,
            "-T",
            &seconds.to_string(),
            "-f",
        ])
        .arg(&file)
        .arg(&bench.url)
        .output()?;
    let _ = std::fs::remove_file(&file);
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "pgbench failed: {}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|tps| tps.parse().ok())
        .ok_or_else(|| format!("no tps in pgbench output:\n{stdout}").into())
}
