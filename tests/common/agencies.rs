//! Two agencies, each with its own pouch home, on one channel: the sender
//! bka-zd packs onto a stick, the receiver fedpol-ic unpacks from it.
#![allow(dead_code)] // each test binary uses some of it

use std::path::{Path, PathBuf};

use assert_cmd::Command;

use super::{passes, Keys, World};

/// The channel every bundle here travels on.
pub const CHANNEL: [&str; 4] = ["--from", "bka-zd", "--to", "fedpol-ic"];

/// A sending agency and a receiving one, each with its own pouch home.
pub struct Agencies {
    pub w: World,
    pub d: PathBuf,
    pub clerk: Keys,
    pub recipient: Keys,
}

impl Agencies {
    pub fn new() -> Agencies {
        let world = World::new();
        let w = Agencies {
            d: world.path().to_path_buf(),
            clerk: world.keys("clerk"),
            recipient: world.keys("recipient"),
            w: world,
        };
        // Each side knows the other by name.
        let (to, key) = (&w.recipient.recipient, &w.recipient.public);
        let add = args!(w.sender(); "keyring", "add", "fedpol-ic", "--sign-pub", key);
        passes(args!(add; "--recipient", to), &[]);
        passes(w.add(w.receiver(), "bka-zd"), &[]);
        w.w.dir("src");
        w.w.dir("stick");
        w
    }

    pub fn sender(&self) -> Command {
        self.w.home("sender")
    }

    pub fn receiver(&self) -> Command {
        self.w.home("receiver")
    }

    /// `keyring add NAME --sign-pub` the clerk's key, on `side`.
    pub fn add(&self, side: Command, name: &str) -> Command {
        args!(side; "keyring", "add", name, "--sign-pub", &self.clerk.public)
    }

    /// A file `src/NAME` for the sender to pack.
    pub fn source(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        self.w.write(Path::new("src").join(name), contents)
    }

    /// `pouch pack FILE -o stick/ -s KEY ARGS…` on the sender's side.
    pub fn pack_cmd(&self, file: &Path, key: &Path, args: &[&str]) -> Command {
        let mut c = args!(self.sender(); "pack", file, "-o", self.d.join("stick"), "-s", key);
        c.args(args);
        c
    }

    /// Packs bundle `name` on channel bka-zd -> fedpol-ic, recipients from the keyring.
    pub fn pack(&self, name: &str) -> PathBuf {
        let f = self.source(&format!("{name}.txt"), format!("report {name}\n"));
        let mut pack = self.pack_cmd(&f, &self.clerk.secret, &["--name", name]);
        passes(pack.args(CHANNEL), &[]);
        self.d.join("stick").join(format!("{name}.toml"))
    }

    /// Unpacks as the recipient, trusting the keyring only.
    pub fn unpack(&self, manifest: &Path) -> Command {
        let (id, dest) = (&self.recipient.identity, self.d.join("inbox"));
        args!(self.receiver(); "unpack", manifest, "-i", id, "-d", dest)
    }

    /// [`Agencies::unpack`], writing a receipt signed by the recipient into `dir`.
    pub fn unpack_with_receipt(&self, manifest: &Path, dir: &Path) -> Command {
        let key = &self.recipient.secret;
        args!(self.unpack(manifest); "--receipt-out", dir, "-s", key)
    }

    /// `pouch receipt import RECEIPT` on the sender's side.
    pub fn import(&self, receipt: &Path) -> Command {
        args!(self.sender(); "receipt", "import", receipt)
    }
}
