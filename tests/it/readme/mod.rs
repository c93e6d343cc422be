//! Every command block of README.md runs in a test, as written, and what it prints is compared
//! with the output the README shows (`runner.rs` says how). Blocks that build on each other run
//! in one session, in README order; a hidden setup step (a file the README says a reader has, a
//! server a section assumes running) is written out below where it happens. A new command block
//! that no session runs fails `every_command_block_is_run`.

mod runner;

use crate::export_sql::engine_python;
use crate::store::PgDb;
use crate::util::{cell, telco_customers, trained_example};
use churn::io::read_table;
use regex::Regex;
use runner::{command_blocks, find, Session};
use serde_json::json;
use std::path::Path;

/// Quick start, the store's read paths and the HTTP API section (one trained example, one
/// server).
const QUICK_START: &[&str] = &[
    "cargo run --release --bin churn-train && cargo run --release --bin churn-serve",
    "\"customerID\":\"7590-VHVEG\",\"gender\":\"Female\"",
    "curl -s localhost:8080/v1/customers/7590-VHVEG          #",
    "--output scores.csv --store sqlite://models/store.db",
    "# worklist: latest prediction per customer by expected loss",
    "# score: body {\"customers\"",
    "openapi-python-client generate",
    "v1/score?detail=probability",
];

/// "Your own data in ten minutes" with the Bank table.
const BANK: &[&str] = &[
    "churn-train init --data Churn_Modelling.csv",
    "churn-train --config bank/churn.toml",
    "churn-serve --models models --pid-file churn-serve.pid &",
    "churn-train check --playbook bank/playbook.toml",
];

/// Versions, aliases and rollback.
const REGISTRY: &[&str] = &[
    "$ churn-train                                  # first version",
    "\"alias\": \"champion\", \"action\": \"unset\"",
];

/// Comparing two versions.
const COMPARE: &[&str] = &["churn-train evaluate --store sqlite://sim.db --compare"];

/// Keeping the model fresh, then shadow.
const RETRAIN: &[&str] = &["$ cat shift.toml", "$ churn-serve --challenger shadow &"];

/// Measuring and adjusting.
const EVALUATION: &[&str] = &[
    "--customers 50000 --effect CONTRACT_UPGRADE=0.3",
    "churn-train evaluate --store URL",
    "churn-train kpis --store sqlite://models/sim.db",
];

/// Uplift and policies.
const UPLIFT: &[&str] = &[
    "churn-train uplift --store sqlite://models/uplift-sim.db",
    "--policy playbook,nobody,risk:0.5,uplift,uplift:0.5",
];

/// The whole loop over several waves.
const WAVES: &[&str] = &["--effects training/telco-effects.toml --waves 3"];

/// Scoring in the warehouse.
const WAREHOUSE: &[&str] = &[
    "churn-train export-sql --model models/telco --dialect postgres|duckdb|spark",
    "createdb crm",
    "import duckdb",
    "churn-train features --config training/cdnow.toml --as-of 1998-04-01",
];

/// The CLI reference.
const CLI: &[&str] = &[
    "churn-train                                   # trains training/telco.toml",
    "churn-score --model models/telco --input customers.csv",
    "--example synth -- --rows 1000000",
    "churn-serve [--models DIR]",
];

#[test]
fn every_command_block_is_run() {
    let claimed: Vec<&str> = [
        QUICK_START,
        BANK,
        REGISTRY,
        COMPARE,
        RETRAIN,
        EVALUATION,
        UPLIFT,
        WAVES,
        WAREHOUSE,
        CLI,
    ]
    .concat();
    for needle in &claimed {
        find(needle); // exactly one block each
    }
    for b in command_blocks() {
        assert!(
            claimed.iter().any(|n| b.body.contains(n)),
            "README.md:{}: no test runs this {} block:\n{}",
            b.line,
            b.lang,
            b.body
        );
    }
}

/// `customers.json` as the HTTP API section uses it: the first `n` Telco rows.
fn customers_json(s: &Session, n: usize) {
    let body = json!({ "customers": telco_customers(n) });
    std::fs::write(s.path("customers.json"), body.to_string()).unwrap();
}

/// `models/telco` as the README's main command trains it (trained once for the whole test run:
/// training is deterministic, so the bundle is the one `churn-train` would write here).
fn example_model(s: &mut Session) {
    let trained = trained_example().join("telco");
    s.setup(&format!(
        "mkdir -p models && cp -r '{}' models/telco",
        trained.display()
    ));
}

/// The bin directory of a Python venv named by `var`, or `None` (skipped, or a failure when
/// `require=1`).
fn venv_bin(var: &str, require: &str, module: &str) -> Option<std::path::PathBuf> {
    engine_python(var, require, module).map(|p| Path::new(&p).parent().unwrap().to_path_buf())
}

#[test]
fn quick_start_store_and_http_api() {
    let client = venv_bin(
        "CHURN_CLIENT_PYTHON",
        "CHURN_REQUIRE_CLIENT",
        "openapi_python_client",
    );
    let mut s = Session::new(client.as_deref());
    for needle in &QUICK_START[..5] {
        s.block(needle);
    }
    // the HTTP API section's server was started with a pid file, its customers.json holds a batch
    s.serve("churn-serve --pid-file churn-serve.pid");
    customers_json(&s, 3);
    s.block(QUICK_START[5]);
    if client.is_some() {
        s.block(QUICK_START[6]);
        assert!(s.path("churn_client/api/default/score_default.py").exists());
    }
    s.block(QUICK_START[7]);
}

#[test]
fn your_own_data_in_ten_minutes() {
    let bank =
        crate::util::root().join("../shared/datasets/bank_customer_churn/Churn_Modelling.csv");
    if !bank.exists() {
        eprintln!("skipped: {} not present", bank.display());
        return;
    }
    let mut s = Session::new(None);
    std::fs::copy(&bank, s.path("Churn_Modelling.csv")).unwrap();
    s.block(BANK[0]);
    s.block(BANK[1]);
    // the number of contacted customers the README quotes for the scored table
    let t = read_table(&s.path("scores.csv"), None).unwrap();
    let contacted = (0..t.nrows)
        .filter(|&r| cell(&t, "contact", r) == "true")
        .count();
    let readme = std::fs::read_to_string(crate::util::root().join("README.md")).unwrap();
    assert!(
        readme.contains(&format!(
            "selects {},{:03} customers",
            contacted / 1000,
            contacted % 1000
        )),
        "README's contact count differs from {contacted}"
    );
    s.block(BANK[2]);
    s.block(BANK[3]);
}

#[test]
fn versions_aliases_and_rollback() {
    let mut s = Session::new(None);
    s.block(REGISTRY[0]);
    s.serve("churn-serve");
    s.block(REGISTRY[1]);
}

/// The version `churn-train` says it wrote.
fn written_version(out: &str) -> String {
    Regex::new(r"wrote models/\w+/versions/([0-9a-f]{12})")
        .unwrap()
        .captures(out)
        .unwrap_or_else(|| panic!("no version written:\n{out}"))[1]
        .to_string()
}

#[test]
fn comparing_two_versions() {
    let mut s = Session::new(None);
    // "a depth-2 challenger against a depth-4 champion on 6,000 simulated Telco customers"
    s.setup("churn-train --max-depth 4 --quiet");
    let challenger = written_version(&s.setup("churn-train --max-depth 2 2>&1"));
    s.map_id("ca1d0dc8aa43", &challenger);
    s.setup(
        "churn-train simulate --model models/telco --store sqlite://sim.db \
         --input training/data/Telco-Customer-Churn.csv --customers 6000",
    );
    s.block(COMPARE[0]);
}

#[test]
fn keeping_the_model_fresh_then_shadow() {
    let mut s = Session::new(None);
    example_model(&mut s);
    s.block(RETRAIN[0]);
    customers_json(&s, 100);
    s.block(RETRAIN[1]);
}

#[test]
fn measuring_and_adjusting() {
    let mut s = Session::new(None);
    example_model(&mut s); // its `cargo run … churn-train` then finds the same bundle registered
    s.block(EVALUATION[0]);
    s.serve("churn-serve --store sqlite://models/sim.db");
    s.block(EVALUATION[1]);
    s.block(EVALUATION[2]);
}

#[test]
fn uplift_and_policies() {
    let mut s = Session::new(None);
    example_model(&mut s);
    s.block(UPLIFT[0]);
    s.block(UPLIFT[1]);
}

#[test]
fn the_whole_loop_over_several_waves() {
    let mut s = Session::new(None);
    example_model(&mut s);
    s.block(WAVES[0]);
}

#[test]
fn scoring_in_your_warehouse() {
    let mut s = Session::new(None);
    example_model(&mut s);
    s.block(WAREHOUSE[0]);
    if let Some(db) = PgDb::create("readme") {
        s.substitute("createdb crm", "true");
        s.substitute("-d crm", &format!("-d {}", db.name()));
        s.block(WAREHOUSE[1]);
    }
    if let Some(python) = engine_python("CHURN_DUCKDB_PYTHON", "CHURN_REQUIRE_DUCKDB", "duckdb") {
        s.setup(
            "churn-train export-sql --model models/telco --dialect duckdb --output telco.duckdb.sql",
        );
        let (block, shown) = find(WAREHOUSE[2]);
        std::fs::write(s.path("readme.py"), &block.body).unwrap();
        let out = s.setup(&format!("{python} readme.py"));
        let shown: Vec<String> = shown.unwrap().body.lines().map(str::to_string).collect();
        s.match_text("README.md python block", &shown, &out);
    }
    s.block(WAREHOUSE[3]);
}

#[test]
fn the_cli_reference() {
    let mut s = Session::new(None);
    s.setup("cp training/data/Telco-Customer-Churn.csv customers.csv");
    s.setup("cp training/data/cdnow_master_transactions.csv tx.csv");
    s.setup("cp training/data/cdnow_master_transactions.csv log.csv");
    let synth = s.path("synth.parquet").display().to_string();
    s.substitute("/tmp/synth.parquet", &synth);
    for needle in CLI {
        s.block(needle);
    }
    assert!(s.path("synth.parquet").exists());
}
