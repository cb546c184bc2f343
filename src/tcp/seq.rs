//! Modular 32-bit TCP sequence numbers: "the sequence number space ... must be performed
//! modulo 2**32" (RFC 793 §3.3), so comparisons look at the signed distance.

/// A TCP sequence number; ordering is modular.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SeqNum(pub u32);

impl SeqNum {
    pub fn advance(self, n: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(n))
    }

    /// Signed distance `self - other`, correct while the two are within 2^31 of each other.
    pub fn diff(self, other: SeqNum) -> i64 {
        i64::from(self.0.wrapping_sub(other.0) as i32)
    }

    pub fn lt(self, other: SeqNum) -> bool {
        self.diff(other) < 0
    }

    pub fn gt(self, other: SeqNum) -> bool {
        self.diff(other) > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_across_the_wrap() {
        let a = SeqNum(u32::MAX - 10);
        let b = a.advance(20);
        assert_eq!(b.0, 9);
        assert!(a.lt(b) && b.gt(a));
        assert_eq!(b.diff(a), 20);
        assert_eq!(a.diff(b), -20);
        assert!(!a.lt(a));
        assert_eq!(SeqNum(5).diff(SeqNum(u32::MAX)), 6);
        assert_eq!(SeqNum(0).advance(1 << 31).diff(SeqNum(0)), -(1i64 << 31));
    }
}
