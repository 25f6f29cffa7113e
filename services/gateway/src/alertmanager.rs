//! The Prometheus Alertmanager webhook: `POST /v1/alertmanager/webhook`.
//!
//! Point a receiver's `webhook_configs` at it with the credentials of a
//! service account allowed to ingest alerts (`http_config.authorization`:
//! a bearer JWT or API key). The payload (version 4) is mapped by
//! `itsm-alertmanager` (shared with the incidents service) to
//! `IncidentService.IngestAlerts`, which de-duplicates by fingerprint: a
//! storm of identical alerts opens one incident. The alerts' source is
//! `alertmanager/<receiver>`, or what the `source` query parameter or the
//! `x-alert-source` header says.
//!
//! Answers 200 with the intake's result per alert (`results`: outcome and
//! incident), 400 naming the line and column when the body is not such a
//! payload, and the usual JSON errors otherwise. Alertmanager retries on
//! 5xx, which the intake's de-duplication makes harmless.

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use itsm_proto::itsm::incidents::v1 as pb;
use prost::Message;
use prost_reflect::DynamicMessage;

use crate::rest::Rest;
use crate::rest::problem::Problem;

/// Where the webhook is served.
pub const WEBHOOK_PATH: &str = "/v1/alertmanager/webhook";

/// The intake method the webhook calls.
const INGEST: &str = "/itsm.incidents.v1.IncidentService/IngestAlerts";

/// The most alerts IngestAlerts takes per call; larger payloads are sent in parts.
const BATCH: usize = 1000;

const SOURCE_HEADER: &str = "x-alert-source";

pub(crate) async fn handle(rest: &Rest, request: Request) -> Response {
    match ingest(rest, request).await {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    }
}

async fn ingest(rest: &Rest, request: Request) -> Result<Response, Problem> {
    let (parts, body) = request.into_parts();
    let source = source(parts.uri.query(), &parts.headers)?;
    let body = axum::body::to_bytes(body, rest.max_body())
        .await
        .map_err(|_| {
            let mut problem = Problem::new(
                tonic::Code::InvalidArgument,
                format!(
                    "the webhook body is larger than {} bytes, or was cut off",
                    rest.max_body()
                ),
            );
            problem.http_status = Some(http::StatusCode::PAYLOAD_TOO_LARGE);
            problem
        })?;
    let mut alerts = itsm_alertmanager::alerts_from_webhook(&body)
        .map_err(|error| Problem::from(tonic::Status::from(error)))?;
    if let Some(source) = source {
        for alert in &mut alerts {
            alert.source.clone_from(&source);
        }
    }
    let output = rest
        .routes()
        .pool
        .get_message_by_name("itsm.incidents.v1.IngestAlertsResponse")
        .ok_or_else(|| {
            Problem::new(
                tonic::Code::Internal,
                "IngestAlertsResponse is not in the contracts",
            )
        })?;
    let mut results = DynamicMessage::new(output);
    let mut request_id = None;
    // An empty notification still goes through, so the intake judges it.
    let batches: Vec<Vec<pb::Alert>> = if alerts.is_empty() {
        vec![Vec::new()]
    } else {
        alerts.chunks(BATCH).map(<[pb::Alert]>::to_vec).collect()
    };
    for batch in batches {
        let message = pb::IngestAlertsRequest { alerts: batch };
        let (reply, id) = rest
            .call_message(INGEST, &parts.headers, Bytes::from(message.encode_to_vec()))
            .await?;
        // Appends this part's results to the earlier parts'.
        results
            .merge(reply.as_ref())
            .map_err(|error| Problem::new(tonic::Code::Internal, error.to_string()))?;
        request_id = Some(id);
    }
    let json = crate::rest::json::to_json(&results)?;
    let mut response = axum::Json(json).into_response();
    if let Some(id) = request_id {
        response.headers_mut().insert(crate::edge::REQUEST_ID, id);
    }
    Ok(response)
}

/// The `source` query parameter or `x-alert-source` header, when given.
fn source(query: Option<&str>, headers: &http::HeaderMap) -> Result<Option<String>, Problem> {
    let from_query = query.and_then(|q| {
        q.split('&')
            .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
            .find(|(key, _)| *key == "source")
            .map(|(_, value)| value.to_owned())
    });
    let raw = match from_query {
        Some(value) => Some((
            "source",
            crate::rest::template::percent_decode(&value.replace('+', " ")).ok_or_else(|| {
                Problem::invalid_field("source", "is not valid percent-encoded UTF-8")
            })?,
        )),
        None => match headers.get(SOURCE_HEADER) {
            Some(value) => Some((
                SOURCE_HEADER,
                value
                    .to_str()
                    .map_err(|_| Problem::invalid_field(SOURCE_HEADER, "is not text"))?
                    .to_owned(),
            )),
            None => None,
        },
    };
    match raw {
        None => Ok(None),
        Some((field, value)) => {
            let value = value.trim().to_owned();
            if value.is_empty() || value.len() > 200 {
                return Err(Problem::invalid_field(field, "must be 1 to 200 characters"));
            }
            Ok(Some(value))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_comes_from_the_query_or_the_header() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(source(None, &headers).unwrap(), None);
        headers.insert(SOURCE_HEADER, "prometheus-eu".parse().unwrap());
        assert_eq!(
            source(None, &headers).unwrap().as_deref(),
            Some("prometheus-eu")
        );
        assert_eq!(
            source(Some("x=1&source=prom%2Dus+east"), &headers)
                .unwrap()
                .as_deref(),
            Some("prom-us east")
        );
        assert_eq!(
            source(Some("source="), &headers).unwrap_err().status(),
            http::StatusCode::BAD_REQUEST
        );
    }
}
