//! PLACEHOLDER: background jobs (the health report).
