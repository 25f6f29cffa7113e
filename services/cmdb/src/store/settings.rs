//! PLACEHOLDER: store settings (owned by a helper).
