//! `churn-serve`: serve trained bundles over HTTP.

/// mimalloc: glibc malloc serialises worker threads on its arena lock under many small allocations.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use churn::cli::{self, LogFormat};
use churn::server::{self, ServerConfig};
use churn::store::StoreUrl;
use clap::Parser;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "churn-serve",
    version,
    about = "Serve churn models over HTTP (JSON API)"
)]
struct Args {
    /// Directory with one sub-directory per model (NAME/model.bin).
    #[arg(long, env = "CHURN_MODELS", default_value = "models")]
    models: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "CHURN_BIND", default_value = "127.0.0.1:8080")]
    bind: String,
    /// Worker threads (0 = one per core).
    #[arg(long, env = "CHURN_WORKERS", default_value_t = 0)]
    workers: usize,
    /// Default model for POST /v1/score (default: the only model, or `telco`).
    #[arg(long, env = "CHURN_DEFAULT_MODEL")]
    default: Option<String>,
    /// Maximum customers per request.
    #[arg(long, env = "CHURN_MAX_BATCH", default_value_t = 1000)]
    max_batch: usize,
    /// Maximum request body in bytes.
    #[arg(long, env = "CHURN_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Longest field name or text value of a customer in bytes, ids included (longer: 422)
    #[arg(long, env = "CHURN_MAX_FIELD_BYTES", default_value_t = 1024)]
    max_field_bytes: usize,
    /// Log format.
    #[arg(
        long,
        env = "CHURN_LOG_FORMAT",
        value_name = "FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    log_format: LogFormat,
    /// Log raw customer ids (default: hashed).
    #[arg(long, env = "CHURN_LOG_CUSTOMER_IDS")]
    log_customer_ids: bool,
    /// Retention playbook overriding every bundle's own; re-read on each reload.
    #[arg(long, env = "CHURN_PLAYBOOK", value_name = "FILE")]
    playbook: Option<PathBuf>,
    /// Prediction store: sqlite://PATH, postgres://USER@HOST:PORT/DB or none
    /// (default: sqlite://MODELS/store.db).
    #[arg(long, env = "CHURN_STORE", value_name = "URL")]
    store: Option<String>,
    /// Prediction records queued for the store's writer before new ones are dropped (counted).
    #[arg(long, env = "CHURN_STORE_QUEUE", default_value_t = 10_000)]
    store_queue: usize,
}

fn main() {
    let args = Args::parse();
    cli::init_logging(false, args.log_format);
    let store = match &args.store {
        Some(url) => match StoreUrl::parse(url) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: --store: {e}");
                std::process::exit(2);
            }
        },
        None => StoreUrl::default_for(&args.models),
    };
    let api_tokens =
        match server::parse_api_tokens(std::env::var("CHURN_API_TOKENS").ok().as_deref()) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(e.exit_code());
            }
        };
    let config = ServerConfig {
        models_dir: args.models,
        bind: args.bind,
        workers: args.workers,
        default_model: args.default,
        max_batch: args.max_batch,
        max_body_bytes: args.max_body_bytes,
        max_field_bytes: args.max_field_bytes,
        api_tokens,
        admin_token: std::env::var("CHURN_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty()),
        log_customer_ids: args.log_customer_ids,
        playbook: args.playbook,
        store,
        // the key stays out of argv (visible to every user of the machine): environment only
        id_key: std::env::var("CHURN_ID_KEY").ok().filter(|k| !k.is_empty()),
        store_queue: args.store_queue,
    };
    let result = actix_web::rt::System::new().block_on(server::run(config));
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
