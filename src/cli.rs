//! Shared command-line plumbing for the binaries: data-source flags, config merging, exit codes
//! and logging setup. (The front-end layer: `anyhow` is used here and in `src/bin` only.)

use crate::config::{Config, ConfigError};
use crate::ingest::{CustomerTableSpec, IngestError, Source, TransactionSpec};
use clap::Args;
use std::path::PathBuf;

/// The example config trained when `churn-train` runs without data flags.
pub const DEFAULT_CONFIG: &str = "training/telco.toml";

/// Flags that select and describe the input data (shared by `churn-train` and `churn-train features`).
#[derive(Debug, Clone, Default, Args)]
pub struct DataArgs {
    /// TOML config file (flags override its values).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Customer table (CSV, CSV.gz, TSV or Parquet).
    #[arg(long, value_name = "FILE", conflicts_with = "transactions")]
    pub data: Option<PathBuf>,
    /// Label column of the customer table.
    #[arg(long, value_name = "COL")]
    pub label: Option<String>,
    /// Label value meaning churn (inferred from 1/yes/true/churned... when absent).
    #[arg(long, value_name = "VALUE")]
    pub positive: Option<String>,
    /// Id column.
    #[arg(long, value_name = "COL")]
    pub id: Option<String>,
    /// Columns to ignore, comma-separated.
    #[arg(long, value_name = "COL,...", value_delimiter = ',')]
    pub drop: Vec<String>,
    /// Type overrides, e.g. `SeniorCitizen=categorical,tenure=numeric`.
    #[arg(long = "type", value_name = "COL=KIND", value_delimiter = ',')]
    pub types: Vec<String>,
    /// Transaction log (CSV, CSV.gz, TSV or Parquet).
    #[arg(long, value_name = "FILE")]
    pub transactions: Option<PathBuf>,
    /// Customer id column of the transaction log.
    #[arg(long, value_name = "COL")]
    pub customer_col: Option<String>,
    /// Timestamp column of the transaction log.
    #[arg(long, value_name = "COL")]
    pub time_col: Option<String>,
    /// Amount column of the transaction log.
    #[arg(long, value_name = "COL")]
    pub amount_col: Option<String>,
    /// Quantity column of the transaction log.
    #[arg(long, value_name = "COL")]
    pub quantity_col: Option<String>,
    /// The amount column is a unit price: amount = quantity × price.
    #[arg(long)]
    pub unit_price: bool,
    /// Order (invoice) id column of the transaction log: the lines of one order are one purchase
    /// (without it, a customer's rows at the same timestamp are one purchase).
    #[arg(long, value_name = "COL")]
    pub order_col: Option<String>,
    /// Training cutoff YYYY-MM-DD: features before it, label from the horizon after it
    /// (default: day after the last event minus the horizon).
    #[arg(long, value_name = "DATE")]
    pub cutoff: Option<String>,
    /// Label horizon in days (default 90).
    #[arg(long, value_name = "N")]
    pub horizon_days: Option<u32>,
    /// Trend window in days (default 90).
    #[arg(long, value_name = "N")]
    pub window_days: Option<u32>,
}

impl DataArgs {
    /// True when no data-selecting flag was given.
    pub fn is_empty(&self) -> bool {
        self.config.is_none() && self.data.is_none() && self.transactions.is_none()
    }

    /// Load the config (explicit, or the bundled example when nothing is given) and apply flags.
    pub fn resolve(&self) -> Result<(Config, Source), CliError> {
        let mut cfg = self.base_config()?;
        self.select_input(&mut cfg);
        let source = match (cfg.data.clone(), cfg.transactions.clone()) {
            (Some(d), None) => Source::Table(self.table_spec(d)?),
            (None, Some(t)) => Source::Transactions(self.transaction_spec(t)),
            (Some(_), Some(_)) => {
                return Err(CliError::Usage(
                    "the config has both [data] and [transactions]; keep one".into(),
                ))
            }
            (None, None) => {
                return Err(CliError::Usage(
                    "no input: give --data FILE, --transactions FILE, or a config with [data] or [transactions]".into(),
                ))
            }
        };
        Ok((cfg, source))
    }

    /// The transaction-log spec of `--config` (its `[transactions]`) or of the flags alone, for
    /// work that names the log's columns without reading a file (the SQL feature query).
    pub fn transaction_columns(&self) -> Result<crate::ingest::TransactionSpec, CliError> {
        let base = match &self.config {
            Some(p) => Config::load(p)?.transactions.ok_or_else(|| {
                CliError::Usage(format!(
                    "{}: no [transactions] section; the SQL feature query is for transaction logs",
                    p.display()
                ))
            })?,
            None => TransactionSpec::default(),
        };
        if self.data.is_some() {
            return Err(CliError::Usage(
                "--data is a customer table; the SQL feature query is for transaction logs".into(),
            ));
        }
        Ok(self.transaction_spec(base))
    }

    /// The config file named, else the defaults (training from the store: no input file).
    pub fn config_only(&self) -> Result<Config, CliError> {
        match &self.config {
            Some(p) => Ok(Config::load(p)?),
            None => Ok(Config::default()),
        }
    }

    /// The config file named, the bundled example when no input is given, else the defaults.
    fn base_config(&self) -> Result<Config, CliError> {
        if let Some(p) = &self.config {
            return Ok(Config::load(p)?);
        }
        if self.data.is_some() || self.transactions.is_some() {
            return Ok(Config::default());
        }
        let p = PathBuf::from(DEFAULT_CONFIG);
        if !p.exists() {
            return Err(CliError::Usage(format!(
                "no input given and the example config {DEFAULT_CONFIG} is not here; pass --data FILE --label COL, --transactions FILE ..., or --config FILE"
            )));
        }
        Ok(Config::load(&p)?)
    }

    /// `--data` / `--transactions` replace the config's input (and drop the other kind).
    fn select_input(&self, cfg: &mut Config) {
        if let Some(path) = &self.data {
            cfg.transactions = None;
            cfg.data = Some(CustomerTableSpec {
                path: path.clone(),
                ..cfg.data.take().unwrap_or_default()
            });
        }
        if let Some(path) = &self.transactions {
            cfg.data = None;
            cfg.transactions = Some(TransactionSpec {
                path: path.clone(),
                ..cfg.transactions.take().unwrap_or_default()
            });
        }
    }

    /// The customer-table spec with the flags applied.
    fn table_spec(&self, mut d: CustomerTableSpec) -> Result<CustomerTableSpec, CliError> {
        if let Some(v) = &self.label {
            d.label = v.clone();
        }
        if self.positive.is_some() {
            d.positive = self.positive.clone();
        }
        if self.id.is_some() {
            d.id = self.id.clone();
        }
        if !self.drop.is_empty() {
            d.drop = self.drop.clone();
        }
        for t in &self.types {
            let (col, kind) = parse_type_override(t)?;
            d.types.insert(col, kind);
        }
        if d.label.is_empty() {
            return Err(CliError::Usage(
                "a customer table needs --label COL (or data.label in the config)".into(),
            ));
        }
        Ok(d)
    }

    /// The transaction-log spec with the flags applied.
    fn transaction_spec(&self, mut t: TransactionSpec) -> TransactionSpec {
        let set = |dst: &mut String, v: &Option<String>| {
            if let Some(v) = v {
                *dst = v.clone();
            }
        };
        set(&mut t.customer_col, &self.customer_col);
        set(&mut t.time_col, &self.time_col);
        set(&mut t.amount_col, &self.amount_col);
        if self.quantity_col.is_some() {
            t.quantity_col = self.quantity_col.clone();
        }
        if self.order_col.is_some() {
            t.order_col = self.order_col.clone();
        }
        if self.unit_price {
            t.unit_price = true;
        }
        if self.cutoff.is_some() {
            t.cutoff = self.cutoff.clone();
        }
        if let Some(h) = self.horizon_days {
            t.horizon_days = h;
        }
        if let Some(w) = self.window_days {
            t.window_days = w;
        }
        t
    }
}

/// `COL=KIND` of `--type`.
fn parse_type_override(t: &str) -> Result<(String, crate::ingest::ColumnTypeOverride), CliError> {
    use crate::ingest::ColumnTypeOverride as K;
    let (col, kind) = t
        .split_once('=')
        .ok_or_else(|| CliError::Usage(format!("--type expects COL=KIND, got '{t}'")))?;
    let kind = match kind.trim() {
        "numeric" => K::Numeric,
        "categorical" => K::Categorical,
        "boolean" => K::Boolean,
        other => {
            return Err(CliError::Usage(format!(
                "--type {col}: unknown kind '{other}' (numeric, categorical or boolean)"
            )))
        }
    };
    Ok((col.trim().to_string(), kind))
}

/// Errors at the command-line edge, sorted by exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad usage (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Bad configuration (exit 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Bad input data (exit 2).
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

impl CliError {
    /// Process exit code: usage, configuration and input problems are all 2.
    pub fn exit_code(&self) -> i32 {
        2
    }
}

/// Who runs this command (`$USER`, else `$LOGNAME`, else `unknown`), with `reason`: the author
/// of a registry change.
pub fn author(reason: String) -> crate::bundle::registry::Author {
    let by = ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into());
    crate::bundle::registry::Author { by, reason }
}

/// Exit code for an error chain: the first error of a library layer in the chain decides (each
/// layer's `exit_code()`: 2 for bad input or usage, 1 for internal failures); 1 when none is found.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    err.chain().find_map(layer_exit_code).unwrap_or(1)
}

/// The exit code of `e` when it is one of the library's layer errors.
fn layer_exit_code(e: &(dyn std::error::Error + 'static)) -> Option<i32> {
    macro_rules! first_layer {
        ($($t:ty),* $(,)?) => {
            $(if let Some(x) = e.downcast_ref::<$t>() {
                return Some(x.exit_code());
            })*
        };
    }
    first_layer!(
        CliError,
        ConfigError,
        IngestError,
        crate::init::InitError,
        crate::io::IoError,
        crate::features::EncodeError,
        crate::model::ModelError,
        crate::segment::SegmentError,
        crate::playbook::PlaybookError,
        crate::train::TrainError,
        crate::bundle::BundleError,
        crate::bundle::registry::RegistryError,
        crate::report::ReportError,
        crate::scoring::ScoreError,
        crate::scoring::ColumnError,
        crate::server::ServerError,
        crate::store::StoreError,
        crate::evaluate::EvalError,
        crate::export::ExportError,
    );
    None
}

/// Print an error chain the way every binary does and return its exit code.
pub fn report(err: &anyhow::Error) -> i32 {
    eprintln!("error: {err:#}");
    exit_code(err)
}

/// Log output format (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Compact human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (structured logs).
    Json,
}

/// Set up `tracing` output on stderr in `format`; `RUST_LOG` overrides the level.
pub fn init_logging(quiet: bool, format: LogFormat) {
    let default = if quiet { "warn" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // sqlx logs the database's own notices (`relation "_sqlx_migrations" already exists`)
        // and actix-server its workers starting and stopping at info: library internals, not
        // the service's news (the server logs its own start, reloads and shutdown)
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(format!("{default},sqlx=warn,actix_server=warn"))
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.compact().try_init(),
    };
}
