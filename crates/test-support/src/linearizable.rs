//! A linearizability checker for histories of one boolean register per key (an instance
//! is registered or not), after Wing and Gong's search with Lowe's memo of visited states:
//! is there one order of the operations, each taking effect at an instant between its call
//! and its return, in which every read sees the last write before it?
//!
//! Operations whose outcome is unknown (a timeout, a 503 that says `indeterminate`) may
//! take effect at any instant after their call, or never. Operations that certainly did
//! not happen are left out of the history by the caller.

use std::collections::{BTreeMap, HashSet};

/// What an operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Set the key (`true`: registered, `false`: unregistered).
    Write(bool),
    /// Read the key and saw this.
    Read(bool),
}

/// One operation of a history: on `key`, called at `call` and answered at `ret` (`None`:
/// no answer, or one that leaves its outcome unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The register it acts on.
    pub key: u32,
    /// What it did.
    pub op: Action,
    /// When it was sent (any monotonic unit).
    pub call: u64,
    /// When it was answered; `None` when its outcome is unknown.
    pub ret: Option<u64>,
}

/// Checks every key's history on its own (registers are independent); the initial value
/// of every key is `false`. Answers the first key that has no linearization, with its
/// history, as the error.
pub fn check(history: &[Event]) -> Result<(), String> {
    let mut by_key: BTreeMap<u32, Vec<&Event>> = BTreeMap::new();
    for event in history {
        by_key.entry(event.key).or_default().push(event);
    }
    for (key, events) in by_key {
        if !linearizable(&events) {
            let mut text = format!("key {key} has no linearization; its history:\n");
            for e in &events {
                text.push_str(&format!("  {:?} called {} returned {:?}\n", e.op, e.call, e.ret));
            }
            return Err(text);
        }
    }
    Ok(())
}

/// The most operations one key's history may hold (the search keeps a bit per operation).
const MAX_OPS: usize = 64 * WORDS;
const WORDS: usize = 8;

/// A set of operations, a bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
struct Set([u64; WORDS]);

impl Set {
    fn has(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    fn with(mut self, i: usize) -> Set {
        self.0[i / 64] |= 1 << (i % 64);
        self
    }

    fn covers(&self, other: &Set) -> bool {
        self.0.iter().zip(other.0.iter()).all(|(a, b)| a & b == *b)
    }
}

/// The search for one key: a state is the set of operations already placed and the
/// register's value after them; each step places one operation that may go next. An
/// operation whose outcome is unknown constrains nothing (it has no return) and need not
/// be placed at all: it may never have happened. States seen once are not searched again.
fn linearizable(events: &[&Event]) -> bool {
    let n = events.len();
    assert!(
        n <= MAX_OPS,
        "a key's history of {n} operations is too long to search (at most {MAX_OPS})"
    );
    // Operations answered for certain must all be placed; unknown ones may be left out.
    let required = (0..n)
        .filter(|i| events[*i].ret.is_some())
        .fold(Set::default(), Set::with);
    let mut seen: HashSet<(Set, bool)> = HashSet::new();
    let mut stack: Vec<(Set, bool)> = vec![(Set::default(), false)];
    while let Some((done, value)) = stack.pop() {
        if done.covers(&required) {
            return true;
        }
        if !seen.insert((done, value)) {
            continue;
        }
        // An operation can go next only if it was called before every pending operation
        // that has returned returned: nothing placed later may have completed before it
        // began.
        let earliest_return = (0..n)
            .filter(|i| !done.has(*i))
            .filter_map(|i| events[i].ret)
            .min()
            .unwrap_or(u64::MAX);
        for i in (0..n).filter(|i| !done.has(*i)) {
            if events[i].call > earliest_return {
                continue;
            }
            match events[i].op {
                Action::Write(v) => stack.push((done.with(i), v)),
                Action::Read(v) if v == value => stack.push((done.with(i), value)),
                Action::Read(_) => {}
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(key: u32, op: Action, call: u64, ret: Option<u64>) -> Event {
        Event { key, op, call, ret }
    }

    #[test]
    fn sequential_histories_follow_the_last_write() {
        let ok = [
            e(1, Action::Read(false), 0, Some(1)),
            e(1, Action::Write(true), 2, Some(3)),
            e(1, Action::Read(true), 4, Some(5)),
            e(1, Action::Write(false), 6, Some(7)),
            e(1, Action::Read(false), 8, Some(9)),
        ];
        assert_eq!(check(&ok), Ok(()));
        // A read after a completed write that does not see it: a lost or stale write.
        let stale = [
            e(1, Action::Write(true), 0, Some(1)),
            e(1, Action::Read(false), 2, Some(3)),
        ];
        assert!(check(&stale).is_err());
        // A read that sees a value no write gave, before any write began.
        let invented = [
            e(1, Action::Read(true), 0, Some(1)),
            e(1, Action::Write(true), 2, Some(3)),
        ];
        assert!(check(&invented).is_err());
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        // The write overlaps both reads: the first may see the old value, the second the new.
        let ok = [
            e(1, Action::Write(true), 0, Some(10)),
            e(1, Action::Read(false), 1, Some(2)),
            e(1, Action::Read(true), 3, Some(4)),
        ];
        assert_eq!(check(&ok), Ok(()));
        // But once one read saw the new value, a later read may not see the old one.
        let flicker = [
            e(1, Action::Write(true), 0, Some(10)),
            e(1, Action::Read(true), 1, Some(2)),
            e(1, Action::Read(false), 3, Some(4)),
        ];
        assert!(check(&flicker).is_err());
    }

    #[test]
    fn an_unknown_write_may_happen_late_or_never() {
        let late = [
            e(1, Action::Write(true), 0, None),
            e(1, Action::Read(false), 5, Some(6)),
            e(1, Action::Read(true), 7, Some(8)),
        ];
        assert_eq!(check(&late), Ok(()));
        let never = [
            e(1, Action::Write(true), 0, None),
            e(1, Action::Read(false), 5, Some(6)),
        ];
        assert_eq!(check(&never), Ok(()));
        // Once it has been seen it cannot be undone without another write.
        let undone = [
            e(1, Action::Write(true), 0, None),
            e(1, Action::Read(true), 5, Some(6)),
            e(1, Action::Read(false), 7, Some(8)),
        ];
        assert!(check(&undone).is_err());
    }

    #[test]
    fn keys_are_independent() {
        let ok = [
            e(1, Action::Write(true), 0, Some(1)),
            e(2, Action::Read(false), 2, Some(3)),
            e(1, Action::Read(true), 4, Some(5)),
        ];
        assert_eq!(check(&ok), Ok(()));
        let wrong = [
            e(2, Action::Write(true), 0, Some(1)),
            e(2, Action::Read(false), 2, Some(3)),
        ];
        assert!(check(&wrong).unwrap_err().starts_with("key 2"));
    }
}
