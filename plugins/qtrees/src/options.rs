//! What [`QuantizedTrees::quantize`](crate::QuantizedTrees::quantize) is
//! asked for: the width of a threshold's bin index and the form of the
//! leaf values.

use tessera_core::PluginError;

/// How leaf values are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LeafFormat {
    /// As they are (4 bytes each, exact).
    F32,
    /// IEEE half precision, rounded to nearest (2 bytes; relative error at
    /// most 2^-11 within the half range, values past 65504 refused).
    F16,
    /// Symmetric 16-bit integers times a scale per tree and output
    /// (2 bytes; error at most `max |value| / 65534` of that tree and
    /// output).
    I16,
    /// Symmetric 8-bit integers times a scale per tree and output (1 byte;
    /// error at most `max |value| / 254`).
    I8,
}

impl LeafFormat {
    /// Every format, in the order of their codes in the byte form.
    pub(crate) const ALL: [LeafFormat; 4] = [Self::F32, Self::F16, Self::I16, Self::I8];

    /// The format named `s`: `f32`, `f16`, `i16` or `i8`.
    ///
    /// # Errors
    /// Any other name.
    pub fn parse(s: &str) -> Result<Self, PluginError> {
        Self::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                PluginError::params(format!("`leaves` must be f32, f16, i16 or i8, got `{s}`"))
            })
    }

    /// The format's name, as [`LeafFormat::parse`] reads it.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::I16 => "i16",
            Self::I8 => "i8",
        }
    }

    /// Bytes of one stored value.
    pub(crate) fn size(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 | Self::I16 => 2,
            Self::I8 => 1,
        }
    }

    /// The largest integer of a scaled format (`None` for the floats).
    pub(crate) fn int_max(self) -> Option<f32> {
        match self {
            Self::I16 => Some(f32::from(i16::MAX)),
            Self::I8 => Some(f32::from(i8::MAX)),
            Self::F32 | Self::F16 => None,
        }
    }

    /// The format's code in the byte form.
    pub(crate) fn code(self) -> u8 {
        self as u8
    }

    /// The format of code `c`.
    pub(crate) fn from_code(c: u8) -> Option<Self> {
        Self::ALL.get(usize::from(c)).copied()
    }
}

/// How to quantize an ensemble.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Bits of a threshold's bin index: 8 (at most 255 thresholds per
    /// feature kept exactly) or 16 (at most 65535).
    pub bits: u32,
    /// How leaf values are stored.
    pub leaves: LeafFormat,
}

impl Options {
    /// Refuses bit widths other than 8 and 16.
    ///
    /// # Errors
    /// `bits` is not 8 or 16.
    pub(crate) fn check(&self) -> Result<(), PluginError> {
        if self.bits != 8 && self.bits != 16 {
            return Err(PluginError::input(format!(
                "`bits` must be 8 or 16, got {}",
                self.bits
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for f in LeafFormat::ALL {
            assert_eq!(LeafFormat::parse(f.name()).unwrap(), f);
            assert_eq!(LeafFormat::from_code(f.code()), Some(f));
        }
        let e = LeafFormat::parse("f8").unwrap_err();
        assert!(e.message.contains("`leaves`") && e.message.contains("f8"));
        assert_eq!(LeafFormat::from_code(4), None);
    }

    #[test]
    fn only_8_and_16_bits() {
        for bits in [8, 16] {
            let o = Options {
                bits,
                leaves: LeafFormat::F16,
            };
            assert!(o.check().is_ok());
        }
        let e = Options {
            bits: 3,
            leaves: LeafFormat::F16,
        }
        .check()
        .unwrap_err();
        assert_eq!(e.message.as_str(), "`bits` must be 8 or 16, got 3");
        assert_eq!(e.kind, tessera_core::ErrorKind::INVALID_INPUT);
    }
}
