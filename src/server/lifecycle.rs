//! The server's life beside its requests: signals (SIGHUP reloads; SIGTERM drains, then stops;
//! SIGINT / SIGQUIT stop at once), and `--watch-seconds`, which reloads when another process
//! changed what this server loads.

use super::state::AppState;
use super::ServerConfig;
use actix_web::web;

/// Which signal asked the server to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shutdown {
    /// SIGTERM (an orchestrator): drain first, then stop gracefully.
    Term,
    /// SIGINT (Ctrl-C) or SIGQUIT: stop now.
    Interrupt,
}

/// The signal handlers, registered when the server starts (before it binds): until a handler
/// is registered, SIGTERM or SIGHUP would end the process with nothing flushed.
pub(super) struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    quit: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hangup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Register the handlers (inside the server's runtime).
    pub(super) fn register() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let listen = |kind: SignalKind, name: &str| {
                signal(kind)
                    .inspect_err(|e| tracing::warn!(error = %e, "cannot listen for {name}"))
                    .ok()
            };
            Signals {
                term: listen(SignalKind::terminate(), "SIGTERM"),
                interrupt: listen(SignalKind::interrupt(), "SIGINT"),
                quit: listen(SignalKind::quit(), "SIGQUIT"),
                hangup: listen(SignalKind::hangup(), "SIGHUP"),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The SIGHUP stream, for the reload task.
    #[cfg(unix)]
    pub(super) fn take_hangup(&mut self) -> Option<tokio::signal::unix::Signal> {
        self.hangup.take()
    }

    /// The next stop signal.
    async fn next(&mut self) -> Shutdown {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                () = recv(&mut self.term) => Shutdown::Term,
                () = recv(&mut self.interrupt) => Shutdown::Interrupt,
                () = recv(&mut self.quit) => Shutdown::Interrupt,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Shutdown::Interrupt
        }
    }
}

/// SIGTERM: drain (`/readyz` 503, requests still answered, connections closed after their
/// answer) for the drain period, then stop accepting and let requests under way finish. SIGINT
/// or SIGQUIT, or a second signal during the drain, stops at once. A signal while stopping
/// exits the process (exit code 130) without waiting for requests or the store.
pub(super) fn spawn_shutdown(
    state: web::Data<AppState>,
    handle: actix_web::dev::ServerHandle,
    mut signals: Signals,
) {
    actix_web::rt::spawn(async move {
        let first = signals.next().await;
        let drain = state.config.drain;
        let mut graceful = first == Shutdown::Term;
        if graceful && !drain.is_zero() {
            state
                .draining
                .store(true, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(seconds = drain.as_secs_f64(), "SIGTERM: draining");
            tokio::select! {
                () = tokio::time::sleep(drain) => {}
                _ = signals.next() => {
                    tracing::info!("second signal: stopping now");
                    graceful = false;
                }
            }
        }
        tracing::info!(graceful, "stopping: no new connections");
        tokio::select! {
            () = handle.stop(graceful) => {}
            _ = signals.next() => {
                tracing::warn!("signal while stopping: exiting now");
                std::process::exit(130);
            }
        }
    });
}

/// SIGHUP reloads the models; a failing reload is logged and the handler keeps listening.
#[cfg(unix)]
pub(super) fn spawn_sighup_reload(
    state: web::Data<AppState>,
    mut hup: tokio::signal::unix::Signal,
) {
    actix_web::rt::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading models");
            if let Err(e) = state.clone().into_inner().reload_blocking().await {
                tracing::error!(error = %e, "reload failed");
            }
        }
    });
}

/// What the server loads from files: the model directory's fingerprint and the override
/// playbook's size and times (a ConfigMap update swaps the file behind a link).
pub(super) async fn files_stamp(config: &ServerConfig) -> u64 {
    use std::hash::{Hash, Hasher};
    let dir = config.models_dir.clone();
    let playbook = config.playbook.clone();
    actix_web::rt::task::spawn_blocking(move || {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        crate::bundle::registry::fingerprint(&dir).hash(&mut h);
        if let Some(p) = playbook {
            crate::bundle::registry::file_stamp(&p).hash(&mut h);
        }
        h.finish()
    })
    .await
    .unwrap_or(0)
}

/// What the server loads, as seen from outside: the files' stamp and the store's learned-rates
/// stamp (`None` where it cannot be read: no change is assumed).
async fn served_stamp(state: &AppState) -> (u64, Option<(i64, i64)>) {
    let files = files_stamp(&state.config).await;
    let rates = match (&state.store, state.config.learned_rates) {
        (Some(store), true) => store.learned_rates_stamp().await.ok(),
        _ => None,
    };
    (files, rates)
}

/// `--watch-seconds`: every period, reload when the files or the learned rates changed since
/// the last look (`files_before`: the files' stamp taken before the models were loaded). A
/// failed reload is logged and tried again after the next change; the loaded models keep
/// serving.
pub(super) fn spawn_watch(state: web::Data<AppState>, files_before: u64) {
    actix_web::rt::spawn(async move {
        let period = state.config.watch;
        let mut last = served_stamp(&state).await;
        last.0 = files_before;
        loop {
            let now = served_stamp(&state).await;
            let changed = now.0 != last.0 || (now.1.is_some() && now.1 != last.1);
            if changed {
                tracing::info!("models, playbook or learned rates changed: reloading");
                if let Err(e) = state.clone().into_inner().reload_blocking().await {
                    tracing::error!(error = %e, "reload failed");
                }
                last = now;
            }
            actix_web::rt::time::sleep(period).await;
        }
    });
}
