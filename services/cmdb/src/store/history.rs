//! PLACEHOLDER: store history (owned by a helper).
