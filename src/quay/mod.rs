//! Quay API client (reqwest): repositories, robots, permissions, with retries.
//!
//! Every call is idempotent in effect ("already exists" and "already gone" are
//! success), transient failures are retried under a bounded [`RetryPolicy`],
//! and permanent ones come back as a typed [`QuayError`] that says what to do.

mod client;
mod error;
mod metrics;
mod rate;
mod retry;

pub use client::{
    Creation, QuayClient, QuayConfig, Repository, Robot, RobotFields, RobotTokens, Role, TokenState,
};
pub use error::QuayError;
pub use metrics::QuayMetrics;
pub use rate::RateLimit;
pub use retry::{RetryPolicy, parse_retry_after};
