//! A client generated from the live `/openapi.json` by a well-known generator
//! (`openapi-python-client`, from PyPI) drives the server: score, look up, page the worklist,
//! post outcomes (twice: idempotent), read the evaluation — typed models both ways, no
//! hand-written JSON (`tests/it/client_check.py`). Needs `CHURN_CLIENT_PYTHON`, a Python whose
//! environment has `openapi-python-client` (`.ci/run` makes one); skipped with a note without
//! it, unless `CHURN_REQUIRE_CLIENT=1`.

use crate::export_sql::engine_python;
use crate::util::{http, models_copy, root, start};
use std::path::Path;
use std::process::Command;

#[test]
fn a_generated_client_scores_looks_up_pages_posts_outcomes_and_reads_the_evaluation() {
    let Some(python) = engine_python(
        "CHURN_CLIENT_PYTHON",
        "CHURN_REQUIRE_CLIENT",
        "openapi_python_client",
    ) else {
        return;
    };
    let models = models_copy("client");
    let s = start(&models, &[], &[]);
    let spec = http(&s.addr, "GET", "/openapi.json", &[], b"");
    assert_eq!(spec.status, 200);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("openapi.json"), &spec.body).unwrap();
    // no post-generation formatters (ruff is not part of the generator); Literal types for the
    // enums (the inputs' missing tokens differ only in case, which enum class keys cannot)
    std::fs::write(
        dir.path().join("config.yaml"),
        "post_hooks: []\nproject_name_override: churn-client\npackage_name_override: churn_client\nliteral_enums: true\n",
    )
    .unwrap();
    let out = Command::new(&python)
        .args(["-m", "openapi_python_client", "generate"])
        .args(["--path", "openapi.json", "--config", "config.yaml"])
        .args(["--meta", "none", "--fail-on-warning"])
        .current_dir(dir.path())
        .output()
        .expect("the generator runs");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "generation failed: {log}");
    assert!(
        Path::new(&dir.path().join("churn_client/api/default/score_default.py")).exists(),
        "{log}"
    );
    let run = Command::new(&python)
        .arg(root().join("tests/it/client_check.py"))
        .arg(dir.path())
        .arg(format!("http://{}", s.addr))
        .arg("no-token-configured")
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    for step in [
        "score:",
        "lookup:",
        "worklist: 2 rows",
        "outcomes: stored 1, then 1 duplicate",
        "evaluation:",
        "client ok",
    ] {
        assert!(stdout.contains(step), "{step} missing from:\n{stdout}");
    }
}
