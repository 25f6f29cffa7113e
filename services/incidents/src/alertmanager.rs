//! Prometheus Alertmanager's webhook (payload version 4) as `IngestAlerts`
//! alerts. The mapping lives in `itsm-alertmanager`, shared with the
//! gateway, which serves the webhook over HTTP.

pub use itsm_alertmanager::{alerts_from_webhook, severity};
