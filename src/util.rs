//! Small shared helpers: atomic writes, hashing, a seeded RNG and stratified splits.

use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

/// Write `bytes` to `path` atomically: a new temporary file in the same directory, fsync, rename,
/// then fsync the directory so the rename itself survives a crash. A reader never sees a
/// half-written file, and a failed write leaves the old file in place.
///
/// The temporary name carries the writer's pid and a random part and is created exclusively
/// (`O_EXCL`), so a symlink or file planted under a guessable name is never written through.
/// Temporary files of writers that died (`kill -9`) are removed by the next write to the same
/// file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let file_name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let prefix = format!(".{file_name}.tmp-");
    remove_orphans(dir, &prefix);
    let random = uuid::Uuid::new_v4().simple().to_string();
    let tmp = dir.join(format!("{prefix}{}-{}", std::process::id(), &random[..16]));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// fsync a directory (makes a rename in it durable); a no-op where directories cannot be opened.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Remove `PREFIX{pid}-…` temporary files in `dir` whose writing process no longer exists.
fn remove_orphans(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
        // only where /proc tells which processes live; a symlink is removed, never followed
        if Path::new("/proc/self").exists() && !alive {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// A number fixed by `text` alone (the first 8 bytes of its sha256, little-endian): the same in
/// every process, platform and release — control groups, lock keys.
pub fn stable_u64(text: &str) -> u64 {
    let h = Sha256::digest(text.as_bytes());
    u64::from_le_bytes(h[..8].try_into().expect("8 bytes"))
}

/// sha256 of a file's contents, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(hex(&h.finalize()))
}

/// Lower-case hex of a byte slice.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SplitMix64: a tiny, fully specified PRNG, so splits stay identical across crate versions.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform integer in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// Uniform float in `[0, 1)` (53 random bits).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// Assign each row to one of `k` folds, stratified on `y`, seeded. Returns the fold of every row.
pub fn stratified_folds(y: &[bool], k: usize, seed: u64) -> Vec<usize> {
    let mut rng = Rng::new(seed);
    let mut fold = vec![0usize; y.len()];
    for class in [false, true] {
        let mut idx: Vec<usize> = (0..y.len()).filter(|&i| y[i] == class).collect();
        rng.shuffle(&mut idx);
        for (pos, &i) in idx.iter().enumerate() {
            fold[i] = pos % k;
        }
    }
    fold
}

/// Stratified split: returns (train rows, holdout rows), both sorted ascending.
pub fn stratified_split(y: &[bool], holdout: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = Rng::new(seed ^ 0x00A1_1CE5);
    let mut train = Vec::new();
    let mut test = Vec::new();
    for class in [false, true] {
        let mut idx: Vec<usize> = (0..y.len()).filter(|&i| y[i] == class).collect();
        rng.shuffle(&mut idx);
        let n_test = (idx.len() as f64 * holdout).round() as usize;
        test.extend_from_slice(&idx[..n_test]);
        train.extend_from_slice(&idx[n_test..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

/// A file beside `output` named after its stem: `out/scores.parquet` + `rejects.csv` →
/// `out/scores.rejects.csv`.
pub fn sibling_path(output: &Path, suffix: &str) -> std::path::PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name
        .split('.')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("output");
    output.with_file_name(format!("{stem}.{suffix}"))
}

/// Fast, deterministic hashing for in-memory keys such as customer ids: rustc's FxHash from
/// the `rustc-hash` crate (version 2 mixes every input bit into the bits hashbrown picks buckets
/// from, so ids that differ only in their last characters spread evenly).
pub use rustc_hash::{FxBuildHasher as FxBuild, FxHashMap, FxHashSet, FxHasher};

/// Format a float for humans: integers without a fraction, others with up to 4 significant decimals.
pub fn fmt_num(x: f64) -> String {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        let s = format!("{x:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    }
}

/// A money amount rounded to cents for display (JSON and CSV); decisions use the exact value.
#[inline]
pub fn cents(x: f64) -> f64 {
    if x.is_finite() {
        let r = (x * 100.0).round() / 100.0;
        r + 0.0 // no "-0"
    } else {
        x
    }
}

/// Serialise a money amount rounded to cents (`#[serde(serialize_with = …)]`).
pub fn serialize_cents<S: serde::Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(cents(*x))
}

/// A byte size for messages: whole MiB when it is one, else bytes.
pub fn fmt_size(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

/// The most characters of a value an error message shows ([`excerpt`]).
pub const EXCERPT_CHARS: usize = 80;

/// A value as an error message shows it: control characters escaped (`\n`, `\u{1b}`: one line,
/// no terminal escapes) and at most [`EXCERPT_CHARS`] characters, cut on a character boundary
/// with `…` as the last one when longer — a 20 MB field is not echoed whole. Reads only as far
/// into `s` as it shows.
pub fn excerpt(s: &str) -> String {
    let mut out = String::new();
    let mut shown = 0; // characters in `out`
    let mut cut = None; // where `out` ends when the ellipsis must replace the rest
    for c in s.chars() {
        let escape = c.is_control().then(|| c.escape_default());
        let width = escape.clone().map_or(1, Iterator::count);
        if cut.is_none() && shown + width > EXCERPT_CHARS - 1 {
            cut = Some(out.len());
        }
        if shown + width > EXCERPT_CHARS {
            out.truncate(cut.unwrap_or(0));
            out.push('…');
            return out;
        }
        match escape {
            Some(e) => out.extend(e),
            None => out.push(c),
        }
        shown += width;
    }
    out
}

/// A unit enum for a domain value that used to travel as text (risk band, RFM class, data
/// mode, …): `as_str`, `Display`, `ALL` / `NAMES` in declaration order, `from_name`, and serde
/// as the variant's text — so JSON, TOML *and* bincode bundles store exactly the string the
/// field held before (bincode would otherwise write a variant index). Variants are declared
/// `Name = "text"`; their order is their discriminant, so `v as usize` indexes `ALL`.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $Name:ident {
            $( $(#[$vmeta:meta])* $Variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $Name {
            $( $(#[$vmeta])* $Variant, )+
        }

        impl $Name {
            /// Every value, in declaration order.
            pub const ALL: [$Name; [$($text),+].len()] = [$($Name::$Variant),+];
            /// Every value's text, in declaration order.
            pub const NAMES: [&'static str; [$($text),+].len()] = [$($text),+];

            /// The value's text.
            #[inline]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($Name::$Variant => $text,)+
                }
            }

            /// The value whose text is `s`, if any.
            pub fn from_name(s: &str) -> Option<$Name> {
                match s {
                    $($text => Some($Name::$Variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $Name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                // `pad`, not `write_str`: a width in the format string ({:<9}) applies
                f.pad(self.as_str())
            }
        }

        impl serde::Serialize for $Name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $Name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Text;
                impl serde::de::Visitor<'_> for Text {
                    type Value = $Name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        write!(f, "one of: {}", $Name::NAMES.join(", "))
                    }
                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<$Name, E> {
                        $Name::from_name(s).ok_or_else(|| E::unknown_variant(s, &$Name::NAMES))
                    }
                }
                d.deserialize_str(Text)
            }
        }
    };
}
pub(crate) use text_enum;

/// z of a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_985;

/// Standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Standard normal distribution function Φ(z).
#[inline]
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_one_line_and_cut_on_a_char_boundary() {
        assert_eq!(excerpt("eleven"), "eleven");
        assert_eq!(excerpt("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
        let exact = "x".repeat(EXCERPT_CHARS);
        assert_eq!(excerpt(&exact), exact);
        let long = "é".repeat(1_000_000);
        let e = excerpt(&long);
        assert_eq!(e.chars().count(), EXCERPT_CHARS);
        assert!(e.ends_with("é…"), "{e}");
        // an escape is never cut in half: it is shown whole or replaced by the ellipsis
        let newlines = "\n".repeat(100);
        let e = excerpt(&newlines);
        assert_eq!(e, format!("{}…", "\\n".repeat(39)));
    }

    #[test]
    #[cfg(unix)]
    fn atomic_writes_never_follow_a_planted_temp_name() {
        // the temporary name was `.NAME.tmp-PID`: a symlink planted there was written through
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let out = dir.path().join("out.json");
        let planted = dir
            .path()
            .join(format!(".out.json.tmp-{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        write_atomic(&out, b"new").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(std::fs::read(&out).unwrap(), b"new");
        assert!(!std::fs::symlink_metadata(&out).unwrap().is_symlink());
    }

    #[test]
    fn atomic_writes_remove_temp_files_of_dead_writers() {
        // `kill -9` mid-write left `.NAME.tmp-PID` files behind for ever
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("model.bin");
        // beyond the kernel's pid_max: no such process
        let dead = dir.path().join(".model.bin.tmp-99999999-0123456789abcdef");
        let old_style = dir.path().join(".model.bin.tmp-99999998");
        let live = dir
            .path()
            .join(format!(".model.bin.tmp-{}-x", std::process::id()));
        let other = dir.path().join(".other.tmp-99999999-x");
        for f in [&dead, &old_style, &live, &other] {
            std::fs::write(f, b"partial").unwrap();
        }
        write_atomic(&out, b"bundle").unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"bundle");
        if Path::new("/proc/self").exists() {
            assert!(!dead.exists() && !old_style.exists());
        }
        // a writer that is alive, and other files' temporaries, are left alone
        assert!(live.exists() && other.exists());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                n.starts_with(".model.bin.tmp-") && !n.contains(&std::process::id().to_string())
            })
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn folds_are_stratified_and_seeded() {
        let y: Vec<bool> = (0..1000).map(|i| i % 4 == 0).collect();
        let f1 = stratified_folds(&y, 5, 7);
        let f2 = stratified_folds(&y, 5, 7);
        assert_eq!(f1, f2);
        for k in 0..5 {
            let pos = (0..1000).filter(|&i| f1[i] == k && y[i]).count();
            assert_eq!(pos, 50);
        }
        assert_ne!(f1, stratified_folds(&y, 5, 8));
    }

    #[test]
    fn split_keeps_label_rate() {
        let y: Vec<bool> = (0..1000).map(|i| i % 4 == 0).collect();
        let (tr, te) = stratified_split(&y, 0.2, 1);
        assert_eq!(te.len(), 200);
        assert_eq!(tr.len(), 800);
        assert_eq!(te.iter().filter(|&&i| y[i]).count(), 50);
    }

    #[test]
    fn text_enums_encode_as_their_text() {
        crate::util::text_enum! {
            /// A test enum.
            enum RiskBand {
                /// Low.
                Low = "low",
                /// Medium.
                Medium = "medium",
                /// High.
                High = "high",
            }
        }
        let cfg = bincode::config::standard();
        // bincode (bundles), JSON (card, API) and back: exactly what the `String` gave
        for b in RiskBand::ALL {
            let as_text = bincode::serde::encode_to_vec(b.as_str(), cfg).unwrap();
            assert_eq!(bincode::serde::encode_to_vec(b, cfg).unwrap(), as_text);
            let (back, _): (RiskBand, usize) =
                bincode::serde::decode_from_slice(&as_text, cfg).unwrap();
            assert_eq!(back, b);
            assert_eq!(serde_json::to_string(&b).unwrap(), format!("\"{b}\""));
            assert_eq!(RiskBand::ALL[b as usize], b);
        }
        let bad = serde_json::from_str::<RiskBand>("\"extreme\"").unwrap_err();
        assert!(
            bad.to_string().contains("unknown variant `extreme`"),
            "{bad}"
        );
    }

    #[test]
    fn atomic_write_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
