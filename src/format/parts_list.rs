//! The parts list of a re-cut bundle (`NAME.parts.toml`): how its payload
//! is cut now, kept outside the signed manifest.
//!
//! A bundle's identity for custody is its manifest's sha256: the ledger,
//! receipts and the next bundle's `previous_manifest_sha256` all name it.
//! Re-cutting a payload for another medium changes no byte of the payload,
//! only where its bytes lie, so a re-cut leaves the manifest byte-identical
//! and describes the new cut in a list of its own, signed by whoever cut it
//! and bound to the manifest by its sha256. The whole payload's size and
//! sha256 stay those of the signed manifest: a parts list can say where the
//! bytes are, never what they must be.

use serde::{Deserialize, Serialize};

use crate::format::manifest::{check_parts, Part};
use crate::format::strict_toml;

/// The largest parts list read: [`MAX_PARTS`](crate::format::manifest::MAX_PARTS)
/// parts of some 130 bytes.
pub const MAX_PARTS_LIST_BYTES: u64 = 16 << 20;

/// A parts list's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartsList {
    /// Format version, 1.
    pub format_version: u32,
    /// Always `parts`.
    pub kind: String,
    /// The bundle cut.
    pub bundle_id: String,
    /// Its name.
    pub name: String,
    /// sha256 of its manifest file, which is unchanged.
    pub manifest_sha256: String,
    /// When it was cut, RFC 3339 UTC.
    pub recut: String,
    /// Key id of the key that signed this list.
    pub signer_key_id: String,
    /// The parts in order, whose concatenation is the signed payload; none
    /// when the payload is the one file `NAME.age`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
    /// PAR 2.0 recovery files of these parts (`resplit --parity`), signed
    /// here with the parts they describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parity: Option<crate::format::parity::Parity>,
}

impl PartsList {
    /// Parses a parts list whose signature was checked (`vouched`) or not.
    pub fn parse(bytes: &[u8], vouched: bool) -> Result<PartsList, String> {
        let list: PartsList = match vouched {
            true => strict_toml::parse_vouched(bytes, MAX_PARTS_LIST_BYTES)?,
            false => strict_toml::parse(bytes, MAX_PARTS_LIST_BYTES)?,
        };
        if list.format_version != 1 || list.kind != "parts" {
            return Err("not a pouch parts list of a version this pouch reads".into());
        }
        Ok(list)
    }

    /// The file's text.
    pub fn to_toml(&self) -> Result<String, String> {
        let body = toml::to_string(self).map_err(|e| e.to_string())?;
        Ok(format!(
            "# pouch parts list: how the payload of {} is cut now (re-cut {});\n\
             # the manifest {}.toml is unchanged. Signature in {}.parts.toml.minisig.\n\n{body}",
            self.name, self.recut, self.name, self.name
        ))
    }

    /// Checks that this list cuts the payload (`payload_size` bytes) of
    /// bundle `bundle_id` called `name`, whose manifest file hashes to
    /// `manifest_sha256`, into parts of the names, order and total size a
    /// cut of it has.
    pub fn check(
        &self,
        (bundle_id, name): (&str, &str),
        payload_size: u64,
        manifest_sha256: &str,
    ) -> Result<(), String> {
        if self.bundle_id != bundle_id || self.name != name {
            return Err("it is the parts list of another bundle".into());
        }
        if self.manifest_sha256 != manifest_sha256 {
            return Err("it cuts another version of this bundle's manifest".into());
        }
        if self.parts.len() == 1 {
            return Err("a payload of one part is the file NAME.age, not a part".into());
        }
        check_parts(name, &self.parts, payload_size)?;
        let parity = self.parity.as_ref();
        parity.map_or(Ok(()), |p| crate::format::parity::check(name, p))
    }
}

/// The trusted comment of a parts list's signature: it names the bundle and
/// the manifest, so that a signed list cannot be moved to another.
pub fn comment(list: &PartsList) -> String {
    format!(
        "pouch parts bundle_id:{} name:{} manifest:{}",
        list.bundle_id, list.name, list.manifest_sha256
    )
}
