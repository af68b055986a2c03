/// A source of "now" in milliseconds since the Unix epoch.
///
/// The registry never reads a clock itself; the layers above hold an `Arc<dyn Clock>` and
/// pass `clock.now_ms()` into every call that needs time. Tests implement it with a value
/// they move by hand.
pub trait Clock: Send + Sync {
    /// The current time in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}
