//! PLACEHOLDER: store health (owned by a helper).
