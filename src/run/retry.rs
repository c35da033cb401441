//! Retries of failed cells: which errors a policy may retry, and the delay before each retry.

use std::time::Duration;

use crate::backend::ErrorKind;
use crate::manifest::{RetryPolicy, RetryableError};
use crate::plan::SplitMix64;

/// The retry class of an error kind, if the policy may retry it.
pub fn retry_class(kind: ErrorKind) -> Option<RetryableError> {
    match kind {
        ErrorKind::ConnectionRefused => Some(RetryableError::Connect),
        ErrorKind::Timeout => Some(RetryableError::Timeout),
        ErrorKind::ServerError | ErrorKind::QueueFull | ErrorKind::HttpStatus => {
            Some(RetryableError::ServerError)
        }
        ErrorKind::StreamError | ErrorKind::Truncated | ErrorKind::MalformedResponse => {
            Some(RetryableError::Stream)
        }
        ErrorKind::ModelNotFound
        | ErrorKind::BadRequest
        | ErrorKind::TooLarge
        | ErrorKind::AgentProgram => None,
    }
}

/// Delay before retry `attempt` (1 = first retry): exponential from `backoff_ms`, capped at
/// `max_backoff_ms`, with ±50 % jitter drawn from a PRNG seeded by the cell id.
pub fn backoff(policy: &RetryPolicy, attempt: u32, cell_id: &str) -> Duration {
    let base = policy
        .backoff_ms
        .saturating_mul(1u64 << attempt.saturating_sub(1).min(20));
    let capped = base.min(policy.max_backoff_ms) as f64;
    let factor = if policy.jitter {
        let seed = cell_id.bytes().fold(u64::from(attempt), |h, b| {
            h.wrapping_mul(31).wrapping_add(u64::from(b))
        });
        0.5 + (SplitMix64(seed).next_u64() % 1000) as f64 / 1000.0
    } else {
        1.0
    };
    Duration::from_millis((capped * factor) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters_deterministically() {
        let p = RetryPolicy {
            jitter: false,
            backoff_ms: 100,
            max_backoff_ms: 1000,
            ..RetryPolicy::default()
        };
        assert_eq!(backoff(&p, 1, "a"), Duration::from_millis(100));
        assert_eq!(backoff(&p, 2, "a"), Duration::from_millis(200));
        assert_eq!(backoff(&p, 5, "a"), Duration::from_millis(1000));
        let j = RetryPolicy { jitter: true, ..p };
        let d = backoff(&j, 2, "abc");
        assert!(
            d >= Duration::from_millis(100) && d < Duration::from_millis(300),
            "{d:?}"
        );
        assert_eq!(d, backoff(&j, 2, "abc"));
    }

    #[test]
    fn retry_classes_follow_the_policy_vocabulary() {
        assert_eq!(
            retry_class(ErrorKind::ConnectionRefused),
            Some(RetryableError::Connect)
        );
        assert_eq!(
            retry_class(ErrorKind::QueueFull),
            Some(RetryableError::ServerError)
        );
        assert_eq!(
            retry_class(ErrorKind::Truncated),
            Some(RetryableError::Stream)
        );
        assert_eq!(retry_class(ErrorKind::ModelNotFound), None);
        assert_eq!(retry_class(ErrorKind::BadRequest), None);
    }
}
