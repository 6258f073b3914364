//! A [`Sink`] on a thread of its own.
//!
//! Unpacking many small files is mostly system calls (create, write, set
//! the mode and time, close: five a file), which the thread that
//! decompresses and checks the archive would otherwise make between two
//! entries. [`on_thread`] hands the entries, already checked, to another
//! thread in batches, so that the two overlap. The batches in flight are
//! bounded, so memory stays flat whatever the archive holds.

use std::ops::Range;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use super::archive::Sink;
use crate::error::{Error, Result};

/// What the checking thread asks of the sink; names lie in the batch's
/// `names`, data in its `bytes`.
enum Op {
    Folder(Range<usize>),
    Begin(Range<usize>, bool),
    Data(Range<usize>),
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
}

/// Operations sent at once, at most.
const BATCH_OPS: usize = 256;
/// Bytes sent at once, at most (one operation may pass it).
const BATCH_BYTES: usize = 1 << 20;
/// Batches in flight, at most.
const DEPTH: usize = 4;

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
                        Op::End(mtime) => sink.end_file(*mtime)?,
                    }
                }
                batch.ops.clear();
                batch.names.clear();
                batch.bytes.clear();
                let _ = back_tx.try_send(batch);
            }
            Ok(())
        });
        let mut forward = Forward {
            tx: Some(tx),
            back: back_rx,
            batch: Batch::default(),
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
}

impl Forward {
    fn push(&mut self, op: Op) -> Result<()> {
        self.batch.ops.push(op);
        if self.batch.ops.len() >= BATCH_OPS
            || self.batch.names.len() + self.batch.bytes.len() >= BATCH_BYTES
        {
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
        let r = self.batch.data(bytes);
        self.push(Op::Data(r))
    }

    fn end_file(&mut self, mtime: u64) -> Result<()> {
        self.push(Op::End(mtime))
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
