//! `itsm health`: asks a running service's grpc.health.v1 whether it serves,
//! for container healthchecks and for the person on call.

use std::time::Duration;

use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::cli::CliError;

/// Prints the status; `Ok(true)` only for SERVING.
pub async fn check(addr: &str, service: &str, timeout: Duration) -> Result<bool, CliError> {
    let unreachable = |reason: String| CliError::Health {
        addr: addr.to_owned(),
        reason,
    };
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| unreachable(e.to_string()))?
        .connect_timeout(timeout)
        .timeout(timeout);
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| unreachable(format!("cannot connect: {e}")))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .map_err(|status| unreachable(format!("{:?}: {}", status.code(), status.message())))?;
    let status =
        ServingStatus::try_from(response.into_inner().status).unwrap_or(ServingStatus::Unknown);
    println!("{}", status.as_str_name());
    Ok(status == ServingStatus::Serving)
}
