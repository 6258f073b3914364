//! The compressing stage: zstd on a thread of its own, fed the archive in
//! chunks by the thread that makes it.
//!
//! The archive's thread writes tar headers and file contents into a
//! [`TarOut`], which hands them over in chunks of [`CHUNK`] bytes and says,
//! between entries, at which level the next ones are compressed
//! ([`TarOut::switch`]). The stage compresses them into [`Frames`]: one
//! zstd stream whose frames change level where the archive asked. On two
//! cores zstd runs in this one thread (its own workers would repeat the
//! overlap between their jobs and hold more memory); with more cores it
//! adds workers (see [`super::default_zstd_workers`]).

use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use crate::payload::pipeline::ChannelWriter;

/// Bytes per chunk handed to the compressing stage.
const CHUNK: usize = 1 << 20;
/// Chunks in flight, at most.
const DEPTH: usize = 4;

/// What the archive's thread hands over.
enum Handed {
    Bytes(Vec<u8>),
    Level(i32),
    End,
}

/// The archive's end: a writer whose bytes go to the compressing stage.
pub(super) struct TarOut {
    tx: Option<SyncSender<Handed>>,
    buf: Vec<u8>,
    back: Receiver<Vec<u8>>,
    level: i32,
}

/// The compressing stage's end.
pub(super) struct ZstdIn {
    rx: Receiver<Handed>,
    back: SyncSender<Vec<u8>>,
    level: i32,
}

/// A hand-over starting at `level`.
pub(super) fn hand_over(level: i32) -> (TarOut, ZstdIn) {
    let (tx, rx) = sync_channel(DEPTH);
    // At most DEPTH chunks queued, one being compressed and one being
    // filled exist at once, so the way back never fills up.
    let (back_tx, back_rx) = sync_channel(DEPTH + 2);
    (
        TarOut {
            tx: Some(tx),
            buf: Vec::with_capacity(CHUNK),
            back: back_rx,
            level,
        },
        ZstdIn {
            rx,
            back: back_tx,
            level,
        },
    )
}

fn stopped() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the compressing stage stopped")
}

impl TarOut {
    fn send(&mut self, handed: Handed) -> io::Result<()> {
        let tx = self.tx.as_ref().ok_or_else(stopped)?;
        tx.send(handed).map_err(|_| stopped())
    }

    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let next = self
            .back
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let full = std::mem::replace(&mut self.buf, next);
        self.send(Handed::Bytes(full))
    }

    /// Compresses the entries from here on at `level`.
    pub(super) fn switch(&mut self, level: i32) -> io::Result<()> {
        if level == self.level {
            return Ok(());
        }
        self.send_buf()?;
        self.level = level;
        self.send(Handed::Level(level))
    }

    /// Hands over what is left and ends the archive.
    pub(super) fn close(mut self) -> io::Result<()> {
        self.send_buf()?;
        self.send(Handed::End)?;
        self.tx = None;
        Ok(())
    }
}

impl Write for TarOut {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() == CHUNK {
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

/// The compressing stage: compresses what is handed over into `chan`, one
/// zstd stream, until the archive ends; returns an error if zstd or the
/// next stage fails. A `TarOut` dropped without [`TarOut::close`] (its
/// thread failed, and reports why) is an error here too, though the later
/// stages see only the stream end: the pack fails with the archive's
/// reason, and nothing is committed.
pub(super) fn compress(input: ZstdIn, chan: ChannelWriter, workers: u32) -> io::Result<()> {
    let mut frames = Frames::new(chan, input.level, workers)?;
    for handed in input.rx {
        match handed {
            Handed::Bytes(mut chunk) => {
                frames.write_all(&chunk)?;
                chunk.clear();
                let _ = input.back.try_send(chunk);
            }
            Handed::Level(level) => frames.switch(level)?,
            Handed::End => return frames.finish()?.close(),
        }
    }
    Err(io::Error::other("the archive ended early"))
}

/// The zstd window: 8 MiB (see [`Frames::new`]).
const WINDOW_LOG: u32 = 23;

/// The level of a frame for an already-compressed file: one of zstd's fast
/// levels, which spend less time looking for repeats that are not there
/// (on the mixed corpus 6 % less pack time than level 1, for 0.7 % more
/// payload). Every zstd decoder reads such frames.
pub(super) const INCOMPRESSIBLE_LEVEL: i32 = -3;

/// A zstd stream made of frames whose level can change between entries:
/// [`Frames::switch`] ends the current frame and starts the next at another
/// level. Concatenated frames are one valid zstd stream. One compression
/// context serves every frame, so its workers and buffers are made once.
struct Frames {
    writer: Option<Writer>,
    level: i32,
}

type Writer = zstd::stream::zio::Writer<ChannelWriter, zstd::stream::raw::Encoder<'static>>;

impl Frames {
    fn new(chan: ChannelWriter, level: i32, workers: u32) -> io::Result<Frames> {
        use zstd::zstd_safe::CParameter;
        let mut e = zstd::stream::raw::Encoder::new(level)?;
        e.set_parameter(CParameter::ChecksumFlag(true))?;
        // An 8 MiB window (zstd's default at level 3 is 2 MiB) finds the
        // repeats between files that a tree of reports and logs is full
        // of; every zstd decoder takes windows up to 128 MiB by default.
        e.set_parameter(CParameter::WindowLog(WINDOW_LOG))?;
        if workers > 0 {
            e.set_parameter(CParameter::NbWorkers(workers))?;
            // Small jobs keep the workers' buffers, and so pouch's memory,
            // small; each job starts from the 4 MiB before it (overlap 8:
            // half the window), so that small jobs lose little of it.
            e.set_parameter(CParameter::JobSize(2 << 20))?;
            e.set_parameter(CParameter::OverlapSizeLog(8))?;
        }
        Ok(Frames {
            writer: Some(Writer::new(chan, e)),
            level,
        })
    }

    /// Continues at `level`: a new frame if it differs from the current one.
    fn switch(&mut self, level: i32) -> io::Result<()> {
        use zstd::stream::raw::Operation;
        if level == self.level {
            return Ok(());
        }
        let (chan, mut e) = self.finish_frame()?;
        // Between frames the context takes a new level and keeps the rest.
        e.reinit()?;
        e.set_parameter(zstd::zstd_safe::CParameter::CompressionLevel(level))?;
        self.writer = Some(Writer::new(chan, e));
        self.level = level;
        Ok(())
    }

    fn finish_frame(&mut self) -> io::Result<(ChannelWriter, zstd::stream::raw::Encoder<'static>)> {
        let mut w = self.writer.take().ok_or_else(finished)?;
        w.finish()?;
        Ok(w.into_inner())
    }

    /// Ends the last frame; returns the channel.
    fn finish(mut self) -> io::Result<ChannelWriter> {
        Ok(self.finish_frame()?.0)
    }
}

fn finished() -> io::Error {
    io::Error::other("zstd stream already finished")
}

impl Write for Frames {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.as_mut().ok_or_else(finished)?.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.writer {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}
