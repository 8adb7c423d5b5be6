//! H.264 Annex B byte-streams: NAL units by start code, and the escaping that keeps ciphertext
//! from looking like a start code.
//!
//! An encrypted NAL payload is random bytes, so it may contain `00 00 01`, which every parser
//! downstream would take for the start of a new NAL unit. It is escaped the way H.264 escapes its
//! own payloads (emulation prevention, section 7.4.1): after two zero bytes, a byte of 0 to 3 is
//! preceded by `03`. A stop byte `80` ends it, so that it never ends in a zero byte either.

use crate::E2eeError;

/// At most this many NAL units in one access unit (a 4K frame in many slices stays far below).
pub(crate) const MAX_NAL_UNITS: usize = 1024;

/// The byte appended after the escaped ciphertext.
pub(crate) const STOP_BYTE: u8 = 0x80;

/// The NAL units of an access unit, without their start codes.
pub(crate) fn nal_units(au: &[u8]) -> Result<Vec<&[u8]>, E2eeError> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 2 < au.len() {
        if au[i] == 0 && au[i + 1] == 0 && au[i + 2] == 1 {
            starts.push(i + 3);
            if starts.len() > MAX_NAL_UNITS {
                return Err(E2eeError::TooManyUnits {
                    limit: MAX_NAL_UNITS,
                });
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    if starts.is_empty() {
        return Err(E2eeError::NoStartCode);
    }
    let mut units = Vec::with_capacity(starts.len());
    for (n, &start) in starts.iter().enumerate() {
        let mut end = match starts.get(n + 1) {
            Some(next) => next - 3,
            None => au.len(),
        };
        // The zero byte of a four-byte start code belongs to the next start code, not here.
        while end > start && au[end - 1] == 0 {
            end -= 1;
        }
        if end > start {
            units.push(&au[start..end]);
        }
    }
    Ok(units)
}

/// NAL unit types that stay whole in the clear: SPS, PPS, access unit delimiter, end of
/// sequence, end of stream, filler data.
pub(crate) fn stays_clear(nal_type: u8) -> bool {
    matches!(nal_type, 7..=12)
}

/// Escapes `data` so that it holds no `00 00 0x` (x ≤ 2) and no `00 00 03` but the escapes it
/// inserts (each before a byte ≤ 3), and appends the stop byte.
pub(crate) fn escape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 64 + 2);
    let mut zeros = 0;
    for &b in data {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    out.push(STOP_BYTE);
    out
}

/// Undoes [`escape`]: drops each `03` that follows two zero bytes, and the stop byte.
pub(crate) fn unescape(data: &[u8]) -> Result<Vec<u8>, E2eeError> {
    let Some((&STOP_BYTE, body)) = data.split_last() else {
        return Err(E2eeError::NoStopByte);
    };
    let mut out = Vec::with_capacity(body.len());
    let mut zeros = 0;
    for &b in body {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn units_are_found_between_three_and_four_byte_start_codes() {
        let au = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 9, 9,
        ];
        let units = nal_units(&au).expect("units");
        assert_eq!(units, vec![&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 9, 9]]);
    }

    #[test]
    fn an_access_unit_without_a_start_code_is_refused() {
        assert!(matches!(
            nal_units(&[1, 2, 3, 4]),
            Err(E2eeError::NoStartCode)
        ));
    }

    proptest! {
        #[test]
        fn escaping_round_trips_and_never_emulates_a_start_code(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let escaped = escape(&data);
            // 00 00 03 is the escape itself; 00 00 00, 01 and 02 must never appear.
            prop_assert!(!escaped.windows(3).any(|w| w[0] == 0 && w[1] == 0 && w[2] <= 2));
            prop_assert_ne!(escaped.last(), Some(&0));
            prop_assert_eq!(unescape(&escaped).expect("unescape"), data);
        }

        #[test]
        fn any_input_is_split_or_refused_without_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = nal_units(&data);
            let _ = unescape(&data);
        }
    }
}
