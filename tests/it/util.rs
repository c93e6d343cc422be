//! Helpers shared by the integration tests: sample paths, running the binaries, loading the
//! bundled data, and linfa's pruning rule for comparing trees.

use churn::ingest::{load, CustomerData, CustomerTableSpec, Source, TransactionSpec};
use churn::model::tree::{Structure, LEAF};
use std::path::{Path, PathBuf};

/// Repository root.
pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The bundled Telco sample.
pub(crate) fn telco() -> PathBuf {
    root().join("training/data/Telco-Customer-Churn.csv")
}

/// The bundled CDNOW sample.
pub(crate) fn cdnow() -> PathBuf {
    root().join("training/data/cdnow_master_transactions.csv")
}

/// Write `text` to `dir/name` and return the path.
pub(crate) fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Run a binary of this package; returns (exit code, stdout, stderr).
pub(crate) fn run(bin: &str, args: &[&str]) -> (i32, String, String) {
    let exe = match bin {
        "churn-train" => env!("CARGO_BIN_EXE_churn-train"),
        "churn-score" => env!("CARGO_BIN_EXE_churn-score"),
        "churn-serve" => env!("CARGO_BIN_EXE_churn-serve"),
        other => panic!("unknown binary {other}"),
    };
    let out = std::process::Command::new(exe)
        .args(args)
        .current_dir(root())
        .output()
        .expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Train the bundled Telco sample into `out` with a small grid (fast); panics on failure.
pub(crate) fn train_telco(out: &Path, depths: &str, leaf: &str) {
    let (code, _, err) = run(
        "churn-train",
        &[
            "--data",
            telco().to_str().unwrap(),
            "--label",
            "Churn",
            "--id",
            "customerID",
            "--max-depth",
            depths,
            "--min-samples-leaf",
            leaf,
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ],
    );
    assert_eq!(code, 0, "{err}");
}

/// Train with a TOML config into `out` (`extra` flags go before `--quiet`); panics on failure.
pub(crate) fn train_config(config: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec![
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.push("--quiet");
    let (code, _, err) = run("churn-train", &args);
    assert_eq!(code, 0, "{err}");
}

/// Run `churn-score` on `input` with the bundle in `model`; returns (exit code, stdout, stderr).
pub(crate) fn score(
    model: &Path,
    input: &Path,
    out: &Path,
    extra: &[&str],
) -> (i32, String, String) {
    let mut args = vec![
        "--model",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run("churn-score", &args)
}

/// The `model_card.json` a training run wrote into `dir`.
pub(crate) fn read_card(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("model_card.json")).unwrap()).unwrap()
}

/// The bundled Telco sample as a customer table: label `Churn`, id `customerID`.
pub(crate) fn telco_spec() -> CustomerTableSpec {
    CustomerTableSpec {
        path: telco(),
        label: "Churn".into(),
        id: Some("customerID".into()),
        ..Default::default()
    }
}

/// The bundled Telco sample, loaded.
pub(crate) fn telco_data() -> CustomerData {
    load(&Source::Table(telco_spec())).unwrap()
}

/// The CDNOW log with the usual label: cutoff 1997-10-01, horizon 273 days.
pub(crate) fn cdnow_spec() -> TransactionSpec {
    TransactionSpec {
        path: cdnow(),
        customer_col: "customer_id".into(),
        time_col: "date".into(),
        amount_col: "dollar_value".into(),
        cutoff: Some("1997-10-01".into()),
        horizon_days: 273,
        ..Default::default()
    }
}

/// Merge sibling leaves that predict the same class, bottom-up — linfa-trees' pruning rule.
pub(crate) fn prune_like_linfa(s: &Structure) -> Vec<Option<u32>> {
    // returns, per node, Some(class) when the subtree collapses to one leaf
    fn go(s: &Structure, i: usize, out: &mut Vec<Option<u32>>) -> Option<bool> {
        let (_, _, l, r, c) = s[i];
        if l == LEAF {
            out[i] = Some(c as u32);
            return Some(c);
        }
        let a = go(s, l as usize, out);
        let b = go(s, r as usize, out);
        match (a, b) {
            (Some(a), Some(b)) if a == b => {
                out[i] = Some(a as u32);
                Some(a)
            }
            _ => None,
        }
    }
    let mut out = vec![None; s.len()];
    go(s, 0, &mut out);
    out
}

/// `s` with every subtree that linfa's pruning collapses turned into one leaf.
pub(crate) fn pruned_structure(s: &Structure) -> Structure {
    fn go(s: &Structure, i: usize, pruned: &[Option<u32>], out: &mut Structure) -> u32 {
        let me = out.len() as u32;
        let (f, t, l, r, c) = s[i];
        if l == LEAF || pruned[i].is_some() {
            out.push((0, 0.0, LEAF, LEAF, c));
            return me;
        }
        out.push((0, 0.0, LEAF, LEAF, c));
        let li = go(s, l as usize, pruned, out);
        let ri = go(s, r as usize, pruned, out);
        out[me as usize] = (f, t, li, ri, c);
        me
    }
    let pruned = prune_like_linfa(s);
    let mut out = Vec::new();
    go(s, 0, &pruned, &mut out);
    out
}
