//! Generated types, gRPC clients and servers for every contract in `proto/`.
//!
//! This is the only thing services share about each other: a service knows
//! another through these clients and the event payloads, never through its
//! code or its tables. Modules follow the protobuf packages, e.g.
//! [`itsm::incidents::v1`].
// Generated code: prost and tonic decide its shape, not our lints.
#![allow(clippy::all, clippy::pedantic, missing_debug_implementations)]

include!(concat!(env!("OUT_DIR"), "/itsm.rs"));

/// The encoded `FileDescriptorSet` of every contract, with its imports
/// (well-known types included), for server reflection and REST transcoding.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/itsm_descriptor.bin"));
