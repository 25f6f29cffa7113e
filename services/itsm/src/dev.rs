//! `itsm dev`: the whole platform in one process, for a laptop.
//!
//! Every practice is served on one port (one address to remember); services
//! that call each other use that address too. Storage is embedded under the
//! data directory, so nothing outside this process is needed.

use std::path::PathBuf;

use itsm_platform::config::Config;
use itsm_platform::{Drain, GrpcServer, shutdown};

use crate::cli::CliError;
use crate::practice::Practice;

pub async fn run(config: Config, data_dir: PathBuf) -> Result<Drain, CliError> {
    std::fs::create_dir_all(&data_dir).map_err(|source| CliError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    // One SQLite file per practice, as each service owns its database.
    for practice in Practice::ALL {
        let file = data_dir.join(format!("{}.db", practice.name()));
        let db = practice
            .open_database(&format!("sqlite://{}", file.display()))
            .await?;
        db.close().await;
    }
    let server = Practice::ALL
        .into_iter()
        .fold(GrpcServer::new(&config), |server, practice| {
            practice.add_to(server)
        });
    let server = server.bind().await?;
    print_banner(&server.local_addr().to_string(), &data_dir);
    Ok(server.serve(shutdown::signal()).await?)
}

/// What a newcomer needs to call the platform, on stdout.
fn print_banner(addr: &str, data_dir: &std::path::Path) {
    println!("ITSM dev is running: every practice in this one process, embedded storage.");
    println!();
    println!("  gRPC       {addr}  (plaintext; health and reflection on)");
    println!("  data dir   {}", data_dir.display());
    println!();
    for practice in Practice::ALL {
        println!("  {:<10} {}", practice.name(), practice.service_name());
    }
    println!();
    println!("Try it:");
    println!("  grpcurl -plaintext {addr} list");
    println!("  grpcurl -plaintext {addr} grpc.health.v1.Health/Check");
    println!("  grpcurl -plaintext {addr} describe itsm.incidents.v1.IncidentService");
    println!();
    println!("Methods not built yet answer UNIMPLEMENTED. Stop with Ctrl-C.");
}
