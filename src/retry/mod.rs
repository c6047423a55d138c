//! Retrying requests (in progress). [`retry_after`] parses the `Retry-After` header.

mod retry_after;

pub use retry_after::retry_after;
