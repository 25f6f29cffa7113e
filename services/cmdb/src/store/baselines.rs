//! PLACEHOLDER: store baselines (owned by a helper).
