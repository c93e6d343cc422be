//! `churn-serve`: serve trained bundles over HTTP.

/// mimalloc: glibc malloc serialises worker threads on its arena lock under many small allocations.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Hand the calling thread's free mimalloc pages back to the OS (after an evaluation).
#[allow(unsafe_code)]
fn release_memory() {
    // SAFETY: mi_collect only walks the calling thread's heap and the shared segment cache
    unsafe { libmimalloc_sys::mi_collect(true) }
}

use churn::cli::{self, LogFormat};
use churn::server::{self, ServerConfig};
use churn::store::StoreUrl;
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Rank actions with the playbook's save rates even where `churn-train evaluate` has
    /// learned others (default: learned rates with enough evidence are used).
    #[arg(long)]
    no_learned_rates: bool,
    /// Maximum customers per request.
    #[arg(long, env = "CHURN_MAX_BATCH", default_value_t = 1000)]
    max_batch: usize,
    /// Maximum request body in bytes.
    #[arg(long, env = "CHURN_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Longest field name or text value of a customer in bytes, ids included (longer: 422)
    #[arg(long, env = "CHURN_MAX_FIELD_BYTES", default_value_t = 1024)]
    max_field_bytes: usize,
    /// Seconds a request body has to arrive whole (slower: 408 and the connection is closed).
    #[arg(
        long,
        env = "CHURN_BODY_TIMEOUT",
        value_name = "SECS",
        default_value_t = 30
    )]
    body_timeout: u64,
    /// Seconds a client has to send the request line and headers.
    #[arg(
        long,
        env = "CHURN_HEADER_TIMEOUT",
        value_name = "SECS",
        default_value_t = 5
    )]
    header_timeout: u64,
    /// Seconds an idle keep-alive connection stays open.
    #[arg(
        long,
        env = "CHURN_KEEP_ALIVE",
        value_name = "SECS",
        default_value_t = 5
    )]
    keep_alive: u64,
    /// Open connections across all workers; further ones wait in the accept queue.
    #[arg(long, env = "CHURN_MAX_CONNECTIONS", default_value_t = 1024)]
    max_connections: usize,
    /// Bytes all request bodies still arriving may hold together (more: 503 server_busy).
    #[arg(long, env = "CHURN_MAX_PENDING_BODY_BYTES", default_value_t = 64 * 1024 * 1024)]
    max_pending_body_bytes: usize,
    /// Seconds a reload has to finish; after that the loaded models keep serving.
    #[arg(
        long,
        env = "CHURN_RELOAD_TIMEOUT",
        value_name = "SECS",
        default_value_t = 60
    )]
    reload_timeout: u64,
    /// On SIGTERM, seconds `/readyz` answers 503 while requests are still served (so a load
    /// balancer stops sending new ones) before the server stops accepting; then requests under
    /// way finish and queued predictions are stored. Ctrl-C (SIGINT), SIGQUIT or a second
    /// signal stops at once.
    #[arg(
        long,
        env = "CHURN_DRAIN_SECONDS",
        value_name = "SECS",
        default_value_t = 0
    )]
    drain_seconds: u64,
    /// Every SECS, reload when another process changed what this server loads: a promotion on
    /// another replica, a version or uplift bundle written by churn-train, learned rates stored
    /// by an evaluation, a new --playbook file (0: only on SIGHUP or POST /v1/admin/reload).
    #[arg(
        long,
        env = "CHURN_WATCH_SECONDS",
        value_name = "SECS",
        default_value_t = 0
    )]
    watch_seconds: u64,
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
    /// How each model's `challenger` alias runs beside its champion: off; shadow (scored on
    /// every request off the response path and stored, never returned); or canary:SHARE (that
    /// share of customers, by a stable hash of their id, gets its answer).
    #[arg(
        long,
        env = "CHURN_CHALLENGER",
        value_name = "MODE",
        default_value = "off"
    )]
    challenger: churn::server::challenger::ChallengerMode,
    /// Customers queued for the shadow challenger before new ones are dropped (counted).
    #[arg(long, env = "CHURN_SHADOW_QUEUE", default_value_t = 10_000)]
    shadow_queue: usize,
    /// Write this server's process id to FILE (removed on exit), so a reload by signal is
    /// `kill -HUP "$(cat FILE)"` and reaches this server only; refused while it names a
    /// running churn-serve.
    #[arg(long, env = "CHURN_PID_FILE", value_name = "FILE")]
    pid_file: Option<std::path::PathBuf>,
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
    let api_tokens = match server::api_tokens_from_env(|name| std::env::var(name).ok()) {
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
        challenger: args.challenger,
        shadow_queue: args.shadow_queue,
        body_timeout: Duration::from_secs(args.body_timeout),
        header_timeout: Duration::from_secs(args.header_timeout),
        keep_alive: Duration::from_secs(args.keep_alive),
        max_connections: args.max_connections,
        max_pending_body_bytes: args.max_pending_body_bytes,
        reload_timeout: Duration::from_secs(args.reload_timeout),
        drain: Duration::from_secs(args.drain_seconds),
        watch: Duration::from_secs(args.watch_seconds),
        learned_rates: !args.no_learned_rates,
        release_memory,
    };
    let pid_file = match args.pid_file.as_deref().map(PidFile::create).transpose() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: --pid-file: {e}");
            std::process::exit(2);
        }
    };
    let result = actix_web::rt::System::new().block_on(server::run(config));
    drop(pid_file);
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}

/// A pid file that holds this process's id while it runs.
struct PidFile(std::path::PathBuf);

impl PidFile {
    /// Write our pid to `path`, unless a live process's pid is there already.
    fn create(path: &std::path::Path) -> Result<PidFile, String> {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(pid) = text.trim().parse::<u32>() {
                // a live churn-serve: a stale file (after a kill -9 or a reboot) may name
                // a pid some other program has since been given
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if pid != std::process::id() && comm.trim() == "churn-serve" {
                    return Err(format!(
                        "{} holds the pid of a running churn-serve ({pid}): stop it, or give another file",
                        path.display()
                    ));
                }
            }
        }
        churn::util::write_atomic(path, format!("{}\n", std::process::id()).as_bytes())
            .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
        Ok(PidFile(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
