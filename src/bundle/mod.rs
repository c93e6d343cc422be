//! The versioned model bundle: `DIR/model.bin` (binary, checksummed) and `DIR/model_card.json`.
//!
//! `model.bin` layout: 8 magic bytes `CHURNMDL`, format version (u32 LE), payload length (u64 LE),
//! sha256 of the payload (32 bytes), then the bincode-2 payload. Everything in the payload is
//! deterministic (no timestamps, no hash maps), so the same data + config + seed gives the same
//! bytes; timestamps live only in the card.

use crate::features::Encoder;
use crate::model::Model;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub mod card;
mod legacy;
pub mod profile;
pub mod registry;
pub mod uplift;
mod validate;
pub use validate::validate;

/// Magic bytes at the start of every bundle.
pub const MAGIC: &[u8; 8] = b"CHURNMDL";
/// Bundle format this build writes (6: boosted trees in the model; 7: `[learning] explore` in
/// the playbook).
pub const FORMAT_VERSION: u32 = 7;
/// Oldest bundle format this build still reads (see `legacy`).
pub const OLDEST_FORMAT: u32 = 5;
/// Largest payload we decode (guards against hostile or corrupted files).
pub const MAX_PAYLOAD: usize = 256 * 1024 * 1024;
const HEADER: usize = 8 + 4 + 8 + 32;

/// File name of the binary bundle inside a model directory.
pub const MODEL_FILE: &str = "model.bin";
/// File name of the model card.
pub const CARD_FILE: &str = "model_card.json";
/// File name of the data-quality report.
pub const QUALITY_FILE: &str = "data_quality.json";
/// File name of the HTML report inside a model's (version) directory.
pub const REPORT_FILE: &str = "report.html";

/// Errors of the bundle layer; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// Wrong magic bytes.
    #[error("{path}: not a churn model bundle (wrong magic bytes)")]
    NotABundle {
        /// File.
        path: PathBuf,
    },
    /// Unsupported format version.
    #[error("{path}: bundle format version {found} is not supported (this build reads versions {oldest} to {supported}); retrain the model with this version")]
    Version {
        /// File.
        path: PathBuf,
        /// Oldest version we read.
        oldest: u32,
        /// Version in the file.
        found: u32,
        /// Version we read.
        supported: u32,
    },
    /// The file is shorter than its header says.
    #[error("{path}: bundle is truncated ({found} of {expected} bytes)")]
    Truncated {
        /// File.
        path: PathBuf,
        /// Bytes the header promises.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// Payload checksum mismatch.
    #[error("{path}: bundle is corrupted (checksum mismatch)")]
    Checksum {
        /// File.
        path: PathBuf,
    },
    /// Payload too large.
    #[error("{path}: bundle payload of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// File.
        path: PathBuf,
        /// Size.
        size: u64,
        /// Limit.
        limit: usize,
    },
    /// The payload does not decode.
    #[error("{path}: bundle payload does not decode: {message}")]
    Decode {
        /// File.
        path: PathBuf,
        /// Decoder message.
        message: String,
    },
    /// The payload decodes but is not a well-formed model (see [`validate`]).
    #[error("{path}: bundle is not a valid model: {message}")]
    Invalid {
        /// File.
        path: PathBuf,
        /// The first problem found.
        message: String,
    },
    /// Encoding failed.
    #[error("cannot encode bundle: {0}")]
    Encode(String),
    /// The model directory's registry does not name a bundle.
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
}

impl BundleError {
    /// Process exit code when a bundle is read: a missing or damaged bundle is bad input (2).
    /// (Training maps a failed bundle *write* to 1 itself.)
    pub fn exit_code(&self) -> i32 {
        2
    }
}

/// Everything needed to score: stored in `model.bin`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    /// Model name.
    pub name: String,
    /// Version of the software that trained it.
    pub software_version: String,
    /// Customer table or transaction log (stored as its text).
    pub mode: crate::ingest::DataMode,
    /// Id column of the input layout, if any.
    pub id_column: Option<String>,
    /// Label column of the training data (ignored when scoring).
    pub label_column: String,
    /// Label value meaning churn.
    pub positive_value: String,
    /// Feature encoder.
    pub encoder: Encoder,
    /// Tree, calibrator, threshold.
    pub model: Model,
    /// Training rows.
    pub training_rows: usize,
    /// Churn rate of the training rows.
    pub training_churn_rate: f64,
    /// Segments, RFM classes and lifecycle stages (absent when disabled).
    pub segments: Option<crate::segment::SegmentModel>,
    /// The retention playbook used at training (served behaviour is versioned with the model).
    pub playbook: Option<crate::playbook::Playbook>,
    /// How features were built from a transaction log (transaction models; the file path is not
    /// kept), so scoring can build them from a log the same way.
    pub transactions: Option<crate::ingest::TransactionSpec>,
    /// The training data profile drift is measured against.
    pub profile: Option<profile::Profile>,
}

/// Serialize a bundle to its file bytes.
pub fn to_bytes(bundle: &Bundle) -> Result<Vec<u8>, BundleError> {
    let payload = bincode::serde::encode_to_vec(bundle, bincode::config::standard())
        .map_err(|e| BundleError::Encode(e.to_string()))?;
    Ok(frame(MAGIC, FORMAT_VERSION, &payload))
}

/// A file's bytes: `magic`, format `version`, payload length, the payload's sha256, payload.
pub(crate) fn frame(magic: &[u8; 8], version: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(payload));
    out.extend_from_slice(payload);
    out
}

/// Parse bundle bytes; `path` is used in messages.
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Bundle, BundleError> {
    let (version, payload) = unframe(bytes, MAGIC, OLDEST_FORMAT..=FORMAT_VERSION, path)?;
    decode_version(payload, version, path)
}

/// The format version and checked payload of framed bytes (see [`frame`]).
pub(crate) fn unframe<'a>(
    bytes: &'a [u8],
    magic: &[u8; 8],
    versions: std::ops::RangeInclusive<u32>,
    path: &Path,
) -> Result<(u32, &'a [u8]), BundleError> {
    let p = || path.to_path_buf();
    if bytes.len() < 8 || &bytes[..8] != magic {
        return Err(BundleError::NotABundle { path: p() });
    }
    if bytes.len() < HEADER {
        return Err(BundleError::Truncated {
            path: p(),
            expected: HEADER as u64,
            found: bytes.len() as u64,
        });
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if !versions.contains(&version) {
        return Err(BundleError::Version {
            path: p(),
            found: version,
            oldest: *versions.start(),
            supported: *versions.end(),
        });
    }
    let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    if len > MAX_PAYLOAD as u64 {
        return Err(BundleError::TooLarge {
            path: p(),
            size: len,
            limit: MAX_PAYLOAD,
        });
    }
    let payload = &bytes[HEADER..];
    if (payload.len() as u64) < len {
        return Err(BundleError::Truncated {
            path: p(),
            expected: HEADER as u64 + len,
            found: bytes.len() as u64,
        });
    }
    let payload = &payload[..len as usize];
    if Sha256::digest(payload).as_slice() != &bytes[20..52]
        || bytes.len() as u64 != HEADER as u64 + len
    {
        return Err(BundleError::Checksum { path: p() });
    }
    Ok((version, payload))
}

/// Decode and validate a bundle payload of the current format (the bytes after the header,
/// checksum already checked). Public so that the fuzzer can reach the decoder and validator
/// past the checksum.
pub fn decode_payload(payload: &[u8], path: &Path) -> Result<Bundle, BundleError> {
    decode_version(payload, FORMAT_VERSION, path)
}

/// Decode a payload of format `version` into the current [`Bundle`] and validate it.
fn decode_version(payload: &[u8], version: u32, path: &Path) -> Result<Bundle, BundleError> {
    let bundle: Bundle = if version == 5 {
        let b: legacy::BundleV5 = decode_exact(payload, path)?;
        Bundle::try_from(b).map_err(|message| BundleError::Decode {
            path: path.to_path_buf(),
            message,
        })?
    } else if version == 6 {
        Bundle::from(decode_exact::<legacy::BundleV6>(payload, path)?)
    } else {
        decode_exact(payload, path)?
    };
    validate(&bundle).map_err(|message| BundleError::Invalid {
        path: path.to_path_buf(),
        message,
    })?;
    Ok(bundle)
}

/// Decode a whole payload (checksum already checked) as `T`: at most [`MAX_PAYLOAD`] bytes,
/// and every byte used.
pub(crate) fn decode_exact<T: serde::de::DeserializeOwned>(
    payload: &[u8],
    path: &Path,
) -> Result<T, BundleError> {
    let p = || path.to_path_buf();
    if payload.len() > MAX_PAYLOAD {
        return Err(BundleError::TooLarge {
            path: p(),
            size: payload.len() as u64,
            limit: MAX_PAYLOAD,
        });
    }
    let cfg = bincode::config::standard().with_limit::<MAX_PAYLOAD>();
    let (value, used): (T, usize) =
        bincode::serde::decode_from_slice(payload, cfg).map_err(|e| BundleError::Decode {
            path: p(),
            message: e.to_string(),
        })?;
    if used != payload.len() {
        return Err(BundleError::Decode {
            path: p(),
            message: format!("{} trailing bytes", payload.len() - used),
        });
    }
    Ok(value)
}

/// Short content version of a bundle: the first 12 hex digits of the payload's sha256.
pub fn version_of(bytes: &[u8]) -> String {
    if bytes.len() >= 52 {
        crate::util::hex(&bytes[20..26])
    } else {
        String::new()
    }
}

/// A bundle loaded from disk, with its content version.
#[derive(Debug, Clone)]
pub struct LoadedBundle {
    /// The bundle.
    pub bundle: Bundle,
    /// Content version (see [`version_of`]).
    pub version: String,
    /// Directory it came from.
    pub dir: PathBuf,
}

/// Load a bundle: `DIR/model.bin` (or a path to the file itself), where a model directory
/// with a registry means its champion, and `DIR@ALIAS` or `DIR@VERSION` another version (see
/// [`registry::resolve_path`]).
pub fn load(path: &Path) -> Result<LoadedBundle, BundleError> {
    let path = &registry::resolve_path(path)?;
    let file = if path.is_dir() {
        path.join(MODEL_FILE)
    } else {
        path.to_path_buf()
    };
    let bytes = read_limited(&file)?;
    let bundle = from_bytes(&bytes, &file)?;
    Ok(LoadedBundle {
        bundle,
        version: version_of(&bytes),
        dir: file.parent().map(Path::to_path_buf).unwrap_or_default(),
    })
}

/// Read a bundle file, refusing one larger than header + [`MAX_PAYLOAD`] before reading it all.
pub(crate) fn read_limited(file: &Path) -> Result<Vec<u8>, BundleError> {
    use std::io::Read;
    let io = |source| BundleError::Io {
        path: file.to_path_buf(),
        source,
    };
    // a FIFO or device named model.bin would block the open (and start-up, or a reload) for ever
    if !std::fs::metadata(file).map_err(io)?.is_file() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    let f = std::fs::File::open(file).map_err(io)?;
    let limit = (HEADER + MAX_PAYLOAD) as u64;
    let size = f.metadata().map_err(io)?.len();
    if size > limit {
        return Err(BundleError::TooLarge {
            path: file.to_path_buf(),
            size,
            limit: MAX_PAYLOAD,
        });
    }
    // the file may grow after the size check: never read past the limit
    let mut bytes = Vec::with_capacity(size as usize);
    f.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(BundleError::TooLarge {
            path: file.to_path_buf(),
            size: bytes.len() as u64,
            limit: MAX_PAYLOAD,
        });
    }
    Ok(bytes)
}

/// Write `DIR/model.bin` atomically; returns the content version.
pub fn save(dir: &Path, bundle: &Bundle) -> Result<String, BundleError> {
    let bytes = to_bytes(bundle)?;
    write(dir, &bytes)?;
    Ok(version_of(&bytes))
}

/// Write encoded bundle bytes to `DIR/model.bin` atomically.
pub fn write(dir: &Path, bytes: &[u8]) -> Result<(), BundleError> {
    let file = dir.join(MODEL_FILE);
    crate::util::write_atomic(&file, bytes).map_err(|source| BundleError::Io { path: file, source })
}
