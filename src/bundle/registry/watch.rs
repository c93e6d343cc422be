//! A cheap summary of what a model directory serves, so a server can notice that another
//! process (a replica promoting over HTTP, `churn-train` writing a version or an uplift bundle)
//! changed it and reload.

use super::{REGISTRY_FILE, VERSIONS_DIR};
use crate::bundle::uplift::{UPLIFT_CARD_FILE, UPLIFT_FILE};
use crate::bundle::{CARD_FILE, MODEL_FILE};
use std::hash::{Hash, Hasher};
use std::path::Path;

/// The files whose change changes what a server loads, per model (the registry, or the older
/// single-directory layout's bundle and uplift) and per version.
const MODEL_FILES: [&str; 5] = [
    REGISTRY_FILE,
    MODEL_FILE,
    CARD_FILE,
    UPLIFT_FILE,
    UPLIFT_CARD_FILE,
];
const VERSION_FILES: [&str; 4] = [MODEL_FILE, CARD_FILE, UPLIFT_FILE, UPLIFT_CARD_FILE];

/// A hash of the names, sizes and modification times of the files a server loads from
/// `models_dir` (each model's registry, and each version's bundle, card and uplift bundle):
/// different after any write that a reload would pick up. Files are replaced by rename, so a
/// write shows as a new modification time even when the size stays. A few `stat` calls per
/// version; an unreadable directory hashes as empty.
pub fn fingerprint(models_dir: &Path) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for model in sorted_dirs(models_dir) {
        model.file_name().hash(&mut h);
        hash_files(&model, &MODEL_FILES, &mut h);
        for version in sorted_dirs(&model.join(VERSIONS_DIR)) {
            version.file_name().hash(&mut h);
            hash_files(&version, &VERSION_FILES, &mut h);
        }
    }
    h.finish()
}

fn sorted_dirs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

fn hash_files(dir: &Path, names: &[&str], h: &mut impl Hasher) {
    for name in names {
        file_stamp(&dir.join(name)).hash(h);
    }
}

/// A file's size, modification time and (on Unix) inode and change time — a file replaced by
/// rename has a new inode even when its size and modification time are the same; 0 when
/// missing. Follows links (a Kubernetes ConfigMap swaps its files behind one).
pub fn file_stamp(path: &Path) -> u64 {
    let Ok(m) = std::fs::metadata(path) else {
        return 0;
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    m.len().hash(&mut h);
    m.modified().ok().hash(&mut h);
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        (m.ino(), m.ctime(), m.ctime_nsec()).hash(&mut h);
    }
    h.finish() | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_changes_with_any_file_a_server_loads() {
        let dir = tempfile::tempdir().unwrap();
        let v = dir.path().join("telco/versions/abc");
        std::fs::create_dir_all(&v).unwrap();
        std::fs::write(dir.path().join("telco").join(REGISTRY_FILE), "{}").unwrap();
        std::fs::write(v.join(MODEL_FILE), "m").unwrap();
        let a = fingerprint(dir.path());
        assert_eq!(a, fingerprint(dir.path()), "stable while nothing changes");
        // an uplift bundle written beside the version
        std::fs::write(v.join(UPLIFT_FILE), "u").unwrap();
        let b = fingerprint(dir.path());
        assert_ne!(a, b);
        // a registry rewritten with the same size (an alias moved): a new file by rename
        std::thread::sleep(std::time::Duration::from_millis(20));
        let tmp = dir.path().join("telco/registry.json.tmp");
        std::fs::write(&tmp, "[]").unwrap();
        std::fs::rename(&tmp, dir.path().join("telco").join(REGISTRY_FILE)).unwrap();
        let c = fingerprint(dir.path());
        assert_ne!(b, c);
        // a new model directory
        std::fs::create_dir(dir.path().join("bank")).unwrap();
        assert_ne!(c, fingerprint(dir.path()));
    }
}
