//! Frames waiting to be written, written many at a time with one vectored
//! write: a batch of small frames costs one syscall.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes};

/// At most this many frames go into one vectored write.
pub(crate) const MAX_IOVECS: usize = 64;

/// A FIFO of encoded frames, each with a token returned once it is fully
/// written.
#[derive(Debug)]
pub(crate) struct WriteQueue<T> {
    frames: VecDeque<(Bytes, T)>,
}

impl<T> Default for WriteQueue<T> {
    fn default() -> Self {
        WriteQueue {
            frames: VecDeque::new(),
        }
    }
}

impl<T> WriteQueue<T> {
    /// Queues a frame.
    pub fn push(&mut self, frame: Bytes, token: T) {
        if !frame.is_empty() {
            self.frames.push_back((frame, token));
        }
    }

    /// Nothing left to write?
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// What is left of the front frame if it is the only one: written with
    /// a plain write, without the array of [`MAX_IOVECS`] slices a vectored
    /// write fills (1 KiB to set up: ~100 instructions a write, callgrind).
    pub fn only(&self) -> Option<&Bytes> {
        match self.frames.len() {
            1 => self.frames.front().map(|(frame, _)| frame),
            _ => None,
        }
    }

    /// Fills `slices` with the front of the queue; returns how many it used.
    pub fn fill<'a>(&'a self, slices: &mut [IoSlice<'a>; MAX_IOVECS]) -> usize {
        let mut used = 0;
        for (slot, (frame, _)) in slices.iter_mut().zip(&self.frames) {
            *slot = IoSlice::new(frame);
            used += 1;
        }
        used
    }

    /// Records that `written` bytes went out; calls `done` with the token
    /// of each frame that is now fully written.
    pub fn advance(&mut self, mut written: usize, mut done: impl FnMut(T)) {
        while written > 0 {
            let Some((frame, _)) = self.frames.front_mut() else {
                return;
            };
            if written < frame.len() {
                frame.advance(written);
                return;
            }
            written -= frame.len();
            if let Some((_, token)) = self.frames.pop_front() {
                done(token);
            }
        }
    }

    /// Removes the first frame for which `matches(frame, token)` holds and
    /// returns its token. `frame` is what is left to write of it: only the
    /// front frame can be partly written, and it is shorter then.
    pub fn remove_first(&mut self, mut matches: impl FnMut(&Bytes, &T) -> bool) -> Option<T> {
        let index = self
            .frames
            .iter()
            .position(|(frame, token)| matches(frame, token))?;
        self.frames.remove(index).map(|(_, token)| token)
    }

    /// Empties the queue, returning the tokens of the frames never written.
    pub fn drain_tokens(&mut self) -> impl Iterator<Item = T> + '_ {
        self.frames.drain(..).map(|(_, token)| token)
    }
}

/// An empty slice array to pass to [`WriteQueue::fill`].
pub(crate) fn empty_slices<'a>() -> [IoSlice<'a>; MAX_IOVECS] {
    [IoSlice::new(&[]); MAX_IOVECS]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_writes_advance_across_frames() {
        let mut queue = WriteQueue::default();
        queue.push(Bytes::from_static(b"abc"), 1);
        queue.push(Bytes::from_static(b"de"), 2);
        queue.push(Bytes::from_static(b"fgh"), 3);
        let mut done = Vec::new();
        queue.advance(4, |t| done.push(t));
        assert_eq!(done, [1]);
        let mut slices = empty_slices();
        let used = queue.fill(&mut slices);
        assert_eq!(used, 2);
        assert_eq!(&*slices[0], b"e");
        assert_eq!(&*slices[1], b"fgh");
        queue.advance(4, |t| done.push(t));
        assert_eq!(done, [1, 2, 3]);
        assert!(queue.is_empty());
    }

    #[test]
    fn a_frame_can_be_removed_unless_partly_written() {
        let mut queue = WriteQueue::default();
        queue.push(Bytes::from_static(b"abc"), (1, 3));
        queue.push(Bytes::from_static(b"de"), (2, 2));
        queue.push(Bytes::from_static(b"fgh"), (3, 3));
        queue.advance(1, |_| {});
        // Whole-frame matches only: the front one is partly written.
        let unwritten =
            |id| move |frame: &Bytes, token: &(i32, usize)| token.0 == id && frame.len() == token.1;
        assert_eq!(queue.remove_first(unwritten(1)), None);
        assert_eq!(queue.remove_first(unwritten(3)), Some((3, 3)));
        let mut slices = empty_slices();
        assert_eq!(queue.fill(&mut slices), 2);
        assert_eq!(&*slices[0], b"bc");
        assert_eq!(&*slices[1], b"de");
    }

    #[test]
    fn fill_is_bounded() {
        let mut queue = WriteQueue::default();
        for i in 0..100 {
            queue.push(Bytes::from_static(b"x"), i);
        }
        let mut slices = empty_slices();
        assert_eq!(queue.fill(&mut slices), MAX_IOVECS);
        let tokens: Vec<_> = queue.drain_tokens().collect();
        assert_eq!(tokens.len(), 100);
    }
}
