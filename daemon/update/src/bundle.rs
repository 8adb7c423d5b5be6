//! A RAUC bundle's outer structure, checked before RAUC sees the file.
//!
//! A bundle is a squashfs image (plain: just it; verity: followed by its hash tree), then the
//! CMS signature, then the signature's size as a big-endian u64. RAUC's `Info` answers a
//! truncated file and a bad signature with the same "rauc info error"; this check tells them
//! apart so that the error says which it is. It proves nothing: RAUC verifies the signature.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// squashfs's magic, `hsqs`, at the start of every bundle.
const SQUASHFS_MAGIC: &[u8; 4] = b"hsqs";
/// Offset of squashfs's `bytes_used` (u64, little endian) in its superblock.
const BYTES_USED_OFFSET: u64 = 40;

/// Checks that `path` looks like a whole bundle; the error says what is wrong.
pub(crate) fn check_structure(path: &Path) -> Result<(), String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot open it: {e}"))?;
    let len = file
        .metadata()
        .map_err(|e| format!("cannot read its size: {e}"))?
        .len();
    if len < 4096 + 8 {
        return Err(format!(
            "it has only {len} bytes: the file is truncated or not a bundle"
        ));
    }
    let mut head = [0u8; 48];
    file.read_exact(&mut head)
        .map_err(|e| format!("cannot read it: {e}"))?;
    if &head[..4] != SQUASHFS_MAGIC {
        return Err("it does not start with a squashfs image (not a RAUC bundle)".to_owned());
    }
    let off = BYTES_USED_OFFSET as usize;
    let mut used = [0u8; 8];
    used.copy_from_slice(&head[off..off + 8]);
    let image = u64::from_le_bytes(used);
    let mut tail = [0u8; 8];
    file.seek(SeekFrom::End(-8))
        .and_then(|_| file.read_exact(&mut tail))
        .map_err(|e| format!("cannot read its end: {e}"))?;
    let signature = u64::from_be_bytes(tail);
    let payload = len
        .checked_sub(8)
        .and_then(|rest| rest.checked_sub(signature))
        .filter(|_| signature > 0);
    match payload {
        Some(payload) if payload >= image => Ok(()),
        _ => Err(format!(
            "its {len} bytes cannot hold its image ({image} bytes) and its signature; \
             the file is truncated or damaged"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(image: u64, payload: usize, signature: usize) -> Vec<u8> {
        let mut data = vec![0u8; payload];
        data[..4].copy_from_slice(SQUASHFS_MAGIC);
        data[40..48].copy_from_slice(&image.to_le_bytes());
        data.extend(std::iter::repeat_n(0x30, signature));
        data.extend((signature as u64).to_be_bytes());
        data
    }

    #[test]
    fn whole_bundles_pass_and_cut_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.raucb");
        let whole = bundle(8000, 8192, 700);
        std::fs::write(&path, &whole).unwrap();
        assert_eq!(check_structure(&path), Ok(()));
        std::fs::write(&path, &whole[..6000]).unwrap();
        assert!(check_structure(&path).unwrap_err().contains("truncated"));
        std::fs::write(&path, vec![7u8; 9000]).unwrap();
        assert!(check_structure(&path).unwrap_err().contains("squashfs"));
        std::fs::write(&path, b"hello").unwrap();
        assert!(check_structure(&path).unwrap_err().contains("only 5 bytes"));
    }
}
