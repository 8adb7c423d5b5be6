//! Protects and opens one encoded frame.
//!
//! A protected Opus or VP8 frame is `clear prefix ‖ SFrame ciphertext` (the SFrame header, the
//! encrypted rest of the frame and its tag), with the clear prefix as SFrame metadata. A protected
//! H.264 access unit keeps its NAL units; each NAL unit that is not left whole in the clear becomes
//! `header byte ‖ escape(SFrame ciphertext of the rest) ‖ 80`, with the header byte as metadata.
//! See [`crate::codec`] for what stays clear and why.

use sframe::frame::{EncryptedFrameView, MediaFrameView, SingleUseCounter};
use sframe::key::EncryptionKey;

use crate::h264;
use crate::{Codec, E2eeError, ReceiverKeys, SenderKey};

/// Encrypts `payload` under `key` with frame counter `counter`, authenticating `metadata`; returns
/// the SFrame ciphertext (header, encrypted payload, tag). The one place roomd calls the AEAD.
pub fn seal(
    key: &EncryptionKey,
    counter: u64,
    metadata: &[u8],
    payload: &[u8],
) -> Result<Vec<u8>, E2eeError> {
    let frame =
        MediaFrameView::try_with_meta_data(&mut SingleUseCounter::new(counter), payload, metadata)?;
    let mut out = Vec::new();
    let encrypted = frame.encrypt_into(key, &mut out)?;
    Ok(encrypted.sframe_cipher_text().to_vec())
}

/// Decrypts an SFrame ciphertext with the key its key id names, checking `metadata`.
pub fn unseal(keys: &ReceiverKeys, metadata: &[u8], sframe: &[u8]) -> Result<Vec<u8>, E2eeError> {
    let encrypted = EncryptedFrameView::try_with_meta_data(sframe, metadata)?;
    let mut out = Vec::new();
    let opened = encrypted.decrypt_into(keys.store(), &mut out)?;
    Ok(opened.payload().to_vec())
}

/// Protects one encoded frame of `codec` with the sender's key.
pub fn protect(codec: Codec, key: &mut SenderKey, frame: &[u8]) -> Result<Vec<u8>, E2eeError> {
    if codec == Codec::H264 {
        return protect_h264(key, frame);
    }
    let clear = codec.clear_prefix(frame);
    if frame.len() < clear {
        return Err(E2eeError::TooShort {
            codec,
            len: frame.len(),
            needed: clear,
        });
    }
    let (metadata, payload) = frame.split_at(clear);
    let counter = key.next_counter()?;
    let sealed = seal(key.key(), counter, metadata, payload)?;
    let mut out = Vec::with_capacity(clear + sealed.len());
    out.extend_from_slice(metadata);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Opens one protected frame of `codec`; an error for anything that was not protected by a key
/// the receiver holds (nothing is ever passed through in the clear).
pub fn open(codec: Codec, keys: &ReceiverKeys, data: &[u8]) -> Result<Vec<u8>, E2eeError> {
    if codec == Codec::H264 {
        return open_h264(keys, data);
    }
    let clear = codec.clear_prefix(data);
    if data.len() < clear {
        return Err(E2eeError::TooShort {
            codec,
            len: data.len(),
            needed: clear,
        });
    }
    let (metadata, sealed) = data.split_at(clear);
    let payload = unseal(keys, metadata, sealed)?;
    let mut out = Vec::with_capacity(clear + payload.len());
    out.extend_from_slice(metadata);
    out.extend_from_slice(&payload);
    Ok(out)
}

const START_CODE: [u8; 4] = [0, 0, 0, 1];

fn protect_h264(key: &mut SenderKey, au: &[u8]) -> Result<Vec<u8>, E2eeError> {
    let mut out = Vec::with_capacity(au.len() + 64);
    for unit in h264::nal_units(au)? {
        out.extend_from_slice(&START_CODE);
        let (header, payload) = unit.split_at(1);
        if h264::stays_clear(header[0] & 0x1f) {
            out.extend_from_slice(unit);
            continue;
        }
        let counter = key.next_counter()?;
        let sealed = seal(key.key(), counter, header, payload)?;
        out.extend_from_slice(header);
        out.extend_from_slice(&h264::escape(&sealed));
    }
    Ok(out)
}

fn open_h264(keys: &ReceiverKeys, au: &[u8]) -> Result<Vec<u8>, E2eeError> {
    let mut out = Vec::with_capacity(au.len());
    for unit in h264::nal_units(au)? {
        out.extend_from_slice(&START_CODE);
        let (header, rest) = unit.split_at(1);
        if h264::stays_clear(header[0] & 0x1f) {
            out.extend_from_slice(unit);
            continue;
        }
        let sealed = h264::unescape(rest)?;
        let payload = unseal(keys, header, &sealed)?;
        out.extend_from_slice(header);
        out.extend_from_slice(&payload);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeySecret;
    use proptest::prelude::*;

    fn pair() -> (SenderKey, ReceiverKeys) {
        let secret = KeySecret::new([7; 32]);
        let sender = SenderKey::new(5, &secret).expect("sender key");
        let mut receiver = ReceiverKeys::default();
        receiver.insert(5, &secret).expect("receiver key");
        (sender, receiver)
    }

    #[test]
    fn a_vp8_key_frame_keeps_ten_bytes_and_a_delta_frame_three() {
        let (mut sender, receiver) = pair();
        let key_frame: Vec<u8> = (0u8..40).map(|b| b.wrapping_mul(2)).collect(); // bit 0 clear
        let protected = protect(Codec::Vp8, &mut sender, &key_frame).expect("protect");
        assert_eq!(protected[..10], key_frame[..10]);
        assert_ne!(protected[10..], key_frame[10..]);
        assert_eq!(
            open(Codec::Vp8, &receiver, &protected).expect("open"),
            key_frame
        );
        let delta: Vec<u8> = (1u8..41).collect(); // starts with 1: bit 0 set
        let protected = protect(Codec::Vp8, &mut sender, &delta).expect("protect");
        assert_eq!(protected[..3], delta[..3]);
        assert_eq!(
            open(Codec::Vp8, &receiver, &protected).expect("open"),
            delta
        );
    }

    #[test]
    fn a_changed_clear_byte_makes_the_frame_fail_to_open() {
        let (mut sender, receiver) = pair();
        let frame = vec![0x78; 30];
        let mut protected = protect(Codec::Opus, &mut sender, &frame).expect("protect");
        protected[0] ^= 1;
        assert!(open(Codec::Opus, &receiver, &protected).is_err());
    }

    #[test]
    fn h264_keeps_nal_headers_and_parameter_sets_and_hides_slices() {
        let (mut sender, receiver) = pair();
        let sps = [0x67, 0x42, 0xc0, 0x1f, 0xda];
        let pps = [0x68, 0xce, 0x3c, 0x80];
        let idr: Vec<u8> = std::iter::once(0x65)
            .chain((0..200).map(|i| (i % 7) as u8))
            .collect();
        let mut au = Vec::new();
        for unit in [&sps[..], &pps[..], &idr[..]] {
            au.extend_from_slice(&[0, 0, 0, 1]);
            au.extend_from_slice(unit);
        }
        let protected = protect(Codec::H264, &mut sender, &au).expect("protect");
        let units = crate::h264::nal_units(&protected).expect("still NAL units");
        assert_eq!(units.len(), 3);
        assert_eq!(units[0], &sps[..]);
        assert_eq!(units[1], &pps[..]);
        assert_eq!(units[2][0], 0x65, "the IDR header stays");
        assert!(
            !units[2].windows(idr.len() - 1).any(|w| w == &idr[1..]),
            "the slice data is not readable"
        );
        assert_eq!(open(Codec::H264, &receiver, &protected).expect("open"), au);
    }

    #[test]
    fn an_h264_slice_in_the_clear_is_refused() {
        let (_, receiver) = pair();
        let au = [0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21, 0x43];
        assert!(open(Codec::H264, &receiver, &au).is_err());
    }

    #[test]
    fn a_receiver_without_the_key_opens_nothing() {
        let (mut sender, _) = pair();
        let mut other = ReceiverKeys::default();
        other
            .insert(5, &KeySecret::new([8; 32]))
            .expect("other key");
        let protected = protect(Codec::Opus, &mut sender, &[0x78; 30]).expect("protect");
        assert!(matches!(
            open(Codec::Opus, &other, &protected),
            Err(E2eeError::Sframe(_))
        ));
        assert!(matches!(
            open(Codec::Opus, &ReceiverKeys::default(), &protected),
            Err(E2eeError::Sframe(_))
        ));
    }

    proptest! {
        #[test]
        fn opening_arbitrary_bytes_fails_cleanly(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let (_, receiver) = pair();
            for codec in [Codec::Opus, Codec::Vp8] {
                prop_assert!(open(codec, &receiver, &data).is_err());
            }
            // H.264 units that stay clear (SPS, PPS…) open as they are; any other unit must
            // have been sealed, and random bytes are not.
            if let Ok(opened) = open(Codec::H264, &receiver, &data) {
                let units = crate::h264::nal_units(&opened).expect("units");
                prop_assert!(units.iter().all(|u| crate::h264::stays_clear(u[0] & 0x1f)));
            }
        }

        #[test]
        fn every_h264_access_unit_round_trips(units in proptest::collection::vec(
            (1u8..=31, proptest::collection::vec(1u8..=255, 1..100)), 1..8)) {
            let (mut sender, receiver) = pair();
            let mut au = Vec::new();
            for (nal_type, body) in &units {
                au.extend_from_slice(&[0, 0, 0, 1, 0x60 | nal_type]);
                au.extend_from_slice(body);
            }
            let protected = protect(Codec::H264, &mut sender, &au).expect("protect");
            prop_assert_eq!(open(Codec::H264, &receiver, &protected).expect("open"), au);
        }
    }
}
