//! Two stages on two threads, joined by a bounded channel of byte chunks.
//!
//! pack runs reading, hashing, tar and zstd on one thread and age, the
//! payload hash and writing on the other; unpack runs reading, hashing and
//! age on one and zstd, tar, entry hashing and writing on the other. The
//! channel holds at most [`DEPTH`] chunks of [`CHUNK`] bytes, so memory stays
//! flat whatever the bundle's size.
//!
//! A chunk's memory is reused, never freed: the reader hands each chunk it
//! is done with back to the writer. A reader may also publish the chunk it
//! reads ([`ChannelReader::publish`]), so that the next stage keeps chunks
//! rather than copying what they hold.

use std::io::{self, BufRead, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

/// Bytes per chunk sent between the stages.
pub const CHUNK: usize = 1 << 20;
/// Chunks in flight at most.
pub const DEPTH: usize = 4;

/// A bounded channel of chunks: its writing and reading ends. The reader
/// hands each chunk it is done with back to the writer, which fills it
/// again, so that neither end allocates or clears memory per chunk.
pub fn channel() -> (ChannelWriter, ChannelReader) {
    with_depth(DEPTH)
}

/// [`channel`], with at most `depth` chunks in flight. A channel ever holds
/// `depth + 2` chunks: those in flight, the one being filled and the one
/// being read.
pub fn with_depth(depth: usize) -> (ChannelWriter, ChannelReader) {
    with_pool(depth, depth + 2)
}

/// [`channel`], with `spare` chunks more than it needs, for a reader whose
/// chunks are kept a while after it read them (see [`ChannelReader::publish`]).
pub fn with_spare(spare: usize) -> (ChannelWriter, ChannelReader) {
    with_pool(DEPTH, DEPTH + 2 + spare)
}

fn with_pool(depth: usize, pool: usize) -> (ChannelWriter, ChannelReader) {
    let (tx, rx) = sync_channel(depth);
    let (back_tx, back_rx) = sync_channel(pool);
    (
        ChannelWriter {
            tx: Some(tx),
            buf: vec![0; CHUNK],
            filled: 0,
            made: 1,
            pool,
            back: back_rx,
        },
        ChannelReader {
            rx,
            current: Arc::new(Shared::new(Vec::new(), back_tx.clone())),
            pos: 0,
            back: back_tx,
            published: None,
        },
    )
}

/// A chunk the reading end has received. Its memory goes back to the
/// writing end, to be filled again, when the last holder drops it: the
/// reader when it moves on, and whoever it was published to.
pub struct Shared {
    bytes: Vec<u8>,
    home: SyncSender<Vec<u8>>,
}

impl Shared {
    fn new(bytes: Vec<u8>, home: SyncSender<Vec<u8>>) -> Shared {
        Shared { bytes, home }
    }

    /// The chunk's data.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Where `part` lies in this chunk, if it is a part of it (the same
    /// memory, not only the same bytes).
    pub fn range_of(&self, part: &[u8]) -> Option<std::ops::Range<usize>> {
        let base = self.bytes.as_ptr() as usize;
        let start = (part.as_ptr() as usize).checked_sub(base)?;
        let end = start.checked_add(part.len())?;
        (end <= self.bytes.len()).then_some(start..end)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let bytes = std::mem::take(&mut self.bytes);
        if bytes.capacity() >= CHUNK {
            let _ = self.home.try_send(bytes);
        }
    }
}

/// Where a reader publishes the chunk it is reading, see [`ChannelReader::publish`].
pub type Published = Arc<Mutex<Option<Arc<Shared>>>>;

/// The writing end: collects bytes into chunks and sends them. Dropping it
/// (or [`ChannelWriter::close`]) ends the stream; an error sent with
/// [`ChannelWriter::fail`] reaches the reader instead of the end.
pub struct ChannelWriter {
    tx: Option<SyncSender<io::Result<Vec<u8>>>>,
    /// The chunk being filled: `CHUNK` bytes, the first `filled` of them data.
    buf: Vec<u8>,
    filled: usize,
    /// Chunks made so far, at most `pool`.
    made: usize,
    pool: usize,
    back: Receiver<Vec<u8>>,
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the other stage stopped")
}

impl ChannelWriter {
    fn send_buf(&mut self) -> io::Result<()> {
        if self.filled == 0 {
            return Ok(());
        }
        let mut chunk = std::mem::take(&mut self.buf);
        chunk.truncate(std::mem::take(&mut self.filled));
        let tx = self.tx.as_ref().ok_or_else(closed)?;
        if tx.send(Ok(chunk)).is_err() {
            self.tx = None;
            return Err(closed());
        }
        // At most `pool` chunks are ever made: the writer waits for one to
        // come back rather than make another, so memory is bounded and not
        // churned. One is always on its way back, since the queue holds
        // fewer than `pool` - 1.
        let mut next = match self.back.try_recv() {
            Ok(chunk) => chunk,
            Err(_) if self.made < self.pool => {
                self.made += 1;
                Vec::new()
            }
            Err(_) => self.back.recv().map_err(|_| closed())?,
        };
        // A chunk handed back is cleared only where it held no data.
        next.resize(CHUNK, 0);
        self.buf = next;
        Ok(())
    }

    /// The free part of the chunk being filled, sending it first if it is
    /// full; an error once the reader has stopped.
    fn room(&mut self) -> io::Result<&mut [u8]> {
        if self.filled == CHUNK {
            self.send_buf()?;
        }
        if self.tx.is_none() || self.buf.len() != CHUNK {
            return Err(closed());
        }
        Ok(&mut self.buf[self.filled..])
    }

    /// Reads once from `r` straight into the chunk being filled; returns
    /// what `read` returned.
    fn fill_from(&mut self, r: &mut impl Read) -> io::Result<usize> {
        let n = r.read(self.room()?)?;
        self.filled += n;
        Ok(n)
    }

    /// Sends what is buffered and ends the stream.
    pub fn close(mut self) -> io::Result<()> {
        if self.tx.is_none() {
            return Err(closed());
        }
        self.send_buf()?;
        self.tx = None;
        Ok(())
    }

    /// Passes an error to the reading end, which returns it from `read`
    /// after the bytes written before it.
    pub fn fail(mut self, e: io::Error) {
        if self.send_buf().is_err() {
            return;
        }
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Err(e));
        }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.room()?;
        let n = data.len().min(room.len());
        room[..n].copy_from_slice(&data[..n]);
        self.filled += n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The reading end.
pub struct ChannelReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    current: Arc<Shared>,
    pos: usize,
    back: SyncSender<Vec<u8>>,
    published: Option<Published>,
}

impl ChannelReader {
    /// From now on, puts each chunk this reader reads into `to` as it
    /// starts on it. A consumer handed a slice this reader gave out can
    /// then keep the chunk it lies in ([`Shared::range_of`]) instead of
    /// copying it; the writer waits for chunks kept, so memory stays
    /// bounded (give the channel spare chunks: [`with_spare`]).
    pub fn publish(&mut self, to: Published) {
        self.published = Some(to);
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let chunk = self.fill_buf()?;
        let n = buf.len().min(chunk.len());
        buf[..n].copy_from_slice(&chunk[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// The chunks are the buffer: a reader such as zstd's decoder reads them
/// where they are, without another copy.
impl BufRead for ChannelReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.current.bytes.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    // The chunk done with goes back once no one keeps it.
                    self.current = Arc::new(Shared::new(chunk, self.back.clone()));
                    if let Some(to) = &self.published {
                        let mut slot = to.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        *slot = Some(Arc::clone(&self.current));
                    }
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(&[]),
            }
        }
        Ok(&self.current.bytes[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.current.bytes.len());
    }
}

/// Copies `r` into a channel until its end or an error, which is passed on.
pub fn pump(mut r: impl Read, mut w: ChannelWriter) {
    loop {
        if w.room().is_err() {
            return; // the reader stopped; it knows why
        }
        match w.fill_from(&mut r) {
            Ok(0) => {
                let _ = w.close();
                return;
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return w.fail(e),
        }
    }
}

/// Writes the channel's chunks to `w` where they lie, to the channel's end
/// or its error: [`pump`]'s other half.
pub fn drain(r: &mut ChannelReader, w: &mut impl Write) -> io::Result<()> {
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Ok(());
        }
        w.write_all(chunk)?;
        let n = chunk.len();
        r.consume(n);
    }
}

/// `r`, read on a thread of its own at most [`DEPTH`] + 2 chunks ahead of the
/// caller. The thread ends with the stream, at an error, or when the
/// returned reader is dropped.
pub fn read_ahead(r: impl Read + Send + 'static) -> ChannelReader {
    let (w, reader) = channel();
    std::thread::spawn(move || pump(r, w));
    reader
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_errors_cross_the_channel() {
        let (w, mut r) = channel();
        // More chunks than the pool holds, so that chunks come back and
        // are filled again.
        let data: Vec<u8> = (0..3 * (DEPTH + 2) * CHUNK + 17)
            .map(|i| (i % 251) as u8)
            .collect();
        let expected = data.clone();
        let t = std::thread::spawn(move || pump(&data[..], w));
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        t.join().unwrap();
        assert_eq!(got, expected);

        // An error comes after the bytes written before it.
        let (mut w, mut r) = channel();
        std::thread::spawn(move || {
            w.write_all(b"before").unwrap();
            w.fail(io::Error::other("boom"))
        });
        let mut got = Vec::new();
        assert_eq!(r.read_to_end(&mut got).unwrap_err().to_string(), "boom");
        assert_eq!(got, b"before");
    }

    #[test]
    fn a_published_chunk_is_the_readers_and_comes_back_when_dropped() {
        let slot = Published::default();
        let (w, mut r) = with_spare(2);
        r.publish(Arc::clone(&slot));
        let data: Vec<u8> = (0..20 * CHUNK).map(|i| (i % 239) as u8).collect();
        let source = data.clone();
        let t = std::thread::spawn(move || pump(&source[..], w));
        let mut got = Vec::new();
        let mut held = Vec::new();
        loop {
            let part = r.fill_buf().expect("read");
            if part.is_empty() {
                break;
            }
            let chunk = slot.lock().expect("slot").clone().expect("published");
            let range = chunk
                .range_of(part)
                .expect("the slice lies in the published chunk");
            assert_eq!(&chunk.bytes()[range], part);
            assert!(
                chunk.range_of(&[0u8; 16]).is_none(),
                "other memory is not in it"
            );
            got.extend_from_slice(part);
            let n = part.len();
            r.consume(n);
            // Keeping two chunks at a time: the writer waits for them and
            // gets them back, never more than the pool.
            held.push(chunk);
            if held.len() > 2 {
                held.remove(0);
            }
        }
        t.join().expect("pump");
        assert_eq!(got, data);
    }

    #[test]
    fn a_stopped_reader_fails_the_writer() {
        let (mut w, r) = channel();
        drop(r);
        let big = vec![0u8; CHUNK * (DEPTH + 2)];
        assert!(w.write_all(&big).is_err());
        assert!(w.write_all(b"more").is_err(), "and keeps failing");
        assert!(w.close().is_err());
    }
}
