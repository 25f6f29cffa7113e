//! A fresh database per test, on PostgreSQL or SQLite, so tests run in parallel
//! and never see each other's rows; and unique Redis key prefixes.
//!
//! PostgreSQL is found at `ITSM_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), Redis at `ITSM_TEST_REDIS_URL`
//! (default `redis://127.0.0.1:6379`); `scripts/services` starts both.

use sqlx::{Connection, Executor, PgConnection};

/// The PostgreSQL server tests create their databases on.
pub fn admin_url() -> String {
    std::env::var("ITSM_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The Redis server tests use, each under its own [`unique_prefix`].
pub fn redis_url() -> String {
    std::env::var("ITSM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A key prefix no other test uses: `itsm-test-<uuid>:`.
pub fn unique_prefix() -> String {
    format!("itsm-test-{}:", uuid::Uuid::new_v4().simple())
}

/// A database that exists for one test and is dropped after it.
#[derive(Debug)]
pub struct TestDb {
    url: String,
    postgres_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A new, empty PostgreSQL database.
    pub async fn postgres() -> Self {
        let admin = admin_url();
        let name = format!("itsm_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!("cannot reach the test PostgreSQL at {admin} (run scripts/services): {e}")
        });
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("create the test database");
        let _ = conn.close().await;
        // Same server and options, another database: replace the URL's path.
        let (base, path) = admin
            .rsplit_once('/')
            .filter(|(base, _)| base.contains("://") && !base.ends_with('/'))
            .unwrap_or_else(|| panic!("ITSM_TEST_DATABASE_URL must end with /<database>: {admin}"));
        let options = path.find('?').map_or("", |q| &path[q..]);
        let url = format!("{base}/{name}{options}");
        Self {
            url,
            postgres_name: Some(name),
            _dir: None,
        }
    }

    /// A new SQLite database file in a temporary directory.
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        Self {
            url,
            postgres_name: None,
            _dir: Some(dir),
        }
    }

    /// The URL to connect to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// "postgres" or "sqlite", for messages.
    pub fn backend(&self) -> &'static str {
        if self.postgres_name.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.postgres_name.take() else {
            return;
        };
        // Drop runs inside the test's runtime, where blocking on async work is
        // not allowed: do it on a thread of its own, and wait for it so the
        // database is gone before the test process exits.
        let dropper = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&admin_url()).await {
                    let _ = conn
                        .execute(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .await;
                    let _ = conn.close().await;
                }
            });
        });
        let _ = dropper.join();
    }
}

/// Runs each named `async fn(TestDb)` twice, as `<name>::postgres` and
/// `<name>::sqlite`: one storage test suite for both backends.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn postgres() {
                    super::$name($crate::TestDb::postgres().await).await
                }

                #[tokio::test]
                async fn sqlite() {
                    super::$name($crate::TestDb::sqlite().await).await
                }
            }
        )*
    };
}
