//! The TCP stream under a TLS session on the listeners.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TCP stream that sends a vectored write of one buffer with `send(2)`.
///
/// rustls hands its queued records to the socket as one vectored write, and keep-alive
/// answers are one record each. In the kernel `writev(2)` costs more than `send(2)` for
/// the same bytes (importing the iovec, the file checks, fsnotify): in `perf record` of a
/// node under keep-alive `/findAll` over TLS the `writev` path took 1.4–1.5 samples per
/// 1,000 requests and the `send` path, with this stream, 0.8–0.9, about 0.2 µs per request
/// (docs/benchmarks-tls.md). Writes of several buffers stay vectored.
#[derive(Debug)]
pub struct Transport(pub(crate) TcpStream);

impl AsyncRead for Transport {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Transport {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let stream = Pin::new(&mut self.get_mut().0);
        let mut filled = bufs.iter().filter(|buf| !buf.is_empty());
        match (filled.next(), filled.next()) {
            (Some(only), None) => stream.poll_write(cx, only),
            (None, _) => Poll::Ready(Ok(0)),
            (Some(_), Some(_)) => stream.poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io::IoSlice;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::Transport;

    /// A vectored write of one buffer, of several with empty ones among them, or of
    /// nothing: the bytes arrive as written, in order.
    #[tokio::test]
    async fn vectored_writes_of_one_or_more_buffers_arrive_whole() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(address), listener.accept());
        let mut sender = Transport(client.unwrap());
        let (mut receiver, _) = accepted.unwrap();

        let one = [IoSlice::new(b""), IoSlice::new(b"one record;"), IoSlice::new(b"")];
        assert_eq!(sender.write_vectored(&one).await.unwrap(), 11);
        assert_eq!(sender.write_vectored(&[IoSlice::new(b"")]).await.unwrap(), 0);
        let mut rest: &[u8] = b"two;three";
        while !rest.is_empty() {
            let (a, b) = rest.split_at(rest.len().min(4));
            let several = [IoSlice::new(a), IoSlice::new(b""), IoSlice::new(b)];
            let sent = sender.write_vectored(&several).await.unwrap();
            rest = &rest[sent..];
        }
        sender.shutdown().await.unwrap();

        let mut received = Vec::new();
        receiver.read_to_end(&mut received).await.unwrap();
        assert_eq!(received, b"one record;two;three");
    }
}
