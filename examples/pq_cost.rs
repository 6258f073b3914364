//! What a post-quantum recipient costs, against X25519: time to seal and
//! open a file key, to make a key, and the size of a one-byte age file.
//!
//! cargo run --release --example pq_cost

use std::io::{Read, Write};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const N: u32 = 500;
    for post_quantum in [false, true] {
        let (text, recipient) = pouch::payload::crypto::generate_identity("now", post_quantum);
        let identity: pouch::payload::crypto::Identity = text
            .lines()
            .last()
            .ok_or("an empty identity file")?
            .parse()?;
        let started = Instant::now();
        let mut files = Vec::new();
        for _ in 0..N {
            let mut file = Vec::new();
            let mut w =
                pouch::payload::crypto::encrypt(std::slice::from_ref(&recipient), &mut file)?;
            w.write_all(b"x")?;
            w.finish()?;
            files.push(file);
        }
        let seal = started.elapsed() / N;
        let started = Instant::now();
        for f in &files {
            let mut r = pouch::payload::crypto::open(f.as_slice(), std::slice::from_ref(&identity))
                .map_err(|e| format!("{e:?}"))?;
            r.read_to_end(&mut Vec::new())?;
        }
        let open = started.elapsed() / N;
        let started = Instant::now();
        for _ in 0..N {
            pouch::payload::crypto::generate_identity("now", post_quantum);
        }
        let keygen = started.elapsed() / N;
        println!(
            "{:<15} seal {seal:>9.1?}  open {open:>9.1?}  keygen {keygen:>9.1?}  one-byte file {} bytes  recipient {} characters",
            recipient.kind(),
            files[0].len(),
            recipient.to_string().len()
        );
    }
    Ok(())
}
