//! Which acknowledgements to send, and how few frames suffice.
//!
//! Messages of different conversations finish out of order, so each one is
//! acknowledged only once *it* was handled. On a quorum queue every
//! acknowledgement frame is a command in the queue's log; one `multiple`
//! acknowledgement settles a whole run of finished messages at once. A run
//! may only start at the oldest open delivery (`multiple` settles every
//! delivery up to its tag), so a finished message behind one still in work
//! waits a short while for the run to reach it, then is acknowledged on its
//! own: a message retried for minutes never holds the others' acks back by
//! more than that while.

use std::collections::VecDeque;

/// One acknowledgement frame: the delivery `ack` is for, alone or with
/// every open delivery before it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct AckFrame<A> {
    pub ack: A,
    pub multiple: bool,
}

/// The open deliveries of one channel, oldest first.
#[derive(Debug)]
pub(crate) struct PendingAcks<A> {
    /// Delivery tag, and its ack once the message is finished. `None`:
    /// in work, or to be left for the broker to redeliver.
    open: VecDeque<(u64, Option<A>)>,
    finished: usize,
}

impl<A> Default for PendingAcks<A> {
    fn default() -> Self {
        Self {
            open: VecDeque::new(),
            finished: 0,
        }
    }
}

impl<A> PendingAcks<A> {
    /// A delivery arrived (tags grow on a channel).
    pub(crate) fn received(&mut self, tag: u64) {
        match self.open.back() {
            Some((last, _)) if *last >= tag => {
                let at = self.open.partition_point(|(open, _)| *open < tag);
                if self.open.get(at).is_none_or(|(open, _)| *open != tag) {
                    self.open.insert(at, (tag, None));
                }
            }
            _ => self.open.push_back((tag, None)),
        }
    }

    /// The message of `tag` was handled: its ack is due.
    pub(crate) fn finished(&mut self, tag: u64, ack: A) {
        if let Ok(at) = self.open.binary_search_by_key(&tag, |(open, _)| *open)
            && let Some((_, slot)) = self.open.get_mut(at)
        {
            if slot.is_none() {
                self.finished += 1;
            }
            *slot = Some(ack);
        }
    }

    /// Acks due and not yet taken.
    pub(crate) fn due(&self) -> usize {
        self.finished
    }

    /// Deliveries not acknowledged yet (in work or due).
    pub(crate) fn open(&self) -> usize {
        self.open.len()
    }

    /// The finished run at the oldest end as one frame, if it is at least
    /// `min_run` long.
    pub(crate) fn take_run(&mut self, min_run: usize) -> Option<AckFrame<A>> {
        let run = self
            .open
            .iter()
            .take_while(|(_, ack)| ack.is_some())
            .count();
        if run == 0 || run < min_run {
            return None;
        }
        let mut last = None;
        for _ in 0..run {
            last = self.open.pop_front().and_then(|(_, ack)| ack);
        }
        self.finished -= run;
        last.map(|ack| AckFrame {
            ack,
            multiple: run > 1,
        })
    }

    /// Every due ack: the run at the oldest end as one frame, each one
    /// behind an unfinished delivery on its own.
    pub(crate) fn take_all(&mut self) -> Vec<AckFrame<A>> {
        let mut frames: Vec<AckFrame<A>> = self.take_run(1).into_iter().collect();
        if self.finished > 0 {
            let mut kept = VecDeque::with_capacity(self.open.len() - self.finished);
            for (tag, ack) in self.open.drain(..) {
                match ack {
                    Some(ack) => frames.push(AckFrame {
                        ack,
                        multiple: false,
                    }),
                    None => kept.push_back((tag, None)),
                }
            }
            self.open = kept;
            self.finished = 0;
        }
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ack: u64, multiple: bool) -> AckFrame<u64> {
        AckFrame { ack, multiple }
    }

    fn received(tags: std::ops::RangeInclusive<u64>) -> PendingAcks<u64> {
        let mut acks = PendingAcks::default();
        for tag in tags {
            acks.received(tag);
        }
        acks
    }

    #[test]
    fn a_finished_run_at_the_oldest_end_is_one_multiple_frame() {
        let mut acks = received(1..=5);
        acks.finished(2, 2);
        acks.finished(3, 3);
        // 1 is still in work: acknowledging 3 with `multiple` would settle it.
        assert_eq!(acks.take_run(1), None);
        acks.finished(1, 1);
        assert_eq!(acks.take_run(4), None, "shorter than asked");
        assert_eq!(acks.take_run(3), Some(frame(3, true)));
        assert_eq!((acks.open(), acks.due()), (2, 0));
        acks.finished(4, 4);
        assert_eq!(acks.take_run(1), Some(frame(4, false)));
        assert_eq!(acks.open(), 1);
    }

    #[test]
    fn finished_behind_an_unfinished_delivery_go_singly_and_it_stays_open() {
        let mut acks = received(1..=6);
        for tag in [1, 2, 4, 6] {
            acks.finished(tag, tag);
        }
        assert_eq!(
            acks.take_all(),
            vec![frame(2, true), frame(4, false), frame(6, false)]
        );
        assert_eq!((acks.open(), acks.due()), (2, 0));
        // 3 and 5 are still open: a later run must stop before them.
        acks.received(7);
        acks.finished(7, 7);
        assert_eq!(acks.take_run(1), None);
        acks.finished(3, 3);
        assert_eq!(acks.take_run(1), Some(frame(3, false)));
        acks.finished(5, 5);
        assert_eq!(acks.take_run(1), Some(frame(7, true)));
        assert_eq!((acks.open(), acks.due()), (0, 0));
        assert!(acks.take_all().is_empty());
    }

    #[test]
    fn unknown_or_repeated_tags_never_give_two_frames() {
        let mut acks = received(1..=2);
        acks.finished(9, 9);
        acks.finished(1, 1);
        acks.finished(1, 1);
        acks.received(2);
        assert_eq!(acks.due(), 1);
        assert_eq!(acks.take_all(), vec![frame(1, false)]);
        assert_eq!(acks.open(), 1);
        // Out of order arrival is kept in tag order: 4 comes before 5.
        acks.received(5);
        acks.received(4);
        acks.finished(4, 4);
        acks.finished(2, 2);
        assert_eq!(acks.take_run(1), Some(frame(4, true)));
        assert_eq!(acks.open(), 1);
        acks.finished(5, 5);
        assert_eq!(acks.take_run(1), Some(frame(5, false)));
    }
}
