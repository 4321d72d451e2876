//! Reading a plugin's own binary model format without trusting it: every
//! read is bounds-checked and every count is checked against the bytes left
//! before anything is allocated, so garbage gives an error, never a panic
//! or a huge allocation.

/// A cursor over untrusted little-endian bytes. Errors are plain strings
/// saying what was being read; the caller wraps them in its own error.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// The next `n` bytes.
    ///
    /// # Errors
    /// Fewer than `n` bytes left.
    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if n > self.remaining() {
            return Err(format!("truncated while reading {what}"));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    /// A byte.
    ///
    /// # Errors
    /// No byte left.
    pub fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.array::<1>(what)?[0])
    }

    /// A `u32`.
    ///
    /// # Errors
    /// Fewer than 4 bytes left.
    pub fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// An `f32`.
    ///
    /// # Errors
    /// Fewer than 4 bytes left.
    pub fn f32(&mut self, what: &str) -> Result<f32, String> {
        Ok(f32::from_le_bytes(self.array(what)?))
    }

    /// An `f64`.
    ///
    /// # Errors
    /// Fewer than 8 bytes left.
    pub fn f64(&mut self, what: &str) -> Result<f64, String> {
        Ok(f64::from_le_bytes(self.array(what)?))
    }

    /// A `u32` count of items of `size` bytes each, refused unless that
    /// many bytes are still there.
    ///
    /// # Errors
    /// A count the remaining bytes cannot hold.
    pub fn count(&mut self, size: usize, what: &str) -> Result<usize, String> {
        let n = self.u32(what)? as usize;
        match n.checked_mul(size.max(1)) {
            Some(b) if b <= self.remaining() => Ok(n),
            _ => Err(format!("{what} is {n}, more than the bytes left hold")),
        }
    }

    /// Checks that everything was read.
    ///
    /// # Errors
    /// Bytes left over.
    pub fn finish(&self) -> Result<(), String> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(format!("{n} unexpected bytes after the end")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_refuses_truncation_and_huge_counts() {
        let mut bytes = vec![7u8];
        bytes.extend_from_slice(&3u32.to_le_bytes());
        bytes.extend_from_slice(&1.5f32.to_le_bytes());
        bytes.extend_from_slice(&2.5f64.to_le_bytes());
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8("a"), Ok(7));
        assert_eq!(r.u32("b"), Ok(3));
        assert_eq!(r.f32("c"), Ok(1.5));
        assert_eq!(r.f64("d"), Ok(2.5));
        assert!(r.finish().is_ok());
        assert!(r.u8("e").unwrap_err().contains("truncated while reading e"));
        let huge = u32::MAX.to_le_bytes();
        let mut r = Reader::new(&huge);
        assert!(
            r.count(8, "nodes")
                .unwrap_err()
                .contains("more than the bytes left")
        );
        let r = Reader::new(&[1, 2]);
        assert!(r.finish().unwrap_err().contains("2 unexpected bytes"));
    }
}
