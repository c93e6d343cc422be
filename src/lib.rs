//! # churn — churn prediction and retention service
//!
//! The crate reads as the pipeline:
//!
//! 1. [`io`] — CSV / Parquet files through polars into raw columns;
//! 2. [`ingest`] — customer tables and transaction logs → validated [`ingest::CustomerData`]
//!    plus a data-quality report;
//! 3. [`features`] — the encoder (imputation, one-hot) shared by training and scoring;
//! 4. [`model`] — learners, the compiled tree, calibration, metrics, CV search, threshold;
//!    [`segment`] — k-means segments, RFM classes, lifecycle stages;
//!    [`playbook`] — retention actions, rules, risk bands, control group;
//! 5. [`train`] — the training pipeline writing the [`bundle`] and the model card;
//! 6. [`scoring`] — the scoring core used by every front end; [`store`] — the prediction log,
//!    outcomes and the read paths over SQLite or PostgreSQL; [`report`] — the HTML model report;
//! 7. front ends: the `churn-train`, `churn-score` and `churn-serve` binaries and [`server`].
//!
//! Underneath every layer: [`util`] and [`time`] (the one parser of date and time text, the
//! civil calendar and the date formatters).

pub mod bundle;
pub mod cli;
pub mod config;
pub mod evaluate;
pub mod export;
pub mod features;
pub mod ingest;
pub mod init;
pub mod io;
pub mod model;
pub mod playbook;
pub mod report;
pub mod scoring;
pub mod segment;
pub mod server;
pub mod store;
pub mod synth;
pub mod time;
pub mod train;
pub mod util;
