//! Work that must follow a unary call's answer on the wire: a new subscriber's first push
//! goes after its `SubscribeServiceResponse`, as Nacos sends it (a client handed the push
//! first can miss its first callback, issue 32).

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

type Deferred = Box<dyn FnOnce() + Send>;

/// What to do once a call's answer has gone: set by the handler, run by [`ThenBody`].
#[derive(Clone, Default)]
pub(crate) struct AfterAnswer(Arc<Mutex<Option<Deferred>>>);

impl AfterAnswer {
    /// Runs `work` once the answer's last frame has been handed to the connection (never,
    /// if the answer is not sent whole).
    pub(crate) fn then(&self, work: impl FnOnce() + Send + 'static) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(Box::new(work));
    }

    /// Whether there is work to follow the answer.
    pub(crate) fn is_set(&self) -> bool {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).is_some()
    }

    fn run(&self) {
        let work = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(work) = work {
            work();
        }
    }
}

/// A call's answer body that runs its [`AfterAnswer`] when its end (a gRPC answer's
/// trailers) is handed to the connection, which writes it before anything queued later.
pub(crate) struct ThenBody {
    pub(crate) inner: tonic::body::Body,
    pub(crate) after: AfterAnswer,
}

impl Body for ThenBody {
    type Data = Bytes;
    type Error = <tonic::body::Body as Body>::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.after.run(),
            Poll::Ready(Some(Ok(frame))) if frame.is_trailers() => self.after.run(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
