//! Models exported as SQL (issue 16): `churn-train export-sql` run on a real PostgreSQL and a
//! real DuckDB must give what `churn-score` writes — probabilities and intervals to the last bit
//! (compared as f64 bits), segment ids and names, RFM classes, lifecycle stages and risk bands
//! identical — on Telco, Bank, CDNOW, 100k synthetic rows full of edge cases and a depth-30 tree;
//! the Spark output must parse with a Spark (Databricks) dialect parser.
//!
//! DuckDB runs through its Python package: `CHURN_DUCKDB_PYTHON` names a Python that imports
//! `duckdb` (`.ci/run` makes one); without it the DuckDB half is skipped with a note, unless
//! `CHURN_REQUIRE_DUCKDB=1`. Spark likewise: `CHURN_SPARK_PYTHON` (a Python with `pyspark`, local
//! mode, Java 17) and `CHURN_REQUIRE_SPARK=1`.

use crate::store::PgDb;
use crate::util::*;
use churn::io::read_table;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Output columns compared as f64 bits.
const FLOAT_COLUMNS: [&str; 4] = [
    "churn_probability",
    "probability_low",
    "probability_high",
    "leaf_support",
];

/// A scored table: column names, and per id the cells by column.
pub(crate) struct Scores {
    columns: Vec<String>,
    rows: BTreeMap<String, Vec<Option<String>>>,
}

pub(crate) fn read_scores(path: &Path, id: &str) -> Scores {
    let t = read_table(path, None).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let columns: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
    let idc = t
        .index_of(id)
        .unwrap_or_else(|| panic!("{}: no id column {id} in {columns:?}", path.display()));
    let mut rows = BTreeMap::new();
    for r in 0..t.nrows {
        let key = t.columns[idc].data.get(r).to_text().unwrap();
        let cells = t.columns.iter().map(|c| c.data.get(r).to_text()).collect();
        assert!(
            rows.insert(key.clone(), cells).is_none(),
            "duplicate id {key}"
        );
    }
    Scores { columns, rows }
}

/// Every column of `engine` equals `native`'s: floats bit for bit, booleans by value, the rest
/// as text. Returns the number of compared cells.
pub(crate) fn assert_same(native: &Scores, engine: &Scores, what: &str) -> usize {
    assert_eq!(
        native.rows.len(),
        engine.rows.len(),
        "{what}: row counts differ"
    );
    let mut cells = 0;
    for (ec, name) in engine.columns.iter().enumerate() {
        let nc = native
            .columns
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("{what}: churn-score wrote no column {name}"));
        let mut bad = Vec::new();
        for (id, erow) in &engine.rows {
            let nrow = native
                .rows
                .get(id)
                .unwrap_or_else(|| panic!("{what}: id {id} not scored natively"));
            let (n, e) = (nrow[nc].as_deref(), erow[ec].as_deref());
            let same = if FLOAT_COLUMNS.contains(&name.as_str()) {
                let bits =
                    |s: Option<&str>| s.and_then(|s| s.parse::<f64>().ok()).map(f64::to_bits);
                bits(n).is_some() && bits(n) == bits(e)
            } else if name == "predicted_churn" {
                let b = |s: Option<&str>| {
                    s.map(|s| matches!(s.to_ascii_lowercase().as_str(), "t" | "true"))
                };
                b(n).is_some() && b(n) == b(e)
            } else {
                n == e
            };
            cells += 1;
            if !same {
                bad.push(format!("{id}: native {n:?}, {what} {e:?}"));
            }
        }
        assert!(
            bad.is_empty(),
            "{what}: column {name} differs in {} of {} rows, e.g. {:?}",
            bad.len(),
            engine.rows.len(),
            &bad[..bad.len().min(5)]
        );
    }
    cells
}

/// The Python named by `var` (one that imports `module`), or `None` (skip, with a note) when
/// none is configured — a failure instead when `require` is `1`.
pub(crate) fn engine_python(var: &str, require: &str, module: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            assert!(
                std::env::var(require).as_deref() != Ok("1"),
                "{require}=1 but {var} is not set"
            );
            eprintln!("skipped {module}: set {var} to a Python that imports {module}");
            None
        }
    }
}

/// The Python that runs DuckDB, or `None` (skip) when none is configured.
fn duckdb_python() -> Option<String> {
    engine_python("CHURN_DUCKDB_PYTHON", "CHURN_REQUIRE_DUCKDB", "duckdb")
}

const DUCKDB_SCRIPT: &str = r#"
import csv, sys, duckdb
data, sql, out, table = sys.argv[1:5]
con = duckdb.connect()
con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_csv(?, all_varchar=true, header=true)", [data])
cur = con.execute(open(sql).read())
cols = [d[0] for d in cur.description]
def cell(v):
    if v is None: return ''
    if isinstance(v, bool): return 'true' if v else 'false'
    if isinstance(v, float): return repr(v)
    return str(v)
with open(out, 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(cols)
    for r in cur.fetchall():
        w.writerow([cell(v) for v in r])
"#;

/// Run `sql` on DuckDB over `data` loaded as text columns into table `table`.
fn run_duckdb(python: &str, data: &Path, sql: &Path, out: &Path, table: &str) {
    let o = Command::new(python)
        .arg("-c")
        .arg(DUCKDB_SCRIPT)
        .args([data, sql, out])
        .arg(table)
        .stdin(Stdio::null())
        .output()
        .expect("python runs");
    assert!(
        o.status.success(),
        "DuckDB failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Load `data` as text columns into `warehouse.customers` of `db` and run `sql` there; the
/// result goes to `out` as CSV.
fn run_postgres(db: &PgDb, data: &Path, sql: &Path, out: &Path) {
    let header = std::fs::read_to_string(data)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let cols: Vec<String> = header
        .split(',')
        .map(|c| format!("\"{}\" TEXT", c.trim_matches('"')))
        .collect();
    let query = std::fs::read_to_string(sql).unwrap();
    let script = format!(
        "SET statement_timeout = '300s';\nDROP SCHEMA IF EXISTS warehouse CASCADE;\nCREATE SCHEMA warehouse;\n\
         CREATE TABLE warehouse.customers ({});\n\
         \\copy warehouse.customers FROM '{}' WITH (FORMAT csv, HEADER true)\n\
         COPY (\n{}\n) TO STDOUT WITH (FORMAT csv, HEADER true);\n",
        cols.join(", "),
        data.display(),
        query.trim_end().trim_end_matches(';')
    );
    psql_script(db, &script, out);
}

/// The bundled example's configuration trained as a single tree (SQL export covers trees),
/// once per test run; returns the model directory.
fn tree_example() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("export-tree-example-{}", std::process::id()))
            .join("telco");
        let _ = std::fs::remove_dir_all(&dir);
        train_config(Path::new("training/telco.toml"), &dir, &["--model", "tree"]);
        dir
    })
    .clone()
}

/// Export `model` for `dialect` (reading `table`) into `dir`; returns the file.
pub(crate) fn export(
    model: &Path,
    dialect: &str,
    table: &str,
    dir: &Path,
    extra: &[&str],
) -> PathBuf {
    let out = dir.join(format!("{dialect}.sql"));
    let mut args = vec![
        "export-sql",
        "--model",
        model.to_str().unwrap(),
        "--dialect",
        dialect,
        "--table",
        table,
        "--output",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (code, _, err) = run("churn-train", &args);
    assert_eq!(code, 0, "export-sql failed: {err}");
    out
}

/// `churn-train export-sql --model MODEL --dialect DIALECT EXTRA…` to stdout: (exit code,
/// stdout, stderr).
fn export_run(model: &Path, dialect: &str, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "export-sql",
        "--model",
        model.to_str().unwrap(),
        "--dialect",
        dialect,
    ];
    args.extend_from_slice(extra);
    run("churn-train", &args)
}

/// Score `data` natively and with the exported SQL on PostgreSQL and DuckDB; every value must
/// agree. `test` names the PostgreSQL database.
pub(crate) fn check_model(test: &str, model: &Path, data: &Path, id: &str, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let native_out = dir.path().join("native.csv");
    let t = Instant::now();
    let (code, _, err) = score(model, data, &native_out, &[]);
    assert_eq!(code, 0, "churn-score failed: {err}");
    let native_s = t.elapsed().as_secs_f64();
    let native = read_scores(&native_out, id);
    let input_rows = read_table(data, None).unwrap().nrows;
    assert_eq!(
        native.rows.len(),
        input_rows,
        "churn-score rejected rows: {err}"
    );

    let Some(db) = PgDb::create(test) else {
        return;
    };
    let pg_sql = export(model, "postgres", "warehouse.customers", dir.path(), extra);
    let pg_out = dir.path().join("postgres.csv");
    let t = Instant::now();
    run_postgres(&db, data, &pg_sql, &pg_out);
    let pg_s = t.elapsed().as_secs_f64();
    let pg = read_scores(&pg_out, id);
    let cells = assert_same(&native, &pg, "PostgreSQL");
    eprintln!(
        "{test}: PostgreSQL identical in {cells} cells of {} rows (load + query {pg_s:.2} s, churn-score {native_s:.2} s)",
        pg.rows.len()
    );

    if let Some(py) = duckdb_python() {
        let duck_sql = export(model, "duckdb", "customers", dir.path(), extra);
        let duck_out = dir.path().join("duckdb.csv");
        let t = Instant::now();
        run_duckdb(&py, data, &duck_sql, &duck_out, "customers");
        let duck = read_scores(&duck_out, id);
        let cells = assert_same(&native, &duck, "DuckDB");
        eprintln!(
            "{test}: DuckDB identical in {cells} cells (load + query {:.2} s)",
            t.elapsed().as_secs_f64()
        );
    }
}

#[test]
fn telco_scores_identically_in_sql() {
    let model = tree_example();
    check_model("sql_telco", &model, &telco(), "customerID", &[]);
}

/// The Bank churn table and a model of it trained with `flags` into `dir`, or `None` (skip, with
/// a note) when the shared dataset is absent.
pub(crate) fn bank_model(dir: &Path, flags: &[&str]) -> Option<(PathBuf, PathBuf)> {
    let data = root().join("../shared/datasets/bank_customer_churn/Churn_Modelling.csv");
    if !data.exists() {
        eprintln!("skipped: {} not present", data.display());
        return None;
    }
    let model = dir.join("bank");
    let mut args = vec![
        "--data",
        data.to_str().unwrap(),
        "--label",
        "Exited",
        "--id",
        "CustomerId",
        "--drop",
        "RowNumber,Surname",
    ];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--out", model.to_str().unwrap(), "--quiet"]);
    let (code, _, err) = run("churn-train", &args);
    assert_eq!(code, 0, "{err}");
    Some((data, model))
}

#[test]
fn bank_scores_identically_in_sql() {
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--model",
        "tree",
        "--max-depth",
        "4,6,8",
        "--min-samples-leaf",
        "10,40",
    ];
    let Some((data, model)) = bank_model(dir.path(), &flags) else {
        return;
    };
    check_model("sql_bank", &model, &data, "CustomerId", &[]);
}

#[test]
fn cdnow_scores_identically_in_sql() {
    // a transaction model: the SQL reads the feature table `churn-train features` writes
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("cdnow");
    train_config(
        Path::new("training/cdnow.toml"),
        &model,
        &["--model", "tree"],
    );
    let feats = cdnow_features(dir.path());
    check_model("sql_cdnow", &model, &feats, "customer_id", &[]);
}

/// The CDNOW feature table as of 1998-04-01 (what a transaction model scores), in `dir`.
pub(crate) fn cdnow_features(dir: &Path) -> PathBuf {
    let feats = dir.join("features.csv");
    let (code, _, err) = run(
        "churn-train",
        &[
            "features",
            "--config",
            "training/cdnow.toml",
            "--as-of",
            "1998-04-01",
            "--output",
            feats.to_str().unwrap(),
            "--quiet",
        ],
    );
    assert_eq!(code, 0, "{err}");
    feats
}

/// A tiny deterministic generator (the test must not depend on a seed of another crate).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() * from.len() as f64) as usize % from.len()]
    }
}

/// `n` Telco-shaped rows full of edge cases: values exactly at (and one ulp around) every split
/// threshold of `model`, missing-value tokens, unseen and padded categories, other boolean
/// spellings, negative amounts.
pub(crate) fn synthetic_telco(model: &Path, n: usize, out: &Path) {
    let b = churn::bundle::load(model).unwrap().bundle;
    let base = read_table(&telco(), None).unwrap();
    // thresholds per input name (value columns only)
    let mut cuts: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let splits: Vec<(u32, f64)> = match (b.model.single_tree(), b.model.boosted_trees()) {
        (Some(t), _) => t
            .tree
            .nodes
            .iter()
            .filter(|n| !n.is_leaf())
            .map(|n| (n.feature, n.threshold))
            .collect(),
        (None, Some(bt)) => bt
            .ensemble
            .trees
            .iter()
            .flat_map(|t| t.nodes.iter().filter(|n| !n.is_leaf()))
            .map(|n| (n.feature, n.threshold))
            .collect(),
        (None, None) => unreachable!("a tree or boosted trees"),
    };
    for (feature, threshold) in splits {
        let c = &b.encoder.columns[feature as usize];
        if c.role == churn::features::ColumnRole::Value {
            let name = b.encoder.inputs[c.input].name.clone();
            cuts.entry(name).or_default().push(threshold);
        }
    }
    let kinds: BTreeMap<&str, &churn::ingest::FeatureKind> = b
        .encoder
        .inputs
        .iter()
        .map(|i| (i.name.as_str(), &i.kind))
        .collect();
    let mut rng = Lcg(16);
    let mut text = String::new();
    let header: Vec<&str> = base.columns.iter().map(|c| c.name.as_str()).collect();
    text.push_str(&header.join(","));
    text.push('\n');
    for r in 0..n {
        let src = r % base.nrows;
        let mut cells = Vec::new();
        for c in &base.columns {
            let orig = c.data.get(src).to_text().unwrap_or_default();
            let cell = if c.name == "customerID" {
                format!("S{r:06}")
            } else {
                match kinds.get(c.name.as_str()) {
                    Some(churn::ingest::FeatureKind::Numeric) => {
                        let u = rng.next();
                        let cut = cuts.get(&c.name).filter(|v| !v.is_empty());
                        match (u, cut) {
                            (u, _) if u < 0.08 => rng
                                .pick(&["", " ", "NA", "null", "NaN", "None"])
                                .to_string(),
                            (u, Some(v)) if u < 0.40 => {
                                let t = v[(rng.next() * v.len() as f64) as usize % v.len()];
                                let t = match (rng.next() * 3.0) as u32 {
                                    0 => t,
                                    1 => f64::from_bits(t.to_bits() + 1),
                                    _ => f64::from_bits(t.to_bits() - 1),
                                };
                                format!("{t:?}")
                            }
                            (u, _) if u < 0.43 => format!("-{}", (rng.next() * 50.0).floor()),
                            (u, _) if u < 0.46 => format!(" {orig} "),
                            _ => orig,
                        }
                    }
                    Some(churn::ingest::FeatureKind::Boolean { .. }) => {
                        let u = rng.next();
                        if u < 0.06 {
                            rng.pick(&["", "NA", "N/A"]).to_string()
                        } else if u < 0.15 {
                            rng.pick(&["yes", "NO", "True", "f", "1", "0", "Y", "n"])
                                .to_string()
                        } else {
                            orig
                        }
                    }
                    Some(churn::ingest::FeatureKind::Categorical) => {
                        let u = rng.next();
                        if u < 0.06 {
                            rng.pick(&["", "NA", "n/a", "NULL"]).to_string()
                        } else if u < 0.11 {
                            rng.pick(&[
                                "Zeppelin",
                                "fiber optic",
                                "Month–to–month",
                                "O'Brien \"x\"",
                            ])
                            .to_string()
                        } else if u < 0.15 {
                            format!("  {orig} ")
                        } else {
                            orig
                        }
                    }
                    None => orig,
                }
            };
            cells.push(format!("\"{}\"", cell.replace('"', "\"\"")));
        }
        text.push_str(&cells.join(","));
        text.push('\n');
    }
    std::fs::write(out, text).unwrap();
}

#[test]
fn synthetic_edge_cases_score_identically_in_sql() {
    let model = tree_example();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("synthetic.csv");
    synthetic_telco(&model, 100_000, &data);
    check_model("sql_synthetic", &model, &data, "customerID", &[]);
}

/// The Telco model with its tree replaced by a chain 30 splits deep over tenure and
/// MonthlyCharges (thresholds between the data's values, so every level is reached).
fn deep_model(dir: &Path) -> PathBuf {
    use churn::model::tree::{Node, Tree, LEAF};
    let src = tree_example();
    let mut b = churn::bundle::load(&src).unwrap().bundle;
    let col = |name: &str| {
        b.encoder
            .columns
            .iter()
            .position(|c| c.name == name)
            .unwrap()
    };
    let (tenure, charges) = (col("tenure") as u32, col("MonthlyCharges") as u32);
    let leaf = |n: f64, pos: f64| Node {
        feature: 0,
        threshold: 0.0,
        left: LEAF,
        right: LEAF,
        n,
        pos,
        class: pos * 2.0 > n,
        value: (pos + 0.5) / (n + 1.0),
    };
    let mut nodes = Vec::new();
    for d in 0..30u32 {
        let i = nodes.len() as u32;
        let (feature, threshold) = if d % 2 == 0 {
            (tenure, 2.5 * d as f64 + 0.5)
        } else {
            (charges, 20.0 + 3.3 * d as f64)
        };
        nodes.push(Node {
            feature,
            threshold,
            left: i + 1,
            right: i + 2,
            n: 1000.0,
            pos: 300.0,
            class: false,
            value: 0.3,
        });
        nodes.push(leaf(30.0 + d as f64, (d as f64 * 7.0) % 29.0));
    }
    nodes.push(leaf(500.0, 40.0));
    // the chain: internal node i has its leaf at i + 1 and the next split at i + 2
    let tree = Tree {
        nodes,
        learner: "test-chain".into(),
        importances: b.model.importances().to_vec(),
    };
    assert_eq!(tree.depth(), 30);
    let m = &b.model;
    b.model = churn::model::Model::tree(tree, m.params, m.calibrator.clone(), m.threshold);
    let out = dir.join("deep");
    std::fs::create_dir_all(&out).unwrap();
    churn::bundle::save(&out, &b).unwrap();
    out
}

#[test]
fn deep_tree_goes_flat_scores_identically_and_parses_as_spark() {
    let dir = tempfile::tempdir().unwrap();
    let model = deep_model(dir.path());
    // default depth limit: one condition chain per leaf
    let spark = export(&model, "spark", "db.customers", dir.path(), &[]);
    let flat = std::fs::read_to_string(&spark).unwrap();
    assert!(
        flat.contains("one condition chain per leaf"),
        "{}",
        &flat[..400]
    );
    spark_parses(&flat);
    check_model("sql_deep_flat", &model, &telco(), "customerID", &[]);
    // nested form of the same tree, forced, for PostgreSQL and DuckDB
    check_model(
        "sql_deep_nested",
        &model,
        &telco(),
        "customerID",
        &["--max-case-depth", "64"],
    );
}

/// `sql` parses as Spark SQL (sqlparser's Databricks dialect) into exactly one query.
pub(crate) fn spark_parses(sql: &str) {
    use sqlparser::dialect::DatabricksDialect;
    use sqlparser::parser::Parser;
    let statements = Parser::new(&DatabricksDialect {})
        .with_recursion_limit(256)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
        .unwrap_or_else(|e| panic!("Spark SQL does not parse: {e}"));
    assert_eq!(statements.len(), 1);
    assert!(matches!(statements[0], sqlparser::ast::Statement::Query(_)));
}

/// The Python that runs PySpark (local mode), or `None` (skip) when none is configured.
fn spark_python() -> Option<String> {
    engine_python("CHURN_SPARK_PYTHON", "CHURN_REQUIRE_SPARK", "pyspark")
}

/// Runs jobs `data sql out table` (four arguments each) in one local Spark session (UTC, CSV
/// read with every column as a string).
const SPARK_SCRIPT: &str = r#"
import csv, sys
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master("local[2]").config("spark.sql.session.timeZone", "UTC")
         .config("spark.ui.enabled", "false").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
args = sys.argv[1:]
def cell(v):
    if v is None: return ''
    if isinstance(v, bool): return 'true' if v else 'false'
    if isinstance(v, float): return repr(v)
    return str(v)
for i in range(0, len(args), 4):
    data, sql, out, table = args[i:i + 4]
    spark.read.option("header", True).option("inferSchema", False).csv(data).createOrReplaceTempView(table)
    res = spark.sql(open(sql).read())
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(res.columns)
        for r in res.collect():
            w.writerow([cell(v) for v in r])
"#;

/// On a real Spark (PySpark, local mode): the exported scoring queries of Telco, CDNOW, the 100k
/// edge-case rows and the depth-30 tree, and of boosted models (Telco, the edge-case rows, Platt
/// scaling, 300 rounds of depth 6) give what churn-score writes, and the CDNOW feature query what
/// churn-train features writes.
#[test]
fn spark_runs_the_exports_identically() {
    let Some(py) = spark_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let telco_model = tree_example();
    let cd_model = d.join("cdnow");
    train_config(
        Path::new("training/cdnow.toml"),
        &cd_model,
        &["--model", "tree"],
    );
    let cd_feats = cdnow_features(d);
    let synthetic = d.join("synthetic.csv");
    synthetic_telco(&telco_model, 100_000, &synthetic);
    let deep = deep_model(d);
    let boosted = crate::export_boosted::boosted_example();
    let boosted_synthetic = d.join("boosted-synthetic.csv");
    synthetic_telco(&boosted, 100_000, &boosted_synthetic);
    // (name, model, data, id)
    let jobs: Vec<(&str, PathBuf, PathBuf, &str)> = vec![
        ("telco", telco_model.clone(), telco(), "customerID"),
        ("cdnow", cd_model, cd_feats.clone(), "customer_id"),
        ("synthetic", telco_model, synthetic, "customerID"),
        ("deep", deep, telco(), "customerID"),
        ("boosted", boosted.clone(), telco(), "customerID"),
        (
            "boosted-synthetic",
            boosted.clone(),
            boosted_synthetic,
            "customerID",
        ),
        (
            "boosted-platt",
            crate::export_boosted::with_platt(&boosted, d),
            telco(),
            "customerID",
        ),
        (
            "boosted-300",
            crate::export_boosted::rounds_300(),
            telco(),
            "customerID",
        ),
    ];
    let mut args: Vec<String> = Vec::new();
    let mut expected = Vec::new();
    for (name, model, data, id) in &jobs {
        let jd = d.join(name);
        std::fs::create_dir_all(&jd).unwrap();
        let native_out = jd.join("native.csv");
        let (code, _, err) = score(model, data, &native_out, &[]);
        assert_eq!(code, 0, "{err}");
        let sql = export(model, "spark", "customers", &jd, &[]);
        let out = jd.join("spark.csv");
        for a in [data.as_path(), sql.as_path(), out.as_path()] {
            args.push(a.display().to_string());
        }
        args.push("customers".into());
        expected.push((name.to_string(), native_out, out, *id));
    }
    // the feature query of the CDNOW log
    let feats_sql = d.join("features.spark.sql");
    let (code, _, err) = run(
        "churn-train",
        &[
            "features",
            "--config",
            "training/cdnow.toml",
            "--as-of",
            "1998-04-01",
            "--engine",
            "sql",
            "--dialect",
            "spark",
            "--table",
            "log",
            "--output",
            feats_sql.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let feats_out = d.join("features.spark.csv");
    for a in [cdnow(), feats_sql.clone(), feats_out.clone()] {
        args.push(a.display().to_string());
    }
    args.push("log".into());

    let t = Instant::now();
    let o = Command::new(&py)
        .arg("-c")
        .arg(SPARK_SCRIPT)
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("python runs");
    assert!(
        o.status.success(),
        "Spark failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    for (name, native, out, id) in &expected {
        let cells = assert_same(&read_scores(native, id), &read_scores(out, id), "Spark");
        eprintln!("spark {name}: identical in {cells} cells");
    }
    compare_features(
        &read_scores(&cd_feats, "customer_id"),
        &read_scores(&feats_out, "customer_id"),
        "Spark CDNOW features",
    );
    eprintln!("Spark session: {:.1} s", t.elapsed().as_secs_f64());
}

#[test]
fn spark_export_of_every_bundled_model_parses() {
    let dir = tempfile::tempdir().unwrap();
    let telco_model = tree_example();
    let sql = std::fs::read_to_string(export(&telco_model, "spark", "customers", dir.path(), &[]))
        .unwrap();
    spark_parses(&sql);
    // Spark string literals escape with backslashes, identifiers with backticks
    assert!(sql.contains("`customerID`"), "{}", &sql[..600]);
    assert!(
        !sql.lines().any(|l| !l.starts_with("--") && l.contains('"')),
        "double quotes in Spark SQL"
    );
}

#[test]
fn export_sql_refuses_bad_options() {
    let model = tree_example();
    let (code, _, err) = export_run(&model, "oracle", &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--dialect") && err.contains("oracle"), "{err}");
    let (code, _, err) = run(
        "churn-train",
        &[
            "export-sql",
            "--model",
            "no/such/dir",
            "--dialect",
            "duckdb",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no/such/dir"), "{err}");
}

// ---------------------------------------------------------------- the feature query

/// `churn-train features` natively and as SQL on PostgreSQL and DuckDB over the same log (loaded
/// as text columns): same customers, same values (counts, days, trend and months exactly; sums
/// of amounts to 1e-9 relative, since engines add in their own order).
fn check_features(test: &str, log: &Path, id: &str, flags: &[&str], date_flag: (&str, &str)) {
    let dir = tempfile::tempdir().unwrap();
    let native_out = dir.path().join("native.csv");
    let mut args = vec!["features", "--transactions", log.to_str().unwrap()];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[date_flag.0, date_flag.1, "--quiet"]);
    let mut native_args = args.clone();
    native_args.extend_from_slice(&["--output", native_out.to_str().unwrap()]);
    let (code, _, err) = run("churn-train", &native_args);
    assert_eq!(code, 0, "{err}");
    let native = read_scores(&native_out, id);

    let sql_for = |dialect: &str, table: &str| {
        let out = dir.path().join(format!("features-{dialect}.sql"));
        let mut a = args.clone();
        a.extend_from_slice(&[
            "--engine",
            "sql",
            "--dialect",
            dialect,
            "--table",
            table,
            "--output",
            out.to_str().unwrap(),
        ]);
        let (code, _, err) = run("churn-train", &a);
        assert_eq!(code, 0, "{err}");
        out
    };
    let header = read_table(log, None).unwrap();
    let cols: Vec<String> = header
        .columns
        .iter()
        .map(|c| format!("\"{}\" TEXT", c.name))
        .collect();
    let Some(db) = PgDb::create(test) else {
        return;
    };
    let pg_sql = std::fs::read_to_string(sql_for("postgres", "warehouse.log")).unwrap();
    let source = if log.extension().is_some_and(|e| e == "gz") {
        format!("PROGRAM 'gzip -dc {}'", log.display())
    } else {
        format!("'{}'", log.display())
    };
    let script = format!(
        "SET statement_timeout = '300s';\nCREATE SCHEMA warehouse;\nCREATE TABLE warehouse.log ({});\n\
         \\copy warehouse.log FROM {source} WITH (FORMAT csv, HEADER true)\n\
         COPY (\n{}\n) TO STDOUT WITH (FORMAT csv, HEADER true);\n",
        cols.join(", "),
        pg_sql.trim_end()
    );
    let pg_out = dir.path().join("pg.csv");
    psql_script(&db, &script, &pg_out);
    compare_features(
        &native,
        &read_scores(&pg_out, id),
        &format!("{test} PostgreSQL"),
    );

    if let Some(py) = duckdb_python() {
        let duck_out = dir.path().join("duck.csv");
        run_duckdb(&py, log, &sql_for("duckdb", "log"), &duck_out, "log");
        compare_features(
            &native,
            &read_scores(&duck_out, id),
            &format!("{test} DuckDB"),
        );
    }
}

/// Run a psql script on `db`; its standard output goes to `out`.
fn psql_script(db: &PgDb, script: &str, out: &Path) {
    let path = out.with_extension("psql");
    std::fs::write(&path, script).unwrap();
    let o = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            "5432",
            "-U",
            "postgres",
            "-d",
            db.name(),
        ])
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-f"])
        .arg(&path)
        .env("PGCONNECT_TIMEOUT", "5")
        .stdin(Stdio::null())
        .output()
        .expect("psql runs");
    assert!(
        o.status.success(),
        "PostgreSQL failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::write(out, &o.stdout).unwrap();
}

fn compare_features(native: &Scores, engine: &Scores, what: &str) {
    assert_eq!(native.columns, engine.columns, "{what}: columns");
    assert_eq!(
        native.rows.keys().collect::<Vec<_>>(),
        engine.rows.keys().collect::<Vec<_>>(),
        "{what}: customers differ"
    );
    let (mut exact, mut close) = (0usize, 0usize);
    for (id, n) in &native.rows {
        let e = &engine.rows[id];
        for (c, name) in native.columns.iter().enumerate().skip(1) {
            let num = |s: &Option<String>| s.as_deref().and_then(|s| s.parse::<f64>().ok());
            let (a, b) = (num(&n[c]), num(&e[c]));
            let (Some(a), Some(b)) = (a, b) else {
                panic!("{what}: {id} {name}: native {:?}, SQL {:?}", n[c], e[c]);
            };
            if a.to_bits() == b.to_bits() {
                exact += 1;
            } else if name.starts_with("monetary") && (a - b).abs() <= 1e-9 * a.abs().max(1.0) {
                close += 1;
            } else {
                panic!("{what}: {id} {name}: native {a:?}, SQL {b:?}");
            }
        }
    }
    eprintln!(
        "{what}: {} customers, {exact} values bit-identical, {close} sums within 1e-9",
        native.rows.len()
    );
}

#[test]
fn cdnow_feature_query_matches_native_features() {
    let flags = [
        "--customer-col",
        "customer_id",
        "--time-col",
        "date",
        "--amount-col",
        "dollar_value",
        "--horizon-days",
        "273",
    ];
    // for scoring (no label), and at a training cutoff (with the label)
    check_features(
        "sqlf_cdnow_asof",
        &cdnow(),
        "customer_id",
        &flags,
        ("--as-of", "1998-04-01"),
    );
    check_features(
        "sqlf_cdnow_train",
        &cdnow(),
        "customer_id",
        &flags,
        ("--cutoff", "1997-10-01"),
    );
}

#[test]
fn online_retail_feature_query_matches_native_features() {
    let Some(log) = online_retail() else {
        return;
    };
    let flags = [
        "--customer-col",
        "CustomerID",
        "--time-col",
        "InvoiceDate",
        "--amount-col",
        "UnitPrice",
        "--quantity-col",
        "Quantity",
        "--unit-price",
        "--order-col",
        "InvoiceNo",
        "--horizon-days",
        "100",
    ];
    check_features(
        "sqlf_retail",
        &log,
        "CustomerID",
        &flags,
        ("--cutoff", "2011-09-01"),
    );
}

// ---------------------------------------------------------------- hostile names and levels (issue 31)

/// A `--table`, a model `--name` or a feature-query column flag holding a CR is refused (exit
/// 2, the message naming the flag): a lone `\r` ends the query's `--` comment in PostgreSQL,
/// DuckDB and Spark, so `"customers\rDROP TABLE victim;"` used to run as SQL.
#[test]
fn export_sql_refuses_control_characters_in_flags() {
    let model = tree_example();
    let hostile = "customers\r; DROP TABLE victim; --";
    for dialect in ["postgres", "duckdb", "spark"] {
        for table in [
            hostile,
            "crm.customers\n",
            "crm.\tcustomers",
            "crm..customers",
        ] {
            let (code, out, err) = export_run(&model, dialect, &["--table", table]);
            assert_eq!(code, 2, "{dialect} --table {table:?}: {err}");
            assert!(out.is_empty(), "{dialect}: printed SQL anyway: {out}");
            assert!(
                err.contains("--table") && err.contains("table name"),
                "{err}"
            );
        }
    }
    let (code, _, err) = export_run(&model, "duckdb", &["--table", hostile]);
    assert_eq!(code, 2);
    assert!(
        err.contains("control character") && err.contains("'\\r'"),
        "{err}"
    );

    // the feature query: --table and every column flag
    let cdnow = cdnow();
    let flags = [
        ("--table", "transactions"),
        ("--customer-col", "customer_id"),
        ("--time-col", "date"),
        ("--amount-col", "dollar_value"),
        ("--quantity-col", "number_of_cds"),
        ("--order-col", "order"),
    ];
    let hostile_col = "customer_id\r; DROP TABLE victim; --";
    for (bad, _) in flags {
        let mut args = vec![
            "features",
            "--transactions",
            cdnow.to_str().unwrap(),
            "--as-of",
            "1998-01-01",
            "--engine",
            "sql",
            "--dialect",
            "postgres",
        ];
        for (flag, value) in flags {
            let value = match (flag == bad, flag) {
                (false, _) => value,
                (true, "--table") => hostile,
                (true, _) => hostile_col,
            };
            args.extend_from_slice(&[flag, value]);
        }
        let (code, out, err) = run("churn-train", &args);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(out.is_empty(), "{bad}: printed SQL anyway: {out}");
        assert!(
            err.contains(bad) && err.contains("control character"),
            "{bad}: {err}"
        );
    }

    // the model name, which the export's comment names, is refused at training
    let dir = tempfile::tempdir().unwrap();
    let data = telco();
    let out = dir.path().join("m");
    let (code, _, err) = run(
        "churn-train",
        &[
            "--data",
            data.to_str().unwrap(),
            "--label",
            "Churn",
            "--name",
            "telco\r; DROP TABLE victim; --",
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--name") && err.contains("control characters"),
        "{err}"
    );
    assert!(!out.join("model.bin").exists());
}

/// Text from a bundle's data is harmless on a real PostgreSQL: a model named with a CR
/// (a bundle written before `--name` was checked) is exported, the file run as it is with
/// `psql -f`, and the victim table is still there; an input column named with a CR is refused.
#[test]
fn hostile_model_name_in_a_bundle_cannot_drop_a_table_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let mut bundle = churn::bundle::load(&tree_example()).unwrap().bundle;
    bundle.name = "telco\r; DROP TABLE victim; --".into();
    let model = dir.path().join("hostile");
    std::fs::create_dir_all(&model).unwrap();
    churn::bundle::save(&model, &bundle).unwrap();
    let sql_path = export(&model, "postgres", "warehouse.customers", dir.path(), &[]);
    let sql = std::fs::read_to_string(&sql_path).unwrap();

    let Some(db) = PgDb::create("export_hostile_name") else {
        return;
    };
    let data = telco();
    let header = std::fs::read_to_string(&data).unwrap();
    let cols: Vec<String> = header
        .lines()
        .next()
        .unwrap()
        .split(',')
        .map(|c| format!("\"{c}\" TEXT"))
        .collect();
    let setup = format!(
        "CREATE TABLE victim (x INT);\nINSERT INTO victim VALUES (1);\nCREATE SCHEMA warehouse;\n\
         CREATE TABLE warehouse.customers ({});\n\
         \\copy warehouse.customers FROM '{}' WITH (FORMAT csv, HEADER true)\n",
        cols.join(", "),
        data.display()
    );
    psql_script(&db, &setup, &dir.path().join("setup.out"));
    // the exported file itself, as a user runs it
    psql_script(&db, &sql, &dir.path().join("scores.out"));
    let check = dir.path().join("victim.out");
    psql_script(
        &db,
        "COPY (SELECT count(*) FROM victim) TO STDOUT;\n",
        &check,
    );
    assert_eq!(std::fs::read_to_string(&check).unwrap().trim(), "1");
    assert!(
        !sql.chars().any(|c| c != '\n' && c.is_control()),
        "a raw control character in the SQL"
    );
    assert!(sql.starts_with("-- churn model 'telco\\r; DROP TABLE victim; --'"));

    // an input column that cannot be named in SQL is refused, not printed (the playbook, which
    // names the column, goes: it is not what is tested)
    bundle.playbook = None;
    let tenure = bundle
        .encoder
        .inputs
        .iter()
        .position(|i| i.name == "tenure")
        .unwrap();
    bundle.encoder.inputs[tenure].name = "tenure\r; DROP TABLE victim; --".into();
    churn::bundle::save(&model, &bundle).unwrap();
    let (code, out, err) = export_run(&model, "postgres", &[]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("input column") && err.contains("control character"),
        "{err}"
    );
}

/// A category level holding CR LF ("Fiber\r\noptic") is written with escapes, so the exported
/// file survives a text-mode copy: after CR LF → LF in the file's text it still scores every row
/// exactly as `churn-score` does (DuckDB if configured, else PostgreSQL).
#[test]
fn crlf_in_a_category_level_survives_a_text_mode_copy() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(telco()).unwrap();
    let hostile = text
        .replace(",Fiber optic,", ",\"Fiber\r\noptic\",")
        .replace(",Month-to-month,", ",\"Month\r\nto-month\",");
    assert_ne!(hostile, text);
    let data = write(dir.path(), "telco-crlf.csv", &hostile);
    let model = dir.path().join("model");
    train_telco_layout(
        &data,
        &model,
        &[
            "--model",
            "tree",
            "--max-depth",
            "6",
            "--min-samples-leaf",
            "20",
        ],
    );
    let native_out = dir.path().join("native.csv");
    let (code, _, err) = score(&model, &data, &native_out, &[]);
    assert_eq!(code, 0, "churn-score failed: {err}");
    let native = read_scores(&native_out, "customerID");
    assert_eq!(native.rows.len(), 7043, "churn-score rejected rows: {err}");

    let duck = duckdb_python();
    let dialect = if duck.is_some() { "duckdb" } else { "postgres" };
    let table = if duck.is_some() {
        "customers"
    } else {
        "warehouse.customers"
    };
    let sql_path = export(&model, dialect, table, dir.path(), &[]);
    let sql = std::fs::read_to_string(&sql_path).unwrap();
    // what a text-mode copy (or Windows tooling) does to the file
    let copied = write(dir.path(), "copied.sql", &sql.replace("\r\n", "\n"));
    let out = dir.path().join("engine.csv");
    match &duck {
        Some(py) => run_duckdb(py, &data, &copied, &out, table),
        None => match PgDb::create("export_crlf_level") {
            Some(db) => run_postgres(&db, &data, &copied, &out),
            None => return,
        },
    }
    let cells = assert_same(&native, &read_scores(&out, "customerID"), dialect);
    assert!(sql.contains("chr(13)"), "the level is not in the query");
    assert!(!sql.contains('\r'), "a raw CR in the SQL");
    eprintln!("CR LF levels: {dialect} identical in {cells} cells after a text-mode copy");
}
