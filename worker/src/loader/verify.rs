//! Integrity of one streamed file: its size and sha256, checked as the bytes go by (the hash is
//! incremental, so no file is ever held whole to be verified).

use sha2::{Digest, Sha256};

use super::Chunk;
use crate::error::{Result, WickError};

/// What a file must be, as a manifest or `externalData` states it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    pub size: Option<u64>,
    pub sha256: Option<[u8; 32]>,
}

impl Expected {
    /// `sha256` as 64 hex digits (either case).
    pub fn new(size: Option<u64>, sha256: Option<&str>) -> Result<Self> {
        let sha256 = sha256.map(parse_sha256).transpose()?;
        Ok(Expected { size, sha256 })
    }
}

fn parse_sha256(hex: &str) -> Result<[u8; 32]> {
    let bad = || WickError::BadInput(format!("'{hex}' is not a sha256 (64 hex digits)"));
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks one file as it streams: feed every chunk in order, then [`Verifier::finish`].
pub struct Verifier {
    file: String,
    expected: Expected,
    hasher: Option<Sha256>,
    /// Chunks are copied here to be hashed when they live outside our memory (JS chunks).
    scratch: Vec<u8>,
    seen: u64,
}

impl Verifier {
    pub fn new(file: impl Into<String>, expected: Expected) -> Self {
        let hasher = expected.sha256.map(|_| Sha256::new());
        Verifier { file: file.into(), expected, hasher, scratch: Vec::new(), seen: 0 }
    }

    /// Bytes verified so far: a resumed download continues from here.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    fn fail(&self, message: String) -> WickError {
        WickError::Integrity { file: self.file.clone(), message }
    }

    /// The next chunk. A file longer than its stated size fails here, before its extra bytes
    /// are used.
    pub fn update<C: Chunk + ?Sized>(&mut self, chunk: &C) -> Result<()> {
        let len = chunk.len();
        if let Some(size) = self.expected.size {
            if self.seen + len as u64 > size {
                return Err(self.fail(format!("more than the {size} bytes stated")));
            }
        }
        if let Some(hasher) = self.hasher.as_mut() {
            self.scratch.clear();
            self.scratch.reserve(len);
            chunk.copy_to(0..len, &mut self.scratch.spare_capacity_mut()[..len]);
            // SAFETY: `Chunk::copy_to` initialised those `len` bytes.
            unsafe { self.scratch.set_len(len) };
            hasher.update(&self.scratch);
        }
        self.seen += len as u64;
        Ok(())
    }

    /// End of the file: its size and hash must be the stated ones. Returns the sha256 (hex)
    /// when one was computed.
    pub fn finish(self) -> Result<Option<String>> {
        if let Some(size) = self.expected.size {
            if self.seen != size {
                return Err(self.fail(format!("{} bytes, but {size} were stated", self.seen)));
            }
        }
        match (self.hasher.as_ref(), self.expected.sha256) {
            (Some(hasher), Some(want)) => {
                let got: [u8; 32] = hasher.clone().finalize().into();
                if got != want {
                    return Err(self.fail(format!("sha256 is {}, but {} was stated", hex(&got), hex(&want))));
                }
                Ok(Some(hex(&got)))
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // sha256("abc"), from FIPS 180-2 appendix B.1.
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn feed(expected: Expected, chunks: &[&[u8]]) -> Result<Option<String>> {
        let mut v = Verifier::new("f.bin", expected);
        for c in chunks {
            v.update(*c)?;
        }
        v.finish()
    }

    #[test]
    fn a_file_split_anywhere_hashes_like_the_whole() {
        let e = Expected::new(Some(3), Some(&ABC.to_uppercase())).unwrap();
        assert_eq!(feed(e.clone(), &[b"abc"]).unwrap().as_deref(), Some(ABC));
        assert_eq!(feed(e.clone(), &[b"a", b"", b"bc"]).unwrap().as_deref(), Some(ABC));
        assert_eq!(feed(e, &[b"ab", b"c"]).unwrap().as_deref(), Some(ABC));
    }

    #[test]
    fn a_wrong_hash_or_size_is_an_integrity_error_naming_the_file() {
        let e = Expected::new(None, Some(ABC)).unwrap();
        let err = feed(e, &[b"abd"]).unwrap_err();
        assert!(matches!(&err, WickError::Integrity { file, .. } if file == "f.bin"), "{err}");
        assert!(err.to_string().contains("sha256"), "{err}");
        let short = feed(Expected::new(Some(4), None).unwrap(), &[b"abc"]).unwrap_err();
        assert!(short.to_string().contains("3 bytes, but 4"), "{short}");
    }

    #[test]
    fn extra_bytes_fail_at_the_chunk_that_brings_them() {
        let mut v = Verifier::new("f.bin", Expected::new(Some(2), None).unwrap());
        v.update(&b"ab"[..]).unwrap();
        assert!(v.update(&b"c"[..]).is_err());
    }

    #[test]
    fn malformed_hashes_are_bad_input() {
        for bad in ["", "abc", &ABC[1..], &format!("{}zz", &ABC[..62])] {
            assert!(matches!(Expected::new(None, Some(bad)), Err(WickError::BadInput(_))), "{bad}");
        }
    }
}
