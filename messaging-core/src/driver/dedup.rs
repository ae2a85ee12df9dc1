//! Duplicate suppression by `_unique_id`, as oslo's RPC listener does after a
//! redelivery (a failed ack): the last 16 ids are remembered per listener.

use std::collections::VecDeque;

/// How many recent ids oslo remembers (`DUP_MSG_CHECK_SIZE`).
pub const DEFAULT_CAPACITY: usize = 16;

/// Remembers the most recent unique ids and spots repeats.
///
/// ```
/// use messaging_core::driver::DuplicateFilter;
/// let mut seen = DuplicateFilter::default();
/// assert!(!seen.check_and_remember("a"));
/// assert!(seen.check_and_remember("a"));
/// ```
#[derive(Debug, Clone)]
pub struct DuplicateFilter {
    recent: VecDeque<String>,
    capacity: usize,
}

impl DuplicateFilter {
    /// A filter remembering `capacity` ids (at least one).
    pub fn new(capacity: usize) -> Self {
        DuplicateFilter {
            recent: VecDeque::with_capacity(capacity.max(1)),
            capacity: capacity.max(1),
        }
    }

    /// True when `id` is among the remembered ones (a duplicate to drop); otherwise
    /// remembers it, forgetting the oldest beyond the capacity.
    pub fn check_and_remember(&mut self, id: &str) -> bool {
        if self.recent.iter().any(|seen| seen == id) {
            return true;
        }
        if self.recent.len() == self.capacity {
            self.recent.pop_front();
        }
        self.recent.push_back(id.to_string());
        false
    }
}

impl Default for DuplicateFilter {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_last_sixteen() {
        let mut f = DuplicateFilter::default();
        for i in 0..17 {
            assert!(!f.check_and_remember(&i.to_string()));
        }
        assert!(!f.check_and_remember("0"), "the oldest was forgotten");
        assert!(f.check_and_remember("16"));
        assert!(f.check_and_remember("2"));
    }
}
