//! Two stages on two threads, joined by a bounded channel of byte chunks.
//!
//! pack runs reading, hashing, tar and zstd on one thread and age, the
//! payload hash and writing on the other; unpack runs reading, hashing and
//! age on one and zstd, tar, entry hashing and writing on the other. The
//! channel holds at most [`DEPTH`] chunks of [`CHUNK`] bytes, so memory stays
//! flat whatever the bundle's size.

use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Bytes per chunk sent between the stages.
pub const CHUNK: usize = 1 << 20;
/// Chunks in flight at most.
pub const DEPTH: usize = 4;

/// A bounded channel of chunks: its writing and reading ends.
pub fn channel() -> (ChannelWriter, ChannelReader) {
    let (tx, rx) = sync_channel(DEPTH);
    (
        ChannelWriter {
            tx: Some(tx),
            buf: Vec::with_capacity(CHUNK),
        },
        ChannelReader {
            rx,
            current: Vec::new(),
            pos: 0,
        },
    )
}

/// The writing end: collects bytes into chunks and sends them. Dropping it
/// (or [`ChannelWriter::close`]) ends the stream; an error sent with
/// [`ChannelWriter::fail`] reaches the reader instead of the end.
pub struct ChannelWriter {
    tx: Option<SyncSender<io::Result<Vec<u8>>>>,
    buf: Vec<u8>,
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the other stage stopped")
}

impl ChannelWriter {
    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        match &self.tx {
            Some(tx) => tx.send(Ok(chunk)).map_err(|_| closed()),
            None => Err(closed()),
        }
    }

    /// Sends what is buffered and ends the stream.
    pub fn close(mut self) -> io::Result<()> {
        self.send_buf()?;
        self.tx = None;
        Ok(())
    }

    /// Passes an error to the reading end, which returns it from `read`.
    pub fn fail(mut self, e: io::Error) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Err(e));
        }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() >= CHUNK {
            self.send_buf()?;
        }
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The reading end.
pub struct ChannelReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Copies `r` into a channel until its end or an error, which is passed on.
pub fn pump(mut r: impl Read, mut w: ChannelWriter) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        match r.read(&mut buf) {
            Ok(0) => {
                let _ = w.close();
                return;
            }
            Ok(n) => {
                if w.write_all(&buf[..n]).is_err() {
                    return; // the reader stopped; it knows why
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return w.fail(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_errors_cross_the_channel() {
        let (w, mut r) = channel();
        let data: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect();
        let expected = data.clone();
        let t = std::thread::spawn(move || pump(&data[..], w));
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        t.join().unwrap();
        assert_eq!(got, expected);

        let (w, mut r) = channel();
        std::thread::spawn(move || w.fail(io::Error::other("boom")));
        assert_eq!(
            r.read_to_end(&mut Vec::new()).unwrap_err().to_string(),
            "boom"
        );
    }

    #[test]
    fn a_stopped_reader_fails_the_writer() {
        let (mut w, r) = channel();
        drop(r);
        let big = vec![0u8; CHUNK * (DEPTH + 2)];
        assert!(w.write_all(&big).is_err());
    }
}
