//! Criterion benchmarks of the pipeline stages on the bundled samples and on 100k synthetic rows.
//! Run: `cargo bench --bench pipeline`. Peer comparisons live in `benches/peers/`.
#![allow(missing_docs)] // criterion_group! generates an undocumented public function

use churn::bundle;
use churn::config::ModelConfig;
use churn::features::Encoder;
use churn::ingest::{load, CustomerTableSpec, Source, TransactionSpec};
use churn::io::read_table;
use churn::model::tree::{fit_tree, learner_by_name, CartLearner, TreeParams};
use churn::scoring::Scorer;
use churn::segment::{kmeans, SegmentConfig};
use churn::synth::{customer_data, SynthSpec};
use churn::train::{train, TrainOptions};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn telco_spec() -> CustomerTableSpec {
    CustomerTableSpec {
        path: root().join("training/data/Telco-Customer-Churn.csv"),
        label: "Churn".into(),
        id: Some("customerID".into()),
        ..Default::default()
    }
}

fn benches(c: &mut Criterion) {
    let tx = TransactionSpec {
        path: root().join("training/data/cdnow_master_transactions.csv"),
        customer_col: "customer_id".into(),
        time_col: "date".into(),
        amount_col: "dollar_value".into(),
        cutoff: Some("1997-10-01".into()),
        horizon_days: 273,
        ..Default::default()
    };
    c.bench_function("transaction_features_cdnow_69k", |b| {
        b.iter(|| black_box(load(&Source::Transactions(tx.clone())).unwrap()))
    });
    c.bench_function("ingest_telco_7k", |b| {
        b.iter(|| black_box(load(&Source::Table(telco_spec())).unwrap()))
    });

    let data = load(&Source::Table(telco_spec())).unwrap();
    let rows: Vec<usize> = (0..data.nrows()).collect();
    let enc = Encoder::fit(&data, &rows, 10);
    let x = enc.transform(&data, &rows).unwrap();
    let w = vec![1.0; rows.len()];
    let params = TreeParams {
        max_depth: 8,
        min_samples_leaf: 20,
        ..TreeParams::default()
    };
    c.bench_function("fit_tree_telco_7k_depth8", |b| {
        b.iter(|| black_box(fit_tree(&CartLearner, &x, &data.label, &w, &rows, &params).unwrap()))
    });

    let dir = tempfile::tempdir().unwrap();
    let opts = TrainOptions {
        name: "bench".into(),
        out_dir: dir.path().to_path_buf(),
        seed: 1,
        model: ModelConfig::default(),
        economics: None,
        data_sha256: String::new(),
        progress: false,
        segments: Default::default(),
        previous: None,
        // the Telco playbook: actionable inputs, so the lever benchmark below has work to do
        playbook: Some((
            churn::playbook::read(&root().join("training/telco-playbook.toml")).unwrap(),
            "telco-playbook.toml".into(),
        )),
        author: churn::cli::author("bench".into()),
    };
    let mut g = c.benchmark_group("train");
    g.sample_size(10);
    g.bench_function("full_training_telco_cv_grid", |b| {
        b.iter(|| black_box(train(data.clone(), &opts).unwrap()))
    });
    g.finish();
    // the HTML report of that model (part of every training run; issue 15: ≤ 10% of it)
    let outcome = train(data.clone(), &opts).unwrap();
    c.bench_function("render_report_telco", |b| {
        b.iter(|| black_box(churn::report::render(&outcome.card, &outcome.bundle)))
    });

    let scorer = Scorer::new(bundle::load(dir.path()).unwrap());
    // levers and explanations of one encoded customer (issue 18: feasibility-checked levers)
    let mut w = Vec::new();
    let t = read_table(&root().join("training/data/Telco-Customer-Churn.csv"), None).unwrap();
    let b = scorer.bind(&t).unwrap();
    let one = scorer
        .encode(|i| Some(t.columns[b[i]].data.get(0)), &mut w)
        .unwrap();
    c.bench_function("levers_one_customer", |bn| {
        bn.iter(|| black_box(scorer.levers(black_box(&one))))
    });
    let table = read_table(&root().join("training/data/Telco-Customer-Churn.csv"), None).unwrap();
    let bind = scorer.bind(&table).unwrap();
    c.bench_function("encode_and_score_one_customer", |b| {
        b.iter(|| {
            black_box(
                scorer
                    .score(|i| Some(table.columns[bind[i]].data.get(black_box(17))))
                    .unwrap(),
            )
        })
    });
    // 10k customers: the Telco rows, cycled
    let picks: Vec<usize> = (0..10_000).map(|i| i % table.nrows).collect();
    c.bench_function("score_10k_customers_one_thread", |b| {
        b.iter(|| {
            let mut s = 0.0;
            for &r in &picks {
                s += scorer
                    .score(|i| Some(table.columns[bind[i]].data.get(r)))
                    .unwrap()
                    .prediction
                    .probability;
            }
            black_box(s)
        })
    });
    serving_cost(c, &scorer, &table);
    full_answer_by_model(c, &data, &opts, &table);
}

/// Three actions every customer may get, with effects that differ by customer.
const THREE_ACTIONS: &str = r#"
name = "three"
experiment = "three"
holdout_percent = 50
[[actions]]
id = "CALL"
name = "Call"
channel = "phone"
cost = 1.0
save_rate = 0.2
[[actions]]
id = "COUPON"
name = "Coupon"
channel = "email"
cost = 1.0
save_rate = 0.15
[[actions]]
id = "UPGRADE"
name = "Upgrade"
channel = "email"
cost = 1.0
save_rate = 0.1
[[rules]]
id = "everyone"
actions = ["CALL", "COUPON", "UPGRADE"]
"#;

const THREE_EFFECTS: &str = r#"
[[effect]]
action = "CALL"
share = 0.5
when = ['InternetService == "DSL"']
[[effect]]
action = "COUPON"
points = -0.05
when = ["tenure > 48"]
[[effect]]
action = "UPGRADE"
share = 0.4
when = ['Contract == "Month-to-month"']
"#;

/// The first 1,000 rows of `table` encoded for `scorer`, each with an id `{prefix}-{row}`.
fn first_customers(
    scorer: &Scorer,
    table: &churn::io::RawTable,
    prefix: &str,
) -> Vec<(Vec<f64>, String)> {
    let bind = scorer.bind(table).unwrap();
    (0..1000)
        .map(|r| {
            let mut w = Vec::new();
            let row = scorer
                .encode(|i| Some(table.columns[bind[i]].data.get(r)), &mut w)
                .unwrap();
            (row, format!("{prefix}-{r}"))
        })
        .collect()
}

/// Issue 33: the cost of a full answer (probability, segment, reasons, advice) with a
/// 3-action playbook: ranked by the playbook's rates or by uplift models, exploration off or on
/// (`[learning] explore` 0 and 0.1). Per 1,000 customers of the Telco table, each with an id.
fn serving_cost(c: &mut Criterion, trained: &Scorer, table: &churn::io::RawTable) {
    use churn::evaluate::{simulate, uplift as up, EvalData};
    let with = |explore: f64| {
        let mut s = trained.clone();
        let mut file = churn::playbook::parse(THREE_ACTIONS, "three.toml").unwrap();
        file.learning.explore = explore;
        s.set_playbook(file, "three.toml").unwrap();
        s
    };
    let base = with(0.0);
    let rules = churn::evaluate::effects::parse_effects(
        THREE_EFFECTS,
        "three-effects.toml",
        &base.bundle.encoder,
        |_| true,
    )
    .unwrap();
    let cfg = simulate::SimConfig {
        customers: 30_000,
        effect_rules: rules,
        take_rate: 1.0,
        ..Default::default()
    };
    let campaign = simulate::simulate(&base, table, &cfg).unwrap();
    let rows = up::collect(
        &EvalData::from_campaign(&campaign),
        &base.bundle.encoder,
        90 * churn::time::DAY_MS,
        churn::time::parse("2027-01-01").unwrap(),
        &mut |i| Some(campaign.records[i].input.clone()),
    );
    let (uplift, card, _) =
        up::train(&rows, &base.bundle, &base.version, &Default::default()).unwrap();
    let applied: Vec<&str> = card
        .actions
        .iter()
        .filter(|a| a.applied)
        .map(|a| a.action.as_str())
        .collect();
    eprintln!("serving_cost: uplift models applied for {applied:?}");
    let uplift = std::sync::Arc::new(uplift);
    let customers = first_customers(&base, table, "cost");
    let now = churn::time::now_ms();
    let mut g = c.benchmark_group("full_answer_3_actions_1000_customers");
    for (name, explore, ranked_by_uplift) in [
        ("playbook_rates", 0.0, false),
        ("playbook_rates_explore", 0.1, false),
        ("uplift", 0.0, true),
        ("uplift_explore", 0.1, true),
    ] {
        let mut s = with(explore);
        if ranked_by_uplift {
            s.uplift = Some((uplift.clone(), "bench".into()));
        }
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut contacts = 0;
                for (row, id) in &customers {
                    let r = s.score_encoded_with(
                        row,
                        Vec::new(),
                        Some(id),
                        churn::scoring::Detail::FULL.on(now),
                    );
                    contacts += usize::from(r.advice.is_some_and(|a| a.contact));
                }
                black_box(contacts)
            })
        });
    }
    g.finish();
}

/// Issue 35: a full answer (probability, segment, reasons, advice, levers: what `POST /v1/score`
/// computes) for 1,000 Telco customers with the Telco playbook, from the single tree, the
/// default model (`auto`: boosted trees on Telco) and a 300-round depth-6 boosted model.
fn full_answer_by_model(
    c: &mut Criterion,
    data: &churn::ingest::CustomerData,
    opts: &TrainOptions,
    table: &churn::io::RawTable,
) {
    use churn::model::ModelChoice;
    let scorer_of = |model: ModelConfig| {
        let dir = tempfile::tempdir().unwrap();
        let o = TrainOptions {
            out_dir: dir.path().to_path_buf(),
            model,
            ..opts.clone()
        };
        train(data.clone(), &o).unwrap();
        Scorer::new(bundle::load(dir.path()).unwrap())
    };
    let models = [
        (
            "tree",
            ModelConfig {
                model: ModelChoice::Tree,
                ..Default::default()
            },
        ),
        ("default_auto", ModelConfig::default()),
        (
            "boosted_300_depth6",
            ModelConfig {
                model: ModelChoice::Boosted,
                search: false,
                boost_rounds: 300,
                boost_max_depth: vec![6],
                boost_learning_rate: vec![0.1],
                ..Default::default()
            },
        ),
    ];
    let now = churn::time::now_ms();
    let mut g = c.benchmark_group("full_answer_by_model_1000_customers");
    g.sample_size(10);
    for (name, model) in models {
        let s = scorer_of(model);
        let trees = s
            .bundle
            .model
            .boosted_trees()
            .map_or(0, |b| b.ensemble.trees.len());
        eprintln!("full_answer_by_model: {name}: {trees} boosted trees");
        let customers = first_customers(&s, table, "full");
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut levers = 0;
                for (row, id) in &customers {
                    let r = s.score_encoded_with(
                        row,
                        Vec::new(),
                        Some(id),
                        churn::scoring::Detail::FULL.on(now),
                    );
                    if r.advice.is_some() {
                        levers += s.levers(row).len();
                    }
                }
                black_box(levers)
            })
        });
        // the two parts a boosted model adds: TreeSHAP reasons and the lever search
        g.bench_function(format!("{name}_reasons_only"), |b| {
            b.iter(|| {
                let mut n = 0;
                for (row, _) in &customers {
                    n += s.top_reasons_with_leaf(row, 0, 3).0.len();
                }
                black_box(n)
            })
        });
        g.bench_function(format!("{name}_levers_only"), |b| {
            b.iter(|| {
                let mut n = 0;
                for (row, _) in &customers {
                    n += s.levers(row).len();
                }
                black_box(n)
            })
        });
    }
    g.finish();
}

/// Tree fits and k-means on 100k synthetic customers (`churn::synth`, 16 numeric + 4 categorical
/// columns → 35 encoded columns).
fn scale_benches(c: &mut Criterion) {
    let data = customer_data(&SynthSpec {
        rows: 100_000,
        ..SynthSpec::default()
    })
    .unwrap();
    let rows: Vec<usize> = (0..data.nrows()).collect();
    let enc = Encoder::fit(&data, &rows, 10);
    let x = enc.transform(&data, &rows).unwrap();
    let w = vec![1.0; rows.len()];
    let params = TreeParams {
        max_depth: 10,
        min_samples_leaf: 1,
        ..TreeParams::default()
    };
    let mut g = c.benchmark_group("fit_tree_100k_depth10");
    g.sample_size(10);
    for name in ["hist", "cart"] {
        let learner = learner_by_name(name).unwrap();
        g.bench_function(name, |b| {
            b.iter(|| black_box(fit_tree(learner, &x, &data.label, &w, &rows, &params).unwrap()))
        });
    }
    g.finish();
    // k-means on the standardised behavioural columns (one run, as the peer script)
    let d = 4;
    let mut z = Vec::with_capacity(rows.len() * d);
    let cols: Vec<&[f64]> = (0..d).map(|c| x.col(c)).collect();
    let stats: Vec<(f64, f64)> = cols
        .iter()
        .map(|c| {
            let m = c.iter().sum::<f64>() / c.len() as f64;
            let v = c.iter().map(|v| (v - m).powi(2)).sum::<f64>() / c.len() as f64;
            (m, v.sqrt().max(1e-12))
        })
        .collect();
    for r in 0..rows.len() {
        for (c, (m, s)) in cols.iter().zip(&stats) {
            z.push((c[r] - m) / s);
        }
    }
    let cfg = SegmentConfig {
        n_runs: 1,
        ..SegmentConfig::default()
    };
    let mut g = c.benchmark_group("kmeans");
    g.sample_size(10);
    g.bench_function("fit_100k_x4_k5", |b| {
        b.iter(|| black_box(kmeans(&z, d, 5, &cfg, 0).unwrap()))
    });
    g.finish();
}

criterion_group!(pipeline, benches, scale_benches);
criterion_main!(pipeline);
