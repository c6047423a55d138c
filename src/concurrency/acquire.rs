//! [`PollPermit`]: acquiring a semaphore permit from `poll`-style code, without
//! `tokio-util`'s `PollSemaphore`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, ErrorKind};

type AcquireFuture =
    Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send + Sync>>;

/// Acquires one permit of a shared [`Semaphore`] from `poll` functions.
///
/// The fast path is `try_acquire_owned` (no allocation). Only when no permit is free is the
/// `acquire_owned` future boxed and kept until it completes; tokio's semaphore serves those
/// waiters first come, first served, and a free permit is handed to the oldest waiter
/// before `try_acquire` can see it, so the fast path never jumps the queue.
pub(crate) struct PollPermit {
    semaphore: Arc<Semaphore>,
    waiting: Option<AcquireFuture>,
}

impl PollPermit {
    pub(crate) fn new(semaphore: Arc<Semaphore>) -> Self {
        PollPermit {
            semaphore,
            waiting: None,
        }
    }

    /// Polls for a permit. Once it returns `Ready`, the next call starts a new acquisition.
    pub(crate) fn poll_acquire(&mut self, cx: &mut Context<'_>) -> Poll<Result<Permit, Error>> {
        let fut = match &mut self.waiting {
            Some(fut) => fut,
            None => {
                if let Ok(permit) = Arc::clone(&self.semaphore).try_acquire_owned() {
                    return Poll::Ready(Ok(permit));
                }
                self.waiting
                    .insert(Box::pin(Arc::clone(&self.semaphore).acquire_owned()))
            }
        };
        let result = ready!(fut.as_mut().poll(cx));
        self.waiting = None;
        Poll::Ready(result.map_err(|_| closed()))
    }

    /// Starts waiting now, so that this waiter takes its place in the queue at once rather
    /// than at its first real poll. Returns the permit if one was free.
    ///
    /// Polls with a no-op waker: a wake-up before the first real poll is lost, which is
    /// harmless because that poll looks at the waiter's state before sleeping.
    pub(crate) fn enqueue(&mut self) -> Option<Result<Permit, Error>> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match self.poll_acquire(&mut cx) {
            Poll::Ready(r) => Some(r),
            Poll::Pending => None,
        }
    }
}

impl Clone for PollPermit {
    /// A clone waits for nothing yet.
    fn clone(&self) -> Self {
        PollPermit::new(Arc::clone(&self.semaphore))
    }
}

impl fmt::Debug for PollPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PollPermit")
            .field("available", &self.semaphore.available_permits())
            .field("waiting", &self.waiting.is_some())
            .finish()
    }
}

/// One permit of a semaphore.
pub(crate) type Permit = OwnedSemaphorePermit;

/// The semaphores of this module are never closed; this is here so that a bug would be
/// an error, not a panic.
fn closed() -> Error {
    Error::new(ErrorKind::Io).with_message("concurrency limit semaphore closed")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn is_send_sync() {
        assert_send_sync::<PollPermit>();
    }

    #[tokio::test]
    async fn fast_path_then_waits_fifo() {
        let sem = Arc::new(Semaphore::new(1));
        let mut a = PollPermit::new(Arc::clone(&sem));
        let mut b = PollPermit::new(Arc::clone(&sem));
        let mut c = PollPermit::new(Arc::clone(&sem));
        let pa = a.enqueue().unwrap().unwrap();
        assert!(b.enqueue().is_none());
        assert!(c.enqueue().is_none());
        drop(pa);
        // b queued first, so b gets it even though c polls first.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(c.poll_acquire(&mut cx).is_pending());
        let pb = std::future::poll_fn(|cx| b.poll_acquire(cx)).await.unwrap();
        drop(pb);
        let pc = std::future::poll_fn(|cx| c.poll_acquire(cx)).await.unwrap();
        assert_eq!(sem.available_permits(), 0);
        drop(pc);
        assert_eq!(sem.available_permits(), 1);
    }
}
