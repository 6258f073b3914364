//! Progress reporting hooks. The library reports; the binary decides how to
//! show it (a bar on a terminal, nothing otherwise).

/// Receives progress from long operations. Called from worker threads.
pub trait Progress: Send + Sync {
    /// Work of `total` bytes (0 if unknown) called `what` begins.
    fn start(&self, what: &str, total: u64);
    /// `bytes` more are done.
    fn advance(&self, bytes: u64);
    /// The work turns out `bytes` larger than said so far (it is listed
    /// while it is done).
    fn more(&self, _bytes: u64) {}
    /// Now working on `name` (untrusted for unpack: escape before showing).
    fn item(&self, name: &str);
    /// The work is over (successfully or not).
    fn finish(&self);
}

/// Reports nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn item(&self, _: &str) {}
    fn finish(&self) {}
}

/// A shared progress sink.
pub type Shared = std::sync::Arc<dyn Progress>;

/// The quiet sink, shared.
pub fn quiet() -> Shared {
    std::sync::Arc::new(Quiet)
}

/// A progress sink carried in option structs (debug-printable, quiet by default).
#[derive(Clone)]
pub struct Handle(pub Shared);

impl Default for Handle {
    fn default() -> Self {
        Handle(quiet())
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("progress::Handle")
    }
}

impl std::ops::Deref for Handle {
    type Target = dyn Progress;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

/// A reader that reports the bytes read through it and stops on Ctrl-C.
pub struct Reader<R> {
    inner: R,
    progress: Handle,
}

impl<R> Reader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R, progress: Handle) -> Self {
        Reader { inner, progress }
    }
}

impl<R: std::io::Read> std::io::Read for Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if crate::interrupt::check().is_err() {
            return Err(std::io::Error::other(INTERRUPTED));
        }
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

pub use crate::error::INTERRUPTED;
