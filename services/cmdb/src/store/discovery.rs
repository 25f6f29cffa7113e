//! PLACEHOLDER: store discovery (owned by a helper).
