//! Percent-encoding (RFC 3986 section 2.1) as edge-bff's checks read it: strict hex
//! digits (no sign, unlike `u8::from_str_radix`), and every `%XX` escape of a text.

/// The value of one hex digit.
pub fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// A control byte: `00`–`1F` or `7F`.
pub fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// The byte each `%XX` escape in `bytes` stands for, in order (every `%` followed by two
/// hex digits, overlapping windows included, so `%%41` yields `A`).
pub fn escaped_bytes(bytes: &[u8]) -> impl Iterator<Item = u8> + '_ {
    bytes.windows(3).filter(|w| w[0] == b'%').filter_map(|w| Some(hex_value(w[1])? * 16 + hex_value(w[2])?))
}

/// `text` percent-decoded once; `None` for a `%` not followed by two hex digits.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = hex_value(*bytes.get(i + 1)?)?;
            let lo = hex_value(*bytes.get(i + 2)?)?;
            out.push(hi * 16 + lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_hex_and_every_escape() {
        assert_eq!(decode("a%41%2f"), Some(b"aA/".to_vec()));
        for bad in ["%", "%4", "%+1", "%-1", "%zz"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
        assert_eq!(escaped_bytes(b"%%41x%2F%+1%0a").collect::<Vec<_>>(), vec![b'A', b'/', b'\n']);
    }
}
