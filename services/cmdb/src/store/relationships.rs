//! PLACEHOLDER: store relationships (owned by a helper).
