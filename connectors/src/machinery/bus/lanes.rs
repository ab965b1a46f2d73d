//! Per-conversation sequencing inside one shard session: at most one
//! message of a conversation is in work at a time, later ones wait here in
//! arrival order. A conversation with nothing in work holds no state at
//! all, so a service that saw a million guests keeps only the ones it is
//! working on right now.

use std::collections::{HashMap, VecDeque};

/// Capacity of the map that is kept when it empties.
const SMALL: usize = 64;

/// Conversations with a message in work, and what waits behind it.
#[derive(Debug)]
pub(crate) struct Lanes<T> {
    busy: HashMap<String, VecDeque<T>>,
}

impl<T> Default for Lanes<T> {
    fn default() -> Self {
        Self {
            busy: HashMap::new(),
        }
    }
}

impl<T> Lanes<T> {
    /// A new message of `conversation`: returned if it may start now,
    /// kept (and `None` returned) if an earlier one is still in work.
    pub(crate) fn arrive(&mut self, conversation: &str, item: T) -> Option<T> {
        match self.busy.get_mut(conversation) {
            Some(waiting) => {
                waiting.push_back(item);
                None
            }
            None => {
                self.busy.insert(conversation.to_owned(), VecDeque::new());
                Some(item)
            }
        }
    }

    /// The message in work of `conversation` is finished: the next one to
    /// start, if any. Without one the conversation is forgotten.
    pub(crate) fn finished(&mut self, conversation: &str) -> Option<T> {
        let waiting = self.busy.get_mut(conversation)?;
        let next = waiting.pop_front();
        if next.is_none() {
            self.busy.remove(conversation);
            // A map keeps its capacity: give back what a burst of
            // conversations made it grow to.
            if self.busy.is_empty() && self.busy.capacity() > SMALL {
                self.busy.shrink_to_fit();
            }
        }
        next
    }

    /// Conversations with a message in work.
    pub(crate) fn busy(&self) -> usize {
        self.busy.len()
    }

    /// Messages waiting behind one in work.
    pub(crate) fn waiting(&self) -> usize {
        self.busy.values().map(VecDeque::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_message_per_conversation_in_work_the_rest_in_order() {
        let mut lanes = Lanes::default();
        assert_eq!(lanes.arrive("a", 1), Some(1));
        assert_eq!(lanes.arrive("b", 10), Some(10));
        assert_eq!(lanes.arrive("a", 2), None);
        assert_eq!(lanes.arrive("a", 3), None);
        assert_eq!((lanes.busy(), lanes.waiting()), (2, 2));
        assert_eq!(lanes.finished("a"), Some(2));
        assert_eq!(lanes.arrive("a", 4), None);
        assert_eq!(lanes.finished("a"), Some(3));
        assert_eq!(lanes.finished("a"), Some(4));
        assert_eq!(lanes.finished("a"), None);
        assert_eq!(lanes.busy(), 1);
    }

    #[test]
    fn a_finished_conversation_holds_nothing() {
        let mut lanes = Lanes::default();
        let keys: Vec<String> = (0..1000).map(|guest| format!("guest-{guest}")).collect();
        for (guest, key) in keys.iter().enumerate() {
            assert_eq!(lanes.arrive(key, guest), Some(guest));
        }
        assert_eq!(lanes.busy(), 1000);
        for key in &keys {
            assert_eq!(lanes.finished(key), None);
        }
        assert_eq!((lanes.busy(), lanes.waiting()), (0, 0));
        assert_eq!(lanes.busy.capacity(), 0);
        // Unknown or already forgotten: nothing to start.
        assert_eq!(lanes.finished("guest-1"), None);
        assert_eq!(lanes.arrive("guest-1", 7), Some(7));
    }
}
