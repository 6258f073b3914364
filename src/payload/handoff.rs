//! A [`Sink`] on a thread of its own.
//!
//! Unpacking many small files is mostly system calls (create, write, set
//! the mode and time, close: five a file), which the thread that
//! decompresses and checks the archive would otherwise make between two
//! entries. [`on_thread`] hands the entries, already checked, to another
//! thread in batches, so that the two overlap. The batches in flight are
//! bounded, so memory stays flat whatever the archive holds.
//!
//! File data is not copied when it lies in a chunk the archive's reader
//! published ([`Sink::published`]): the batch keeps the chunk instead, and
//! the chunk goes back to its channel once written.

use std::ops::Range;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use super::archive::Sink;
use super::pipeline::{Published, Shared};
use crate::error::{Error, Result};

/// What the checking thread asks of the sink; names lie in the batch's
/// `names`, data in its `bytes` or in one of its `chunks`.
enum Op {
    Folder(Range<usize>),
    Begin(Range<usize>, bool),
    Data(Range<usize>),
    Kept(usize, Range<usize>),
    End(u64),
}

/// Operations sent at once, and the bytes they refer to. A batch done with
/// goes back to be filled again, so that no memory is allocated on one
/// thread and freed on the other (which makes the two contend for the
/// allocator's lock).
#[derive(Default)]
struct Batch {
    ops: Vec<Op>,
    names: String,
    bytes: Vec<u8>,
    chunks: Vec<Arc<Shared>>,
    /// Bytes of data the batch refers to in `chunks`.
    kept: usize,
}

impl Batch {
    fn name(&mut self, name: &str) -> Range<usize> {
        let start = self.names.len();
        self.names.push_str(name);
        start..self.names.len()
    }

    fn data(&mut self, data: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(data);
        start..self.bytes.len()
    }

    /// `data` as a part of `chunk`, if it is one: the chunk kept (once per
    /// batch) rather than the data copied.
    fn keep(&mut self, chunk: &Arc<Shared>, data: &[u8]) -> Option<Op> {
        let range = chunk.range_of(data)?;
        if !self.chunks.last().is_some_and(|c| Arc::ptr_eq(c, chunk)) {
            self.chunks.push(Arc::clone(chunk));
        }
        self.kept += data.len();
        Some(Op::Kept(self.chunks.len() - 1, range))
    }

    fn size(&self) -> usize {
        self.names.len() + self.bytes.len() + self.kept
    }

    fn clear(&mut self) {
        self.ops.clear();
        self.names.clear();
        self.bytes.clear();
        // The chunks go back to their channel.
        self.chunks.clear();
        self.kept = 0;
    }
}

/// Operations sent at once, at most.
const BATCH_OPS: usize = 256;
/// Bytes sent at once, at most (one operation may pass it), copied or kept:
/// a batch being filled keeps at most two chunks of the archive's reader
/// besides the one it reads, so the channel never waits on a batch not yet
/// sent.
const BATCH_BYTES: usize = 1 << 20;
/// Batches in flight, at most.
pub const DEPTH: usize = 4;

/// Runs `work` with a sink that forwards to `sink` on another thread;
/// returns what `work` returns once `sink` has done everything asked of it.
/// A failure of `sink` (a full disk, say) is the root cause of the
/// forwarding failing, so it is the error returned.
pub fn on_thread<S: Sink + Send, T>(
    sink: &mut S,
    work: impl FnOnce(&mut dyn Sink) -> Result<T>,
) -> Result<T> {
    let (tx, rx) = sync_channel::<Batch>(DEPTH);
    // At most DEPTH batches queued, one being written and one being
    // filled exist at once, so the way back never fills up.
    let (back_tx, back_rx) = sync_channel::<Batch>(DEPTH + 2);
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> Result<()> {
            for mut batch in rx {
                for op in &batch.ops {
                    match op {
                        Op::Folder(r) => sink.folder(&batch.names[r.clone()])?,
                        Op::Begin(r, executable) => {
                            sink.begin_file(&batch.names[r.clone()], *executable)?
                        }
                        Op::Data(r) => sink.write(&batch.bytes[r.clone()])?,
                        Op::Kept(i, r) => sink.write(&batch.chunks[*i].bytes()[r.clone()])?,
                        Op::End(mtime) => sink.end_file(*mtime)?,
                    }
                }
                batch.clear();
                let _ = back_tx.try_send(batch);
            }
            Ok(())
        });
        let mut forward = Forward {
            tx: Some(tx),
            back: back_rx,
            batch: Batch::default(),
            published: Published::default(),
        };
        let worked = work(&mut forward).and_then(|t| forward.send().map(|()| t));
        drop(forward);
        let written = writer
            .join()
            .map_err(|_| Error::Internal("the writing stage stopped unexpectedly".into()))?;
        match (worked, written) {
            (_, Err(e)) => Err(e),
            (worked, Ok(())) => worked,
        }
    })
}

/// The checking thread's end: collects operations into batches.
struct Forward {
    tx: Option<SyncSender<Batch>>,
    back: Receiver<Batch>,
    batch: Batch,
    published: Published,
}

impl Forward {
    fn push(&mut self, op: Op) -> Result<()> {
        self.batch.ops.push(op);
        if self.batch.ops.len() >= BATCH_OPS || self.batch.size() >= BATCH_BYTES {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> Result<()> {
        if self.batch.ops.is_empty() {
            return Ok(());
        }
        let next = self.back.try_recv().unwrap_or_default();
        let batch = std::mem::replace(&mut self.batch, next);
        let stopped = || Error::Internal("the writing stage stopped".into());
        match &self.tx {
            Some(tx) => tx.send(batch).map_err(|_| stopped()),
            None => Err(stopped()),
        }
    }
}

impl Sink for Forward {
    fn folder(&mut self, path: &str) -> Result<()> {
        let r = self.batch.name(path);
        self.push(Op::Folder(r))
    }

    fn begin_file(&mut self, path: &str, executable: bool) -> Result<()> {
        let r = self.batch.name(path);
        self.push(Op::Begin(r, executable))
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let kept = {
            let slot = self
                .published
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            slot.as_ref()
                .and_then(|chunk| self.batch.keep(chunk, bytes))
        };
        let op = kept.unwrap_or_else(|| Op::Data(self.batch.data(bytes)));
        self.push(op)
    }

    fn end_file(&mut self, mtime: u64) -> Result<()> {
        self.push(Op::End(mtime))
    }

    fn published(&self) -> Option<Published> {
        Some(Arc::clone(&self.published))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what it is asked; fails on the file named `fail`.
    #[derive(Default)]
    struct Log(Vec<String>);

    impl Sink for Log {
        fn folder(&mut self, path: &str) -> Result<()> {
            self.0.push(format!("d {path}"));
            Ok(())
        }
        fn begin_file(&mut self, path: &str, x: bool) -> Result<()> {
            if path == "fail" {
                return Err(Error::Internal("disk full".into()));
            }
            self.0.push(format!("f {path} {x}"));
            Ok(())
        }
        fn write(&mut self, bytes: &[u8]) -> Result<()> {
            self.0.push(format!("w {}", bytes.len()));
            Ok(())
        }
        fn end_file(&mut self, mtime: u64) -> Result<()> {
            self.0.push(format!("e {mtime}"));
            Ok(())
        }
    }

    /// Hashes what it is written, in order.
    #[derive(Default)]
    struct Hashed(sha2::Sha256, u64);

    impl Sink for Hashed {
        fn folder(&mut self, _: &str) -> Result<()> {
            Ok(())
        }
        fn begin_file(&mut self, _: &str, _: bool) -> Result<()> {
            Ok(())
        }
        fn write(&mut self, bytes: &[u8]) -> Result<()> {
            sha2::Digest::update(&mut self.0, bytes);
            self.1 += bytes.len() as u64;
            // A slow disk, now and then: the channel must wait for the
            // chunks this sink keeps, never stop.
            if self.1 % 7 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Ok(())
        }
        fn end_file(&mut self, _: u64) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn data_in_published_chunks_arrives_whole_and_the_channel_never_stalls() {
        use super::super::pipeline;
        use sha2::Digest;
        use std::io::{BufRead, Write};
        let data: Vec<u8> = (0..(40 << 20) + 12_345)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let (mut w, mut r) = pipeline::with_spare(DEPTH);
        let source = data.clone();
        let filler = std::thread::spawn(move || {
            w.write_all(&source).expect("write");
            w.close().expect("close");
        });
        let mut sink = Hashed::default();
        let kept = on_thread(&mut sink, |s| {
            r.publish(s.published().expect("the forwarding sink keeps chunks"));
            let mut kept = 0;
            let mut file = 0;
            loop {
                let chunk = r.fill_buf().expect("read");
                if chunk.is_empty() {
                    break;
                }
                // Files of uneven sizes, some across two chunks.
                let n = chunk.len().min(1 + file * 7919 % 300_000);
                s.begin_file(&format!("f{file}"), false)?;
                s.write(&chunk[..n])?;
                s.end_file(0)?;
                kept += n;
                r.consume(n);
                file += 1;
            }
            // Data from anywhere else is copied.
            s.begin_file("elsewhere", false)?;
            s.write(b"not in a chunk")?;
            s.end_file(0)?;
            Ok(kept)
        })
        .expect("no deadlock, no error");
        filler.join().expect("filler");
        assert_eq!(kept, data.len());
        let mut whole = sha2::Sha256::new();
        whole.update(&data);
        whole.update(b"not in a chunk");
        assert_eq!(sink.0.finalize(), whole.finalize());
    }

    #[test]
    fn a_batch_keeps_a_published_chunk_once_and_copies_other_data() {
        use super::super::pipeline;
        use std::io::{BufRead, Write};
        let slot = Published::default();
        let (mut w, mut r) = pipeline::with_spare(1);
        r.publish(Arc::clone(&slot));
        w.write_all(b"hello, world").expect("write");
        w.close().expect("close");
        let part = r.fill_buf().expect("read");
        let chunk = slot.lock().expect("slot").clone().expect("published");
        let mut batch = Batch::default();
        assert!(matches!(batch.keep(&chunk, &part[..5]), Some(Op::Kept(0, r)) if r == (0..5)));
        assert!(matches!(batch.keep(&chunk, &part[7..]), Some(Op::Kept(0, r)) if r == (7..12)));
        assert!(
            batch.keep(&chunk, b"hello").is_none(),
            "the same bytes elsewhere"
        );
        assert_eq!(
            (batch.chunks.len(), batch.kept, batch.bytes.len()),
            (1, 10, 0)
        );
        assert_eq!(batch.size(), 10);
        batch.clear();
        assert!(batch.chunks.is_empty() && batch.kept == 0);
    }

    #[test]
    fn every_operation_arrives_in_order() {
        let mut log = Log::default();
        let n = on_thread(&mut log, |s| {
            for i in 0..1000 {
                s.folder(&format!("d{i}"))?;
                s.begin_file(&format!("d{i}/f"), i % 2 == 0)?;
                s.write(&vec![0; i])?;
                s.end_file(i as u64)?;
            }
            Ok(7)
        })
        .expect("forwarded");
        assert_eq!(n, 7);
        assert_eq!(log.0.len(), 4000);
        assert_eq!(
            log.0[4 * 999..],
            ["d d999", "f d999/f false", "w 999", "e 999"]
        );
    }

    #[test]
    fn the_sinks_failure_is_the_error_and_stops_the_work() {
        let mut log = Log::default();
        let mut sent = 0;
        let err = on_thread(&mut log, |s| -> Result<()> {
            s.begin_file("fail", false)?;
            loop {
                s.write(&[0; 4096])?;
                sent += 1;
            }
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            Error::Internal("disk full".into()).to_string()
        );
        assert!(sent < 10_000, "the work stopped soon after: {sent}");
    }
}
