//! Model files: one model per file, a header the host reads and a payload
//! only the plugin understands.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! offset  size  field
//! 0       8     magic "TESSERA\0"
//! 8       2     format version (1)
//! 10      4     header length H
//! 14      4     CRC-32 of the header bytes
//! 18      H     header: UTF-8 JSON (see `Header`)
//! 18+H    P     payload; P and its CRC-32 are in the header
//! ```
//!
//! Writes go to a temporary file in the target folder, are synced, then
//! renamed over the target, so a crash never leaves a half-written model.

use std::{
    fs::{self, File},
    io::Write,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

/// The first bytes of every model file.
pub const MAGIC: &[u8; 8] = b"TESSERA\0";
/// The format version this host writes and reads.
pub const FORMAT_VERSION: u16 = 1;
const PREFIX_LEN: usize = 18;
// A header is a few KiB; refusing larger ones keeps a corrupt length field
// from turning into a giant allocation.
const MAX_HEADER_LEN: usize = 64 << 20;

/// What the host knows about a model, stored in front of the payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// The plugin that trained the model.
    pub plugin: String,
    /// That plugin's version.
    pub plugin_version: String,
    /// The learner component that trained the model (and loads it).
    pub component: String,
    /// The tessera-core ABI version of the plugin.
    pub abi_version: String,
    /// `classification` or `regression`.
    pub task: String,
    /// Class labels, in the order of the model's class indices (empty for
    /// regression).
    pub classes: Vec<String>,
    /// The target column's name (the first, for several regression
    /// targets).
    pub target: String,
    /// Every target column, for a multi-output regression model (empty
    /// for one target).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Feature column names, in the model's input order.
    pub features: Vec<String>,
    /// Payload length in bytes.
    pub payload_len: u64,
    /// CRC-32 of the payload.
    pub payload_crc32: u32,
    /// When and how the model was trained.
    pub training: serde_json::Value,
}

impl Header {
    /// Values per row of the model's answer: a probability per class for
    /// a classifier, a value per target otherwise.
    pub fn answer_width(&self) -> usize {
        if self.classes.is_empty() {
            self.target_names().len()
        } else {
            self.classes.len()
        }
    }

    /// The target columns: [`Header::targets`], or the one
    /// [`Header::target`].
    pub fn target_names(&self) -> Vec<&str> {
        if self.targets.is_empty() {
            vec![self.target.as_str()]
        } else {
            self.targets.iter().map(String::as_str).collect()
        }
    }
}

/// A model file in memory: header and payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Artifact {
    /// The header.
    pub header: Header,
    /// The plugin's bytes.
    pub payload: Vec<u8>,
}

/// Why a model file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The file cannot be opened or read.
    #[error("cannot read model file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file cannot be written.
    #[error("cannot write model file {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a tessera model.
    #[error("{path} is not a tessera model file (bad magic bytes)")]
    NotAModel {
        /// The file.
        path: PathBuf,
    },
    /// Written by a newer tessera.
    #[error("{path} has model format version {found}; this tessera reads version {FORMAT_VERSION}")]
    Version {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: u16,
    },
    /// Damaged: truncated, or its bytes changed.
    #[error("model file {path} is damaged: {what}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

impl Artifact {
    /// The whole file as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = serde_json::to_vec_pretty(&self.header).expect("a header always serializes");
        let mut out = Vec::with_capacity(PREFIX_LEN + header.len() + self.payload.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32(&header).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&self.payload);
        out
    }

    /// Parses a whole file; `path` is only used in messages.
    ///
    /// # Errors
    /// Bad magic, unknown version, truncation, checksum mismatch or a header
    /// that does not parse.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, ArtifactError> {
        let corrupt = |what: String| ArtifactError::Corrupt {
            path: path.to_path_buf(),
            what,
        };
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(ArtifactError::NotAModel {
                path: path.to_path_buf(),
            });
        }
        if bytes.len() < PREFIX_LEN {
            return Err(corrupt(format!(
                "truncated: {} bytes, shorter than the header",
                bytes.len()
            )));
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if version != FORMAT_VERSION {
            return Err(ArtifactError::Version {
                path: path.to_path_buf(),
                found: version,
            });
        }
        let header_len = u32::from_le_bytes(bytes[10..14].try_into().expect("4 bytes")) as usize;
        let header_crc = u32::from_le_bytes(bytes[14..18].try_into().expect("4 bytes"));
        if header_len > MAX_HEADER_LEN || bytes.len() < PREFIX_LEN + header_len {
            return Err(corrupt(format!(
                "truncated: header of {header_len} bytes announced, {} bytes present",
                bytes.len().saturating_sub(PREFIX_LEN)
            )));
        }
        let header_bytes = &bytes[PREFIX_LEN..PREFIX_LEN + header_len];
        if crc32(header_bytes) != header_crc {
            return Err(corrupt("header checksum mismatch".into()));
        }
        let header: Header = serde_json::from_slice(header_bytes)
            .map_err(|e| corrupt(format!("header does not parse: {e}")))?;
        let payload = &bytes[PREFIX_LEN + header_len..];
        if payload.len() as u64 != header.payload_len {
            return Err(corrupt(format!(
                "truncated or extended: payload of {} bytes announced, {} present",
                header.payload_len,
                payload.len()
            )));
        }
        if crc32(payload) != header.payload_crc32 {
            return Err(corrupt("payload checksum mismatch".into()));
        }
        Ok(Self {
            header,
            payload: payload.to_vec(),
        })
    }

    /// Reads a model file.
    ///
    /// # Errors
    /// See [`Artifact::from_bytes`], plus I/O errors.
    pub fn read(path: &Path) -> Result<Self, ArtifactError> {
        let bytes = fs::read(path).map_err(|source| ArtifactError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes, path)
    }

    /// Writes the model to `path` atomically: a temporary file in the same
    /// folder, synced, then renamed over `path`. Returns the file's size.
    ///
    /// # Errors
    /// I/O errors; `path` is left untouched when writing fails.
    pub fn write(&self, path: &Path) -> Result<u64, ArtifactError> {
        let bytes = self.to_bytes();
        write_atomic(path, &bytes).map_err(|source| ArtifactError::Write {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(bytes.len() as u64)
    }
}

/// Writes `bytes` to `path` through a synced temporary file and a rename.
///
/// # Errors
/// Any I/O error; the temporary file is removed and `path` left untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        // Make the rename itself durable; not every platform can open a
        // folder for syncing, and the data is already safe if it cannot.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// CRC-32 (IEEE 802.3, the one zip and PNG use).
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = Crc32::new();
    c.update(bytes);
    c.finish()
}

/// A [`crc32`] of bytes given piece by piece.
#[derive(Clone, Copy, Debug)]
pub struct Crc32(u32);

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32 {
    /// The checksum of no bytes yet.
    pub fn new() -> Self {
        Self(!0)
    }

    /// Adds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        let table = crc_table();
        for &b in bytes {
            self.0 = table[((self.0 ^ u32::from(b)) & 0xFF) as usize] ^ (self.0 >> 8);
        }
    }

    /// The checksum of every byte added.
    pub fn finish(self) -> u32 {
        !self.0
    }
}

fn crc_table() -> &'static [u32; 256] {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        t
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Artifact {
        let payload = b"plugin bytes".to_vec();
        Artifact {
            header: Header {
                plugin: "forest".into(),
                plugin_version: "0.1.0".into(),
                component: "random_forest".into(),
                abi_version: "0.1".into(),
                task: "classification".into(),
                classes: vec!["a".into(), "b".into()],
                target: "label".into(),
                targets: Vec::new(),
                features: vec!["x".into(), "y".into()],
                payload_len: payload.len() as u64,
                payload_crc32: crc32(&payload),
                training: serde_json::json!({"rows": 3}),
            },
            payload,
        }
    }

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        let mut c = Crc32::new();
        c.update(b"1234");
        c.update(b"");
        c.update(b"56789");
        assert_eq!(c.finish(), 0xCBF4_3926);
    }

    #[test]
    fn round_trip() {
        let a = sample();
        let b = Artifact::from_bytes(&a.to_bytes(), Path::new("m.tsr")).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn every_truncation_is_refused() {
        let bytes = sample().to_bytes();
        for n in 0..bytes.len() {
            assert!(
                Artifact::from_bytes(&bytes[..n], Path::new("m.tsr")).is_err(),
                "len {n}"
            );
        }
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let bytes = sample().to_bytes();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x20;
            assert!(
                Artifact::from_bytes(&b, Path::new("m.tsr")).is_err(),
                "byte {i}"
            );
        }
    }

    #[test]
    fn foreign_file_is_not_a_model() {
        let e = Artifact::from_bytes(b"PK\x03\x04 zip file", Path::new("x.zip")).unwrap_err();
        assert!(e.to_string().contains("not a tessera model file"), "{e}");
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = std::env::temp_dir().join(format!("tessera-artifact-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.tsr");
        sample().write(&path).unwrap();
        sample().write(&path).unwrap();
        assert_eq!(Artifact::read(&path).unwrap(), sample());
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failed_write_leaves_target_alone() {
        let e = sample()
            .write(Path::new("/nonexistent-dir/for/sure/m.tsr"))
            .unwrap_err();
        assert!(e.to_string().contains("cannot write model file"), "{e}");
    }
}
