//! CIs through the API: create (defaults, idempotency, validate_only, every
//! bad field named with nothing written), reads (cache, read masks, time
//! zones, batches), lists (core and attribute filters, paging), updates
//! (masks, etags, reclassification), retirement, history and as-of reads.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// The shared harness (support/mod.rs) holds a client without Debug.
#![allow(missing_debug_implementations)]

#[path = "support/mod.rs"]
mod support;

#[path = "cis/create.rs"]
mod create;
#[path = "cis/history.rs"]
mod history;
#[path = "cis/list.rs"]
mod list;
#[path = "cis/read.rs"]
mod read;
#[path = "cis/update.rs"]
mod update;

use itsm_proto::itsm::cmdb::v1 as pb;
use tonic::Status;

use support::{CMDB_ADMIN, Harness, as_};

/// Creates `ci` as the CMDB admin, or the error.
pub async fn try_create(h: &mut Harness, ci: pb::Ci) -> Result<pb::Ci, Status> {
    let request = pb::CreateCiRequest {
        ci: Some(ci),
        request_id: String::new(),
        validate_only: false,
    };
    h.client
        .create_ci(as_(CMDB_ADMIN, request))
        .await
        .map(tonic::Response::into_inner)
}

/// Updates the fields `paths` of `ci` (its name set) at `etag`.
pub async fn try_update(
    h: &mut Harness,
    ci: pb::Ci,
    paths: &[&str],
    etag: &str,
) -> Result<pb::Ci, Status> {
    let request = pb::UpdateCiRequest {
        ci: Some(ci),
        update_mask: Some(prost_types::FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        }),
        etag: etag.to_owned(),
    };
    h.client
        .update_ci(as_(CMDB_ADMIN, request))
        .await
        .map(tonic::Response::into_inner)
}

/// An enum attribute value.
pub fn choice(value: &str) -> pb::AttributeValue {
    pb::AttributeValue {
        value: Some(pb::attribute_value::Value::EnumValue(value.to_owned())),
    }
}

/// A reference attribute value.
pub fn reference(value: &str) -> pb::AttributeValue {
    pb::AttributeValue {
        value: Some(pb::attribute_value::Value::ReferenceValue(value.to_owned())),
    }
}
