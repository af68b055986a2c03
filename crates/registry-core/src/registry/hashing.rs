//! The checksum of the binary form ([`super::binary`]): every byte written or read, hashed
//! as it passes.

use std::io::{self, Read, Write};

use xxhash_rust::xxh3::Xxh3;

/// A reader or writer that hashes every byte that passes through it.
pub(super) struct Hashing<T> {
    pub(super) inner: T,
    hash: Xxh3,
}

impl<T> Hashing<T> {
    pub(super) fn new(inner: T) -> Hashing<T> {
        Hashing {
            inner,
            hash: Xxh3::new(),
        }
    }

    pub(super) fn digest(&self) -> u64 {
        self.hash.digest()
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}
