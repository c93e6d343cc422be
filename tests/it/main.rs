//! The integration tests, as one test binary (`cargo test --test it`): linking the crate with
//! polars and actix once instead of once per file keeps the build fast.

// a scenario test reads top to bottom as one story (train, serve, score, look up, assert): the
// library's 100-line limit does not apply to tests
#![allow(clippy::too_many_lines)]

mod util;

mod boost;
mod challenger;
mod cli;
mod client;
mod compare;
mod decisions;
mod deploy;
mod evaluation;
mod export_boosted;
mod export_sql;
mod faults;
mod hardening;
mod hostile;
mod ingest;
mod init;
mod layers;
mod learners;
mod model;
mod playbook;
mod properties;
mod readme;
mod registry;
mod replicas;
mod report;
mod retrain;
mod segments;
mod server;
mod shap;
mod store;
mod timestamps;
mod uplift;
mod waves;
