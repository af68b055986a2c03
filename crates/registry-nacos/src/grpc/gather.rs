//! A connection's writes gathered into one send per turn of its task.
//!
//! h2 hands a unary answer's trailers to the socket apart from its data whenever the data
//! is long enough to be chained (over 256 bytes): two sends per answer, and on loopback two
//! deliveries to the client, each as dear as the answer's own work. So the HTTP/2
//! connection writes into a buffer ([`Gathered`]), and the buffer goes out in one send once
//! the connection's task has done all it could in a turn ([`drive`]): an answer, its
//! trailers and whatever else became ready in the same turn leave together. A flush asks
//! for nothing more; a turn always ends with the send. (Public for the gRPC ceiling of
//! `bench-tools`, which must send as the node does.)

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Past this many unsent bytes a write waits for the socket, as a plain one would.
const MAX_GATHERED: usize = 256 * 1024;

/// The connection's stream and what has been written to it but not yet sent.
struct Shared<S> {
    stream: S,
    out: Vec<u8>,
    sent: usize,
    /// Why a send failed: every later write fails the same way, so the connection ends.
    failed: Option<io::ErrorKind>,
}

impl<S: AsyncWrite + Unpin> Shared<S> {
    fn unsent(&self) -> usize {
        self.out.len() - self.sent
    }

    /// Sends what was gathered; ready once all of it is in the socket.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(kind) = self.failed {
            return Poll::Ready(Err(kind.into()));
        }
        while self.sent < self.out.len() {
            let written = Pin::new(&mut self.stream).poll_write(cx, &self.out[self.sent..]);
            match ready!(written) {
                Ok(0) => return Poll::Ready(Err(self.fail(io::ErrorKind::WriteZero))),
                Ok(n) => self.sent += n,
                Err(e) => return Poll::Ready(Err(self.fail(e.kind()))),
            }
        }
        if !self.out.is_empty() {
            // Let go of the buffer: an idle connection holds none (a new one per turn costs
            // an allocation, a send costs a syscall).
            self.out = Vec::new();
            self.sent = 0;
        }
        // A TLS stream may hold records back until flushed (also after a turn that wrote
        // nothing, if an earlier flush could not finish); for TCP this does nothing.
        Pin::new(&mut self.stream)
            .poll_flush(cx)
            .map_err(|e| self.fail(e.kind()))
    }

    fn fail(&mut self, kind: io::ErrorKind) -> io::Error {
        self.failed = Some(kind);
        kind.into()
    }

    /// Adds `bufs` (`total` bytes) to what the turn sends.
    fn keep(&mut self, bufs: &[io::IoSlice<'_>], total: usize) {
        // A turn's first write sizes the buffer for a few answers at once.
        self.out.reserve(total.max(if self.out.is_empty() { 4096 } else { 0 }));
        for buf in bufs {
            self.out.extend_from_slice(buf);
        }
    }

    /// Room for `len` more bytes: sends first when the buffer would grow past its bound.
    fn poll_room(&mut self, cx: &mut Context<'_>, len: usize) -> Poll<io::Result<()>> {
        if let Some(kind) = self.failed {
            return Poll::Ready(Err(kind.into()));
        }
        if self.unsent() + len > MAX_GATHERED {
            ready!(self.poll_send(cx))?;
        }
        Poll::Ready(Ok(()))
    }
}

/// The stream as the HTTP/2 connection sees it: reads go straight through, writes are
/// gathered until the turn ends.
pub struct Gathered<S>(Arc<Mutex<Shared<S>>>);

/// What sends a connection's gathered writes at the end of each turn (see [`drive`]).
pub struct Sender<S>(Arc<Mutex<Shared<S>>>);

/// `stream` split into the side its HTTP/2 connection reads and writes, and the side that
/// sends.
pub fn gather<S>(stream: S) -> (Gathered<S>, Sender<S>) {
    let shared = Arc::new(Mutex::new(Shared {
        stream,
        out: Vec::new(),
        sent: 0,
        failed: None,
    }));
    (Gathered(shared.clone()), Sender(shared))
}

fn lock<S>(shared: &Mutex<Shared<S>>) -> MutexGuard<'_, Shared<S>> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Drives `connection` (whose stream is `sender`'s), sending what each of its turns wrote
/// once the turn is over. The connection is boxed once: an `async fn` kept it twice in its
/// state, as its argument and pinned (10,000 idle connections: 34 KiB each that way,
/// 24 KiB boxed).
pub fn drive<S, F>(sender: Sender<S>, connection: F) -> Drive<S, F>
where
    S: AsyncWrite + Unpin,
    F: Future,
{
    Drive {
        sender,
        connection: Box::pin(connection),
    }
}

/// The future of [`drive`].
pub struct Drive<S, F> {
    sender: Sender<S>,
    connection: Pin<Box<F>>,
}

impl<S: AsyncWrite + Unpin, F: Future> Future for Drive<S, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let polled = self.connection.as_mut().poll(cx);
        let sent = lock(&self.sender.0).poll_send(cx);
        if let (Poll::Pending, Poll::Ready(Err(_))) = (&polled, sent) {
            // The connection learns of it at its next write, or read; let it look now.
            cx.waker().wake_by_ref();
        }
        polled
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Gathered<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut lock(&self.0).stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Gathered<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut shared = lock(&self.0);
        ready!(shared.poll_room(cx, buf.len()))?;
        if buf.len() > MAX_GATHERED {
            return Pin::new(&mut shared.stream).poll_write(cx, buf);
        }
        shared.keep(&[io::IoSlice::new(buf)], buf.len());
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total = bufs.iter().map(|b| b.len()).sum::<usize>();
        let mut shared = lock(&self.0);
        ready!(shared.poll_room(cx, total))?;
        if total > MAX_GATHERED {
            return Pin::new(&mut shared.stream).poll_write_vectored(cx, bufs);
        }
        shared.keep(bufs, total);
        Poll::Ready(Ok(total))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// Nothing to do now: the turn's end sends. (A failed send is reported here too.)
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match lock(&self.0).failed {
            Some(kind) => Poll::Ready(Err(kind.into())),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut shared = lock(&self.0);
        ready!(shared.poll_send(cx))?;
        ready!(Pin::new(&mut shared.stream).poll_flush(cx))?;
        Pin::new(&mut shared.stream).poll_shutdown(cx)
    }
}
