//! PLACEHOLDER: the CI filter language.
