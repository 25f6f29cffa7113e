//! PLACEHOLDER: store parked (owned by a helper).
