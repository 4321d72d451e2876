//! The model's own byte format, versioned.
//!
//! The host stores these bytes in its model files and hands them back to
//! `load` unchanged, so the format is the plugin's business. Whatever the
//! bytes are (truncated, corrupted, from another plugin), reading them must
//! fail with `PluginError::corrupt` rather than panic or allocate wildly.
//!
//! Format 1, all numbers little-endian:
//!
//! | bytes | field                                                   |
//! |-------|---------------------------------------------------------|
//! | 8     | magic `TSRLINR\0`                                       |
//! | 2     | format version (`u16`)                                  |
//! | 1     | task kind (`u8`), then 4: class count (`u32`)           |
//! | 8+8   | `alpha`, `C` (`f64`)                                    |
//! | 1     | `fit_intercept` (0 or 1)                                |
//! | 8+8   | `max_iter` (`u64`), `tol` (`f64`)                       |
//! | 8+8   | features `p`, outputs `k` (`u64`)                       |
//! | 4+1   | iterations (`u32`), converged (0 or 1)                  |
//! | 8 p   | feature means (`f64`)                                   |
//! | 8 k p | coefficients, `k x p` row-major (`f64`)                 |
//! | 8 k   | intercepts (`f64`)                                      |
//! | 8     | FNV-1a 64 checksum of all the bytes before it (`u64`)   |

use tessera_core::{PluginError, Task};

use crate::{model::LinearModel, params::LinearParams};

/// The first bytes of every serialized `linear` model.
pub const MAGIC: &[u8; 8] = b"TSRLINR\0";
/// The format version this build writes, and the newest it reads.
pub const FORMAT_VERSION: u16 = 1;

/// Serializes `model`.
pub fn to_bytes(model: &LinearModel) -> Vec<u8> {
    let (p, k) = (model.means.len(), model.n_outputs());
    let mut out = Vec::with_capacity(80 + 8 * (p + k * p + k));
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.push(model.task.kind);
    out.extend_from_slice(&model.task.n_classes.to_le_bytes());
    let params = &model.params;
    out.extend_from_slice(&params.alpha.to_le_bytes());
    out.extend_from_slice(&params.c.to_le_bytes());
    out.push(u8::from(params.fit_intercept));
    out.extend_from_slice(&(params.max_iter as u64).to_le_bytes());
    out.extend_from_slice(&params.tol.to_le_bytes());
    out.extend_from_slice(&(p as u64).to_le_bytes());
    out.extend_from_slice(&(k as u64).to_le_bytes());
    out.extend_from_slice(&model.iterations.to_le_bytes());
    out.push(u8::from(model.converged));
    for v in model
        .means
        .iter()
        .chain(&model.coef)
        .chain(&model.intercept)
    {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let checksum = fnv1a(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    out
}

/// Reads a model written by [`to_bytes`].
///
/// # Errors
/// [`PluginError::corrupt`] for anything that is not a whole, intact model
/// of a format this build reads.
pub fn from_bytes(bytes: &[u8]) -> Result<LinearModel, PluginError> {
    if !bytes.starts_with(MAGIC) {
        return Err(corrupt("it does not start like one"));
    }
    if bytes.len() < MAGIC.len() + 2 + 8 {
        return Err(corrupt("it is truncated"));
    }
    let mut r = Reader {
        bytes: &bytes[MAGIC.len()..],
    };
    let version = r.u16()?;
    if version == 0 || version > FORMAT_VERSION {
        return Err(corrupt(&format!(
            "its format {version} is not one this plugin reads (1 to {FORMAT_VERSION}); \
             it may come from a newer tessera-linear"
        )));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    if fnv1a(body) != u64::from_le_bytes(sum.try_into().expect("8 bytes")) {
        return Err(corrupt("it is truncated or damaged (checksum mismatch)"));
    }
    r.bytes = &r.bytes[..r.bytes.len() - 8];

    let task = match (r.u8()?, r.u32()?) {
        (Task::REGRESSION, 1) => Task::regression(),
        (Task::CLASSIFICATION, n) if n >= 1 => Task::classification(n),
        _ => return Err(corrupt("its task is invalid")),
    };
    let params = LinearParams {
        alpha: r.f64()?,
        c: r.f64()?,
        fit_intercept: r.flag()?,
        max_iter: usize::try_from(r.u64()?).map_err(|_| corrupt("max_iter is out of range"))?,
        tol: r.f64()?,
    };
    let p = r.count()?;
    let k = r.count()?;
    let iterations = r.u32()?;
    let converged = r.flag()?;
    let expected_k = if task.is_classification() {
        task.n_classes as usize
    } else {
        1
    };
    if p == 0 || k != expected_k {
        return Err(corrupt("its shape does not match its task"));
    }
    let values = p
        .checked_mul(k)
        .and_then(|kp| kp.checked_add(p + k))
        .ok_or_else(|| corrupt("its shape is out of range"))?;
    if r.bytes.len() != values.saturating_mul(8) {
        return Err(corrupt("its length does not match its shape"));
    }
    let means = r.f64s(p)?;
    let coef = r.f64s(k * p)?;
    let intercept = r.f64s(k)?;
    if !means
        .iter()
        .chain(&coef)
        .chain(&intercept)
        .all(|v| v.is_finite())
    {
        return Err(corrupt("it holds non-finite numbers"));
    }
    Ok(LinearModel {
        task,
        params,
        means,
        coef,
        intercept,
        iterations,
        converged,
    })
}

fn corrupt(why: &str) -> PluginError {
    PluginError::corrupt(format!("not a readable linear model: {why}"))
}

/// FNV-1a, 64 bits: a checksum against damage, not against malice.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Reads little-endian values from the front of a byte slice.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], PluginError> {
        if self.bytes.len() < N {
            return Err(corrupt("it is truncated"));
        }
        let (head, rest) = self.bytes.split_at(N);
        self.bytes = rest;
        Ok(head.try_into().expect("N bytes"))
    }

    fn u8(&mut self) -> Result<u8, PluginError> {
        Ok(self.take::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, PluginError> {
        Ok(u16::from_le_bytes(self.take()?))
    }

    fn u32(&mut self) -> Result<u32, PluginError> {
        Ok(u32::from_le_bytes(self.take()?))
    }

    fn u64(&mut self) -> Result<u64, PluginError> {
        Ok(u64::from_le_bytes(self.take()?))
    }

    fn f64(&mut self) -> Result<f64, PluginError> {
        Ok(f64::from_le_bytes(self.take()?))
    }

    fn flag(&mut self) -> Result<bool, PluginError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(corrupt("a flag is neither 0 nor 1")),
        }
    }

    fn count(&mut self) -> Result<usize, PluginError> {
        usize::try_from(self.u64()?).map_err(|_| corrupt("a size is out of range"))
    }

    /// `n` values; the caller has checked that they are there.
    fn f64s(&mut self, n: usize) -> Result<Vec<f64>, PluginError> {
        (0..n).map(|_| self.f64()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::ErrorKind;

    fn model() -> LinearModel {
        LinearModel {
            task: Task::classification(2),
            params: LinearParams {
                alpha: 0.5,
                c: 2.0,
                fit_intercept: false,
                max_iter: 7,
                tol: 1e-6,
            },
            means: vec![0.25, -3.0, 1e9],
            coef: vec![1.0, 2.0, 3.0, -4.0, -5.5, 6.0],
            intercept: vec![0.125, -0.125],
            iterations: 42,
            converged: false,
        }
    }

    #[test]
    fn round_trip_is_exact() {
        let m = model();
        let bytes = to_bytes(&m);
        assert_eq!(from_bytes(&bytes).unwrap(), m);
    }

    #[test]
    fn every_truncation_is_refused() {
        let bytes = to_bytes(&model());
        for cut in 0..bytes.len() {
            let e = from_bytes(&bytes[..cut]).unwrap_err();
            assert_eq!(e.kind, ErrorKind::CORRUPT_MODEL, "cut at {cut}");
        }
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let bytes = to_bytes(&model());
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x5a;
            let e = from_bytes(&damaged).unwrap_err();
            assert_eq!(e.kind, ErrorKind::CORRUPT_MODEL, "byte {i}");
        }
    }

    #[test]
    fn garbage_is_refused() {
        let mut bytes = to_bytes(&model());
        bytes.push(0);
        assert!(from_bytes(&bytes).is_err());
        assert!(from_bytes(b"").is_err());
        assert!(from_bytes(b"TSRLINR\0").is_err());
        assert!(from_bytes(&[0xff; 1000]).is_err());

        // A consistent checksum over an impossible shape is still refused,
        // without trying to allocate for it.
        let mut body = to_bytes(&model());
        body.truncate(body.len() - 8);
        body[48..56].copy_from_slice(&u64::MAX.to_le_bytes());
        let sum = fnv1a(&body);
        body.extend_from_slice(&sum.to_le_bytes());
        let e = from_bytes(&body).unwrap_err();
        assert!(e.message.contains("shape"), "{e}");
    }

    #[test]
    fn newer_formats_are_refused_by_name() {
        let mut body = to_bytes(&model());
        body.truncate(body.len() - 8);
        body[8..10].copy_from_slice(&2u16.to_le_bytes());
        let sum = fnv1a(&body);
        body.extend_from_slice(&sum.to_le_bytes());
        let e = from_bytes(&body).unwrap_err();
        assert!(e.message.contains("format 2"), "{e}");
    }
}
