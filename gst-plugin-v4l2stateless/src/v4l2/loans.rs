// SPDX-License-Identifier: MPL-2.0
//! CAPTURE buffers lent to downstream without a copy. A [`Loan`] travels with the
//! downstream buffer (on any thread); dropping it posts the slot index back. The decoder
//! drains the returns before it looks for a free slot, and waits for one (with a
//! timeout) only when every slot is lent out.
//!
//! Returns carry the allocation generation, so a loan outliving a reallocation (a
//! resolution change, a restart) cannot free a slot of the new buffer set.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

/// One CAPTURE slot held by downstream; returned on drop.
#[derive(Debug)]
pub struct Loan {
    index: usize,
    generation: u64,
    returns: Sender<(u64, usize)>,
}

impl Loan {
    pub fn index(&self) -> usize {
        self.index
    }
}

impl Drop for Loan {
    fn drop(&mut self) {
        // The decoder may be gone already: nothing to give back to then.
        let _ = self.returns.send((self.generation, self.index));
    }
}

/// The decoder's side: how many loans each slot has out, and the return channel.
#[derive(Debug)]
pub struct LoanBook {
    generation: u64,
    lent: Vec<u32>,
    returns_tx: Sender<(u64, usize)>,
    returns_rx: Receiver<(u64, usize)>,
}

impl Default for LoanBook {
    fn default() -> Self {
        Self::new()
    }
}

impl LoanBook {
    pub fn new() -> Self {
        let (returns_tx, returns_rx) = channel();
        Self {
            generation: 0,
            lent: Vec::new(),
            returns_tx,
            returns_rx,
        }
    }

    /// Starts over with `slots` slots: earlier loans no longer count.
    pub fn reset(&mut self, slots: usize) {
        self.generation += 1;
        self.lent = vec![0; slots];
    }

    /// More slots (the queue grew); existing loans stay valid.
    pub fn grow(&mut self, slots: usize) {
        if slots > self.lent.len() {
            self.lent.resize(slots, 0);
        }
    }

    pub fn slots(&self) -> usize {
        self.lent.len()
    }

    pub fn lend(&mut self, index: usize) -> Option<Loan> {
        let count = self.lent.get_mut(index)?;
        *count += 1;
        Some(Loan {
            index,
            generation: self.generation,
            returns: self.returns_tx.clone(),
        })
    }

    pub fn is_lent(&self, index: usize) -> bool {
        self.lent.get(index).is_some_and(|&n| n > 0)
    }

    pub fn lent_slots(&self) -> usize {
        self.lent.iter().filter(|&&n| n > 0).count()
    }

    /// Takes every return posted so far; returns how many slots became free.
    pub fn collect_returns(&mut self) -> usize {
        let mut freed = 0;
        while let Ok(returned) = self.returns_rx.try_recv() {
            freed += usize::from(self.give_back(returned));
        }
        freed
    }

    /// Waits up to `timeout` for one return of the current generation. False on timeout.
    pub fn wait_return(&mut self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.returns_rx.recv_timeout(left) {
                Ok(returned) => {
                    if self.give_back(returned) {
                        return true;
                    }
                }
                // The book holds a sender itself, so the channel never disconnects.
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    /// True when the slot became free.
    fn give_back(&mut self, (generation, index): (u64, usize)) -> bool {
        if generation != self.generation {
            return false;
        }
        match self.lent.get_mut(index) {
            Some(count) if *count > 0 => {
                *count -= 1;
                *count == 0
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_dropped_loan_frees_its_slot_on_collect() {
        let mut book = LoanBook::new();
        book.reset(3);
        let loan = book.lend(1).unwrap();
        assert!(book.is_lent(1));
        drop(loan);
        assert!(book.is_lent(1), "returns are only taken on collect");
        assert_eq!(book.collect_returns(), 1);
        assert!(!book.is_lent(1));
    }

    #[test]
    fn a_slot_lent_twice_is_free_after_both_returns() {
        let mut book = LoanBook::new();
        book.reset(2);
        let (a, b) = (book.lend(0).unwrap(), book.lend(0).unwrap());
        drop(a);
        book.collect_returns();
        assert!(book.is_lent(0));
        drop(b);
        book.collect_returns();
        assert!(!book.is_lent(0));
    }

    #[test]
    fn loans_of_an_earlier_generation_are_ignored() {
        let mut book = LoanBook::new();
        book.reset(2);
        let old = book.lend(0).unwrap();
        book.reset(2);
        let new = book.lend(0).unwrap();
        drop(old);
        assert_eq!(book.collect_returns(), 0);
        assert!(book.is_lent(0));
        drop(new);
        assert_eq!(book.collect_returns(), 1);
    }

    #[test]
    fn lending_an_unknown_slot_fails() {
        let mut book = LoanBook::new();
        book.reset(1);
        assert!(book.lend(1).is_none());
    }

    #[test]
    fn a_wait_ends_with_a_return_from_another_thread_or_times_out() {
        let mut book = LoanBook::new();
        book.reset(1);
        assert!(!book.wait_return(Duration::from_millis(10)));
        let loan = book.lend(0).unwrap();
        let t = std::thread::spawn(move || drop(loan));
        assert!(book.wait_return(Duration::from_secs(60)));
        t.join().unwrap();
        assert!(!book.is_lent(0));
    }

    proptest! {
        /// Whatever the order of lends and returns, a slot is lent exactly while a loan
        /// of the current generation for it is alive.
        #[test]
        fn lent_state_matches_live_loans(ops in prop::collection::vec((0usize..4, any::<bool>()), 0..64)) {
            let mut book = LoanBook::new();
            book.reset(4);
            let mut live: Vec<Loan> = Vec::new();
            for (slot, lend) in ops {
                if lend {
                    live.push(book.lend(slot).unwrap());
                } else if let Some(pos) = live.iter().position(|l| l.index() == slot) {
                    live.swap_remove(pos);
                }
                book.collect_returns();
                for s in 0..4 {
                    prop_assert_eq!(book.is_lent(s), live.iter().any(|l| l.index() == s));
                }
            }
        }
    }
}
