//! Reading multi-byte wire fields from slices a view's constructor already checked.
//!
//! Each reader takes a short slice (a field's range) and never fails: a longer slice keeps
//! the last bytes (big-endian) or the first bytes (little-endian), a shorter one reads as if
//! zero-padded in front. The constructors' length checks make those cases unreachable.

/// Big-endian value of at most two bytes.
pub(super) fn be_u16(bytes: &[u8]) -> u16 {
    bytes
        .iter()
        .fold(0, |acc: u16, &b| (acc << 8) | u16::from(b))
}

/// Big-endian value of at most four bytes.
pub(super) fn be_u32(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .fold(0, |acc: u32, &b| (acc << 8) | u32::from(b))
}

/// Little-endian value of at most four bytes.
pub(super) fn le_u32(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .rev()
        .fold(0, |acc: u32, &b| (acc << 8) | u32::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_and_little_endian_fields() {
        assert_eq!(be_u16(&[0x12, 0x34]), 0x1234);
        assert_eq!(be_u32(&[0x00, 0x12, 0x34]), 0x1234);
        assert_eq!(be_u32(&[0x12, 0x34, 0x56, 0x78]), 0x1234_5678);
        assert_eq!(le_u32(&[0x78, 0x56, 0x34, 0x12]), 0x1234_5678);
        assert_eq!(be_u16(&[]), 0);
    }
}
