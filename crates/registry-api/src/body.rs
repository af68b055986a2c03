//! [`Body`], the body of every answer: whole bytes (nearly every answer), or a large
//! document streamed as it is written ([`streamed`], a whole `/snapshot`).

use std::future::Future;
use std::io::{self, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use http_body_util::Full;
use hyper::body::{Frame, SizeHint};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

/// The body of an answer.
pub enum Body {
    /// All of it at once, with its length known (`Content-Length`).
    Whole(Full<Bytes>),
    /// Blocks as a writer makes them (chunked).
    Streamed(Stream),
}

/// A streamed body's blocks and, once they stop, how the writer ended: a writer that
/// failed (or never said) ends the body with an error, which ends the connection, so
/// that a client never takes a cut document for a whole one.
pub struct Stream {
    blocks: mpsc::Receiver<Bytes>,
    ended: oneshot::Receiver<io::Result<()>>,
}

impl Body {
    /// A body of `bytes`, all at once.
    pub fn new(bytes: Bytes) -> Body {
        Body::Whole(Full::new(bytes))
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            Body::Whole(whole) => Pin::new(whole).poll_frame(cx).map_err(|never| match never {}),
            Body::Streamed(stream) => match ready!(stream.blocks.poll_recv(cx)) {
                Some(block) => Poll::Ready(Some(Ok(Frame::data(block)))),
                None => match ready!(Pin::new(&mut stream.ended).poll(cx)) {
                    Ok(Ok(())) => Poll::Ready(None),
                    Ok(Err(e)) => Poll::Ready(Some(Err(e))),
                    Err(_) => Poll::Ready(Some(Err(io::Error::other("the document's writer stopped")))),
                },
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Whole(whole) => whole.is_end_stream(),
            Body::Streamed(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Whole(whole) => whole.size_hint(),
            Body::Streamed(_) => SizeHint::default(),
        }
    }
}

/// How large [`streamed`] makes its blocks.
const BLOCK_BYTES: usize = 64 * 1024;

/// How many blocks wait for a slow client: what a stream holds in memory beyond the
/// block being written.
const QUEUED_BLOCKS: usize = 4;

/// How long a stream waits for its client to take a block before it gives up.
pub(crate) const STALL: Duration = Duration::from_secs(30);

/// How many documents stream at once; more wait for a turn (without holding a thread).
pub(crate) const MAX_STREAMS: usize = 4;

/// The documents streaming now: each holds a blocking thread while its client reads.
#[derive(Clone)]
pub(crate) struct Streams {
    turns: Arc<Semaphore>,
    stall: Duration,
}

impl Default for Streams {
    fn default() -> Self {
        Streams::new(MAX_STREAMS, STALL)
    }
}

impl Streams {
    pub(crate) fn new(at_once: usize, stall: Duration) -> Self {
        Streams {
            turns: Arc::new(Semaphore::new(at_once)),
            stall,
        }
    }

    /// A body of what `write` writes (gzip-compressed as it is written when `gzip`), run
    /// on a blocking thread once a turn is free: the document is never whole in memory,
    /// at most [`QUEUED_BLOCKS`] of [`BLOCK_BYTES`] wait for the client. A client gone, or
    /// taking no block for the stall time, ends the writer.
    pub(crate) async fn streamed(
        &self,
        gzip: bool,
        write: impl FnOnce(&mut dyn Write) -> io::Result<()> + Send + 'static,
    ) -> Body {
        let (blocks, body) = mpsc::channel(QUEUED_BLOCKS);
        let (end, ended) = oneshot::channel();
        // The semaphore is never closed.
        let Ok(turn) = self.turns.clone().acquire_owned().await else {
            return Body::new(Bytes::new());
        };
        let mut sink = Sink {
            block: Vec::with_capacity(BLOCK_BYTES),
            blocks,
            runtime: Handle::current(),
            stall: self.stall,
            _turn: turn,
        };
        tokio::task::spawn_blocking(move || {
            let written = if gzip {
                let mut encoder = GzEncoder::new(&mut sink, Compression::fast());
                write(&mut encoder).and_then(|()| encoder.try_finish())
            } else {
                write(&mut sink)
            };
            let written = written.and_then(|()| sink.flush());
            match &written {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                    tracing::debug!("a streamed answer's client went away");
                }
                Err(e) => tracing::warn!(error = %e, "a streamed answer ended early"),
            }
            // Said before the blocks end (the sink is dropped after this).
            let _ = end.send(written);
        });
        Body::Streamed(Stream { blocks: body, ended })
    }
}

/// Where a streamed document is written: gathered into blocks handed to the connection.
struct Sink {
    block: Vec<u8>,
    blocks: mpsc::Sender<Bytes>,
    runtime: Handle,
    stall: Duration,
    _turn: OwnedSemaphorePermit,
}

impl Sink {
    fn send(&mut self) -> io::Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let block = Bytes::from(std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK_BYTES)));
        let sent = self
            .runtime
            .block_on(tokio::time::timeout(self.stall, self.blocks.send(block)));
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(io::Error::new(io::ErrorKind::BrokenPipe, "the client went away")),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client took no data for {:?}", self.stall),
            )),
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.block.extend_from_slice(buf);
        if self.block.len() >= BLOCK_BYTES {
            self.send()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn document(blocks: usize) -> impl FnOnce(&mut dyn Write) -> io::Result<()> + Send + 'static {
        move |out| {
            for i in 0..blocks {
                out.write_all(&vec![b'a' + (i % 26) as u8; 10_000])?;
            }
            Ok(())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_streamed_document_arrives_whole_and_in_order() {
        let streams = Streams::default();
        let body = streams.streamed(false, document(100)).await;
        let bytes = body.collect().await.unwrap().to_bytes();
        let mut expected = Vec::new();
        document(100)(&mut expected).unwrap();
        assert_eq!(bytes, expected);

        let body = streams.streamed(true, document(100)).await;
        let gzipped = body.collect().await.unwrap().to_bytes();
        let mut plain = Vec::new();
        io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gzipped[..]), &mut plain).unwrap();
        assert_eq!(plain, expected);
        assert!(gzipped.len() < expected.len() / 10);
    }

    /// A writer whose client went away, or stopped reading, ends, and gives its turn back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_stops_when_its_client_leaves_or_stalls() {
        let streams = Streams::new(1, Duration::from_millis(200));
        for leave in [true, false] {
            let (done, ended) = oneshot::channel();
            let body = streams
                .streamed(false, move |out| {
                    let written = document(10_000)(out);
                    let _ = done.send(written);
                    Ok(())
                })
                .await;
            let kept = if leave {
                drop(body);
                None
            } else {
                Some(body)
            };
            let written = tokio::time::timeout(Duration::from_secs(30), ended)
                .await
                .unwrap()
                .unwrap();
            let kind = written.unwrap_err().kind();
            assert_eq!(
                kind,
                if leave {
                    io::ErrorKind::BrokenPipe
                } else {
                    io::ErrorKind::TimedOut
                }
            );
            drop(kept);
        }
        // Both turns were given back: a third stream runs.
        let body = tokio::time::timeout(Duration::from_secs(30), streams.streamed(false, document(1)))
            .await
            .unwrap();
        assert_eq!(body.collect().await.unwrap().to_bytes().len(), 10_000);
    }

    /// A writer that fails ends the body with its error, not with a cut document.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_writer_fails_the_body() {
        let body = Streams::default()
            .streamed(false, |out| {
                out.write_all(&[b'x'; 200_000])?;
                Err(io::Error::other("disk on fire"))
            })
            .await;
        let error = body.collect().await.err().unwrap();
        assert!(error.to_string().contains("disk on fire"));
    }
}
