//! File operations that wait for a descriptor rather than fail while the process (or the
//! system) has none free: a flood of client connections must never stop a node's storage,
//! and the listeners close those connections and free their descriptors soon enough
//! (docs/spec.md §3.6).

use std::io;
use std::time::{Duration, Instant};

/// The first and the longest wait between tries.
const WAIT: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

/// How often, at most, waiting is logged.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Whether `error` says that no file descriptor is free (`EMFILE`, `ENFILE`).
pub(crate) fn out_of_descriptors(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Runs `operation` (which opens a file) until it does not fail for want of a descriptor:
/// 10 ms between tries, doubling up to 1 s, a warning naming `what` every 10 s. Any other
/// answer is returned. Blocks the thread: call it where blocking is allowed.
pub(crate) fn when_free<T>(what: &str, mut operation: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut wait = WAIT.0;
    let mut warned: Option<Instant> = None;
    loop {
        match operation() {
            Err(e) if out_of_descriptors(&e) => {
                if warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                    warned = Some(Instant::now());
                    tracing::warn!(what, error = %e, "no file descriptor free: waiting for one");
                }
                std::thread::sleep(wait);
                wait = (wait * 2).min(WAIT.1);
            }
            answer => return answer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_that_finds_no_descriptor_is_tried_again_and_other_errors_are_not() {
        let mut tries = 0;
        let opened = when_free("a test file", || {
            tries += 1;
            match tries {
                1 => Err(io::Error::from_raw_os_error(libc::EMFILE)),
                2 => Err(io::Error::from_raw_os_error(libc::ENFILE)),
                _ => Ok(tries),
            }
        });
        assert_eq!(opened.unwrap(), 3);
        let mut tries = 0;
        let refused = when_free("a test file", || {
            tries += 1;
            Err::<(), _>(io::Error::from(io::ErrorKind::PermissionDenied))
        });
        assert_eq!(
            (refused.unwrap_err().kind(), tries),
            (io::ErrorKind::PermissionDenied, 1)
        );
    }
}
