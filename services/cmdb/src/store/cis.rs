//! PLACEHOLDER: store cis (owned by a helper).
