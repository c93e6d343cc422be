//! `churn-score`: batch-score a file of customers with a trained bundle.

/// mimalloc: glibc malloc serialises worker threads on its arena lock under many small allocations.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use churn::bundle;
use churn::cli;
use churn::io::{read_table, write_table, OutData};
use churn::scoring::{Detail, Scorer};
use clap::Parser;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "churn-score",
    version,
    about = "Score a CSV / Parquet file of customers with a trained churn model"
)]
struct Args {
    /// Model directory (holding model.bin) or the model.bin file.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// Customers to score, in the training layout (CSV, CSV.gz, TSV or Parquet).
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Output file (CSV, TSV or Parquet by extension).
    #[arg(long, value_name = "FILE")]
    output: PathBuf,
    /// Write bad rows to a reject file instead of stopping.
    #[arg(long)]
    skip_invalid: bool,
    /// Reject file (default: OUTPUT's name with `.rejects.csv`).
    #[arg(long, value_name = "FILE")]
    rejects: Option<PathBuf>,
    /// Rows per chunk.
    #[arg(long, default_value_t = 8192)]
    chunk_size: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Retention playbook overriding the one stored in the bundle.
    #[arg(long, value_name = "FILE")]
    playbook: Option<PathBuf>,
    /// Output columns, comma-separated, in this order (default: all the model can produce). Asking
    /// only for probabilities skips segments and recommendations, which makes scoring faster.
    #[arg(long, value_name = "COL,...")]
    columns: Option<String>,
    /// Print only errors.
    #[arg(long)]
    quiet: bool,
}

fn main() {
    let args = Args::parse();
    cli::init_logging(args.quiet, false);
    if let Err(e) = run(&args) {
        std::process::exit(cli::report(&e));
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let mut scorer = Scorer::new(bundle::load(&args.model)?);
    if let Some(p) = &args.playbook {
        scorer.set_playbook(churn::playbook::read(p)?, &p.display().to_string())?;
    }
    let t = std::time::Instant::now();
    let table = read_table(&args.input, None)?;
    tracing::debug!(secs = t.elapsed().as_secs_f64(), rows = table.nrows, "read");
    let t = std::time::Instant::now();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let id_col = scorer
        .bundle
        .id_column
        .as_deref()
        .and_then(|c| table.index_of(c));
    let columns = output_columns(&scorer, id_col.is_some(), args.columns.as_deref())?;
    let wants = |names: &[&str]| columns.iter().any(|c| names.contains(c));
    let detail = Detail {
        segments: wants(&["segment_id", "segment", "rfm_class", "lifecycle_stage"]),
        advice: wants(&["risk_band", "top_action", "expected_value", "treatment"]),
    };
    // Each chunk fills compact output columns on its worker thread; text borrows from the table
    // and the bundle.
    let want = |name: &str| columns.contains(&name);
    let want_id = want(ID);
    let chunks = scorer.score_table(
        &table,
        threads,
        args.chunk_size,
        detail,
        Cols::with_capacity,
        |c, r, res| {
            let s = match res {
                Ok(s) => s,
                Err(e) => {
                    c.bad.push((r, e));
                    return;
                }
            };
            if want_id {
                c.id.push(id_col.and_then(|i| table.columns[i].data.get(r).text()));
            }
            let p = &s.prediction;
            c.p.push(p.probability);
            c.low.push(p.low);
            c.high.push(p.high);
            c.support.push(p.support as i64);
            c.churn.push(p.churn);
            if let Some(a) = &s.segment {
                c.segment_id.push(a.segment_id as i64);
                c.segment.push(a.segment);
                c.rfm.push(a.rfm_class);
                c.lifecycle.push(a.lifecycle_stage);
            }
            if let Some(a) = &s.advice {
                let top = a.recommendations.first();
                c.band.push(a.risk_band);
                c.action.push(top.map(|r| r.action));
                c.ev.push(top.map(|r| r.expected_value));
                c.treatment.push(a.treatment);
            }
            c.warnings.push((!s.warnings.is_empty()).then(|| {
                s.warnings
                    .iter()
                    .map(|w| w.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            }));
        },
    )?;
    tracing::debug!(secs = t.elapsed().as_secs_f64(), "scored");
    let t = std::time::Instant::now();
    let mut chunks = chunks;
    let mut bad: Vec<(usize, churn::scoring::ScoreError)> = Vec::new();
    for c in chunks.iter_mut() {
        bad.append(&mut c.bad);
    }
    if !args.skip_invalid && !bad.is_empty() {
        return Err(bad.swap_remove(0).1.into());
    }
    let scored: usize = chunks.iter().map(|c| c.p.len()).sum();
    // concatenate the chunks' cells of one column
    fn cat<'c, T: Clone + 'c, U>(
        chunks: &'c [Cols],
        part: impl Fn(&'c Cols) -> &'c [T],
        map: impl Fn(&'c T) -> U,
    ) -> Vec<U> {
        chunks
            .iter()
            .flat_map(|c| part(c).iter().map(&map))
            .collect()
    }
    let cols: Vec<(String, OutData)> = columns
        .iter()
        .map(|&name| {
            let data = match name {
                "churn_probability" => OutData::Float(cat(&chunks, |c| &c.p, |v| Some(*v))),
                "probability_low" => OutData::Float(cat(&chunks, |c| &c.low, |v| Some(*v))),
                "probability_high" => OutData::Float(cat(&chunks, |c| &c.high, |v| Some(*v))),
                "leaf_support" => OutData::Int(cat(&chunks, |c| &c.support, |v| Some(*v))),
                "predicted_churn" => OutData::Bool(cat(&chunks, |c| &c.churn, |v| *v)),
                "segment_id" => OutData::Int(cat(&chunks, |c| &c.segment_id, |v| Some(*v))),
                "segment" => OutData::Str(cat(&chunks, |c| &c.segment, |v| Some(*v))),
                "rfm_class" => OutData::Str(cat(&chunks, |c| &c.rfm, |v| *v)),
                "lifecycle_stage" => OutData::Str(cat(&chunks, |c| &c.lifecycle, |v| *v)),
                "risk_band" => OutData::Str(cat(&chunks, |c| &c.band, |v| Some(*v))),
                "top_action" => OutData::Str(cat(&chunks, |c| &c.action, |v| *v)),
                "expected_value" => OutData::Float(cat(&chunks, |c| &c.ev, |v| *v)),
                "treatment" => OutData::Str(cat(&chunks, |c| &c.treatment, |v| Some(*v))),
                "warnings" => OutData::Str(cat(&chunks, |c| &c.warnings, |v| v.as_deref())),
                _ => OutData::Str(cat(&chunks, |c| &c.id, |v| v.as_deref())),
            };
            let header = match name {
                ID => scorer.bundle.id_column.clone().unwrap_or_default(),
                other => other.to_string(),
            };
            (header, data)
        })
        .collect();
    tracing::debug!(secs = t.elapsed().as_secs_f64(), "columns");
    let t = std::time::Instant::now();
    write_table(&args.output, cols)?;
    tracing::debug!(secs = t.elapsed().as_secs_f64(), "written");
    if !bad.is_empty() {
        let path = args
            .rejects
            .clone()
            .unwrap_or_else(|| churn::util::sibling_path(&args.output, "rejects.csv"));
        let mut rcols: Vec<(String, OutData)> = vec![
            (
                "row".into(),
                OutData::Int(bad.iter().map(|(r, _)| Some(*r as i64 + 1)).collect()),
            ),
            (
                "error".into(),
                OutData::Text(bad.iter().map(|(_, e)| Some(inner(e))).collect()),
            ),
        ];
        for c in &table.columns {
            rcols.push((
                c.name.clone(),
                OutData::Text(bad.iter().map(|(r, _)| c.data.get(*r).to_text()).collect()),
            ));
        }
        write_table(&path, rcols)?;
        eprintln!(
            "{} of {} rows rejected; written to {}",
            bad.len(),
            table.nrows,
            path.display()
        );
    }
    if !args.quiet {
        let flagged: usize = chunks
            .iter()
            .map(|c| c.churn.iter().filter(|&&b| b).count())
            .sum();
        let warned: usize = chunks
            .iter()
            .map(|c| c.warnings.iter().filter(|w| w.is_some()).count())
            .sum();
        eprintln!(
            "scored {} customers with model '{}' version {}: {} flagged as likely to churn, {} with warnings; wrote {}",
            scored,
            scorer.bundle.name,
            scorer.version,
            flagged,
            warned,
            args.output.display()
        );
    }
    Ok(())
}

/// Placeholder for the model's id column in the list of output columns.
const ID: &str = "id";

/// The output columns this model can produce, in order (`ID` = the model's id column, when the
/// input has it).
fn available_columns(scorer: &Scorer, has_id: bool) -> Vec<&'static str> {
    let b = &scorer.bundle;
    let mut v = Vec::new();
    if has_id {
        v.push(ID);
    }
    v.extend([
        "churn_probability",
        "probability_low",
        "probability_high",
        "leaf_support",
        "predicted_churn",
    ]);
    if let Some(sm) = &b.segments {
        v.extend(["segment_id", "segment"]);
        if sm.rfm.is_some() {
            v.push("rfm_class");
        }
        if sm.lifecycle.is_some() {
            v.push("lifecycle_stage");
        }
    }
    if b.playbook.is_some() {
        v.extend(["risk_band", "top_action", "expected_value", "treatment"]);
    }
    v.push("warnings");
    v
}

/// The columns to write: all available ones, or the `--columns` selection in its order (the id
/// column may be named by its own name or `id`).
fn output_columns(
    scorer: &Scorer,
    has_id: bool,
    wanted: Option<&str>,
) -> Result<Vec<&'static str>, cli::CliError> {
    let avail = available_columns(scorer, has_id);
    let Some(wanted) = wanted else {
        return Ok(avail);
    };
    let id_name = scorer.bundle.id_column.as_deref();
    let mut out = Vec::new();
    for w in wanted.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let key = if Some(w) == id_name { ID } else { w };
        match avail.iter().find(|a| **a == key) {
            Some(a) if !out.contains(a) => out.push(*a),
            Some(_) => {}
            None => {
                let names: Vec<&str> = avail
                    .iter()
                    .map(|a| if *a == ID { id_name.unwrap_or(ID) } else { a })
                    .collect();
                return Err(cli::CliError::Usage(format!(
                    "--columns: unknown or unavailable column '{w}'; this model and input can write: {}",
                    names.join(", ")
                )));
            }
        }
    }
    if out.is_empty() {
        return Err(cli::CliError::Usage("--columns: no column named".into()));
    }
    Ok(out)
}

/// One chunk's output cells, column by column (segment / advice columns stay empty when not
/// computed).
#[derive(Default)]
struct Cols<'a> {
    id: Vec<Option<std::borrow::Cow<'a, str>>>,
    p: Vec<f64>,
    low: Vec<f64>,
    high: Vec<f64>,
    support: Vec<i64>,
    churn: Vec<bool>,
    segment_id: Vec<i64>,
    segment: Vec<&'a str>,
    rfm: Vec<Option<&'static str>>,
    lifecycle: Vec<Option<&'static str>>,
    band: Vec<&'static str>,
    action: Vec<Option<&'a str>>,
    ev: Vec<Option<f64>>,
    treatment: Vec<&'static str>,
    warnings: Vec<Option<String>>,
    bad: Vec<(usize, churn::scoring::ScoreError)>,
}

impl Cols<'_> {
    fn with_capacity(n: usize) -> Self {
        Cols {
            p: Vec::with_capacity(n),
            low: Vec::with_capacity(n),
            high: Vec::with_capacity(n),
            support: Vec::with_capacity(n),
            churn: Vec::with_capacity(n),
            warnings: Vec::with_capacity(n),
            ..Default::default()
        }
    }
}

fn inner(e: &churn::scoring::ScoreError) -> String {
    match e {
        churn::scoring::ScoreError::BadRow { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}
