//! Model bytes: little-endian writing helpers and a reader that never
//! trusts what it reads. Plugins' own model formats, meta-models' members
//! and the tree-ensemble byte form are all read with [`ByteReader`].

use crate::error::PluginError;

/// Appends `v` as a little-endian `u32`.
///
/// # Errors
/// `v` does not fit (`what` names it).
pub fn put_u32(out: &mut Vec<u8>, v: usize, owner: &str, what: &str) -> Result<(), PluginError> {
    let v = u32::try_from(v)
        .map_err(|_| PluginError::internal(format!("{owner}: {what} {v} is too large to save")))?;
    out.extend_from_slice(&v.to_le_bytes());
    Ok(())
}

/// Reads a model's bytes without trusting them: every read checks the
/// bytes actually left, so damage gives a [`PluginError::corrupt`] naming
/// what was being read, never a panic or a huge allocation.
pub struct ByteReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    owner: &'a str,
}

impl<'a> ByteReader<'a> {
    /// A reader of `bytes`, a model of meta-learner `owner`.
    pub fn new(bytes: &'a [u8], owner: &'a str) -> Self {
        Self {
            bytes,
            pos: 0,
            owner,
        }
    }

    /// A corrupt-model error: `<owner> model: <why>`.
    pub fn corrupt(&self, why: impl std::fmt::Display) -> PluginError {
        PluginError::corrupt(format!("{} model: {why}", self.owner))
    }

    /// Bytes not read yet.
    pub fn left(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// The next `n` bytes.
    ///
    /// # Errors
    /// Fewer are left.
    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], PluginError> {
        if n > self.left() {
            return Err(self.corrupt(format!("truncated while reading {what}")));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], PluginError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    /// One byte.
    ///
    /// # Errors
    /// None left.
    pub fn u8(&mut self, what: &str) -> Result<u8, PluginError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// A little-endian `u32`.
    ///
    /// # Errors
    /// Truncated bytes.
    pub fn u32(&mut self, what: &str) -> Result<u32, PluginError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// A little-endian `u64`.
    ///
    /// # Errors
    /// Truncated bytes.
    pub fn u64(&mut self, what: &str) -> Result<u64, PluginError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A little-endian `f64`.
    ///
    /// # Errors
    /// Truncated bytes.
    pub fn f64(&mut self, what: &str) -> Result<f64, PluginError> {
        Ok(f64::from_le_bytes(self.array(what)?))
    }

    /// A little-endian `f32`.
    ///
    /// # Errors
    /// Truncated bytes.
    pub fn f32(&mut self, what: &str) -> Result<f32, PluginError> {
        Ok(f32::from_le_bytes(self.array(what)?))
    }

    /// A `u32` count of items of `size` bytes each, refused unless that
    /// many bytes are still there (so nothing huge is allocated for it).
    ///
    /// # Errors
    /// Truncated bytes, or a count the bytes left cannot hold.
    pub fn count(&mut self, size: usize, what: &str) -> Result<usize, PluginError> {
        let n = self.u32(what)? as usize;
        match n.checked_mul(size.max(1)) {
            Some(b) if b <= self.left() => Ok(n),
            _ => Err(self.corrupt(format!("{what} is {n}, more than the bytes left hold"))),
        }
    }

    /// A length-prefixed (`u32`) UTF-8 string.
    ///
    /// # Errors
    /// Truncated bytes or invalid UTF-8.
    pub fn text(&mut self, what: &str) -> Result<&'a str, PluginError> {
        let n = self.u32(what)? as usize;
        let raw = self.take(n, what)?;
        std::str::from_utf8(raw).map_err(|_| self.corrupt(format!("{what} is not UTF-8")))
    }

    /// A length-prefixed (`u64`) byte string.
    ///
    /// # Errors
    /// Truncated bytes.
    pub fn blob(&mut self, what: &str) -> Result<&'a [u8], PluginError> {
        let n = self.u64(what)?;
        let n = usize::try_from(n).map_err(|_| self.corrupt(format!("{what} is too long")))?;
        self.take(n, what)
    }

    /// A member as [`write_member`](crate::plugin::members::write_member) wrote it: the component that trained
    /// it and its bytes.
    ///
    /// # Errors
    /// Truncated bytes or no component name.
    pub fn member(&mut self, what: &str) -> Result<(&'a str, &'a [u8]), PluginError> {
        let component = self.text(what)?;
        if component.is_empty() {
            return Err(self.corrupt(format!("{what} has no component name")));
        }
        Ok((component, self.blob(what)?))
    }

    /// Checks that every byte was read.
    ///
    /// # Errors
    /// Bytes are left over.
    pub fn finish(&self) -> Result<(), PluginError> {
        if self.left() != 0 {
            return Err(self.corrupt(format!("{} unexpected bytes at the end", self.left())));
        }
        Ok(())
    }
}
