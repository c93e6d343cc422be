//! `churn-train models`: the registry of each model's versions and aliases — list them, move
//! an alias, promote a version to champion, roll an alias back, remove an unused version.

use churn::bundle::registry::{Change, ModelDir, CHAMPION};
use churn::cli::{self, CliError};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ModelsArgs {
    #[command(subcommand)]
    cmd: ModelsCmd,
    /// Directory of models (one sub-directory per model).
    #[arg(long, default_value = "models", value_name = "DIR", global = true)]
    models: PathBuf,
    /// Store that records each change (default: DIR/store.db when it exists; `none`: do not).
    #[arg(long, env = "CHURN_STORE", value_name = "URL", global = true)]
    store: Option<String>,
    /// Why (recorded with the change).
    #[arg(long, value_name = "TEXT", global = true)]
    reason: Option<String>,
    /// Who (default: $USER).
    #[arg(long, value_name = "NAME", global = true)]
    by: Option<String>,
}

#[derive(Subcommand, Debug)]
enum ModelsCmd {
    /// The versions of one model (or of every model), with their aliases and recent changes.
    List {
        /// Model name (default: every model).
        name: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Point an alias (`challenger` or any name) at a version or at another alias's version.
    Alias {
        /// Model name.
        name: String,
        /// Alias: 1 to 64 of a-z, 0-9, '-', '_'.
        alias: String,
        /// Version (or alias) to point it at; omit with --unset.
        version: Option<String>,
        /// Remove the alias instead (never the champion).
        #[arg(long, conflicts_with = "version")]
        unset: bool,
    },
    /// Make a version the champion: the one churn-serve serves (after its next reload).
    Promote {
        /// Model name.
        name: String,
        /// Version or alias (e.g. `challenger`).
        version: String,
    },
    /// Point an alias (default: the champion) back at the version it pointed to before.
    Rollback {
        /// Model name.
        name: String,
        /// The alias.
        #[arg(long, default_value = CHAMPION)]
        alias: String,
    },
    /// Delete a version no alias points to.
    Remove {
        /// Model name.
        name: String,
        /// Version.
        version: String,
    },
}

/// Run `churn-train models SUBCOMMAND`.
pub fn run(a: &ModelsArgs) -> anyhow::Result<()> {
    let dir = |name: &str| -> anyhow::Result<ModelDir> {
        ModelDir::find(&a.models, name).ok_or_else(|| {
            CliError::Usage(format!(
                "no model '{name}' in {} (no such directory)",
                a.models.display()
            ))
            .into()
        })
    };
    let mut author = cli::author(a.reason.clone().unwrap_or_default());
    if let Some(by) = &a.by {
        author.by = by.clone();
    }
    let (model, change) = match &a.cmd {
        ModelsCmd::List { name, json } => return list(a, name.as_deref(), *json),
        ModelsCmd::Alias {
            name,
            alias,
            version,
            unset,
        } => {
            let m = dir(name)?;
            let change = match (version, unset) {
                (_, true) => m.unset_alias(alias, &author)?,
                (Some(v), false) => m.set_alias(alias, v, &author)?,
                (None, false) => {
                    return Err(CliError::Usage(
                        "models alias: give the VERSION to point the alias at, or --unset".into(),
                    )
                    .into())
                }
            };
            (m, change)
        }
        ModelsCmd::Promote { name, version } => {
            let m = dir(name)?;
            let change = m.set_alias(CHAMPION, version, &author)?;
            (m, change)
        }
        ModelsCmd::Rollback { name, alias } => {
            let m = dir(name)?;
            let change = m.rollback(alias, &author)?;
            (m, change)
        }
        ModelsCmd::Remove { name, version } => {
            let m = dir(name)?;
            let change = m.remove(version, &author)?;
            (m, change)
        }
    };
    eprintln!("{}: {}", model.name, describe(&change));
    record(a, &model.name, &change)?;
    if change.alias == CHAMPION {
        eprintln!(
            "a running churn-serve serves it after its next reload (POST /v1/admin/reload, or SIGHUP)"
        );
    }
    Ok(())
}

/// One line for a change: "champion 46b4a5fe84a9 → 9f0c1d2e3b4a (by ann: better AUC)".
fn describe(c: &Change) -> String {
    let v = |x: &Option<String>| x.clone().unwrap_or_else(|| "(none)".into());
    let what = match c.action.as_str() {
        "remove" => format!("removed version {}", v(&c.from)),
        "register" => format!("registered version {}", v(&c.to)),
        _ => format!("{} {} → {}", c.alias, v(&c.from), v(&c.to)),
    };
    let why = if c.reason.is_empty() {
        String::new()
    } else {
        format!(": {}", c.reason)
    };
    format!("{what} ({} by {}{why})", c.action, c.by)
}

/// Record the change in the store (`--store`, else `MODELS/store.db` when it exists).
fn record(a: &ModelsArgs, model: &str, change: &Change) -> anyhow::Result<()> {
    let url = match a.store.as_deref() {
        Some("none") => return Ok(()),
        Some(u) => u.to_string(),
        None => {
            let db = a.models.join("store.db");
            if !db.is_file() {
                return Ok(());
            }
            format!("sqlite://{}", db.display())
        }
    };
    let store = crate::open_store(&url)?;
    store.block_on(store.record_model_change(model, change))?;
    eprintln!("recorded in {}", store.url());
    Ok(())
}

fn list(a: &ModelsArgs, name: Option<&str>, json: bool) -> anyhow::Result<()> {
    let names: Vec<String> = match name {
        Some(n) => vec![n.to_string()],
        None => {
            let mut v: Vec<String> = std::fs::read_dir(&a.models)
                .map_err(|e| anyhow::anyhow!("{}: {e}", a.models.display()))?
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        }
    };
    let mut out = Vec::new();
    for n in &names {
        let m = ModelDir::new(&a.models.join(n));
        if !m.is_registry() {
            if name.is_some() {
                return Err(CliError::Usage(format!(
                    "{} has no registry (a single-directory model, or none): train into it to start one",
                    m.dir.display()
                ))
                .into());
            }
            continue;
        }
        let versions = m.versions()?;
        let changes = m.read()?.changes;
        out.push((n.clone(), versions, changes));
    }
    if json {
        let v: Vec<serde_json::Value> = out
            .iter()
            .map(|(n, versions, changes)| {
                serde_json::json!({"name": n, "versions": versions, "changes": changes})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    for (n, versions, changes) in &out {
        println!("{n}");
        println!(
            "  {:<14} {:<22} {:<8} {:>6} {:>7}  aliases",
            "version", "created", "model", "rows", "auc"
        );
        for v in versions {
            let line = format!(
                "  {:<14} {:<22} {:<8} {:>6} {:>7}  {}",
                v.version,
                v.created_at.as_deref().unwrap_or("-"),
                v.model.as_deref().unwrap_or("-"),
                v.training_rows.map_or("-".into(), |r| r.to_string()),
                v.holdout_auc.map_or("-".into(), |x| format!("{x:.4}")),
                v.aliases.join(", ")
            );
            println!("{}", line.trim_end());
        }
        for c in changes.iter().rev().take(5) {
            println!("  {}  {}", c.at, describe(c));
        }
    }
    Ok(())
}
