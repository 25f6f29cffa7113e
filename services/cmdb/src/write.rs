//! PLACEHOLDER: the CI write path.
