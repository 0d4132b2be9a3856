//! SIGINT (Ctrl-C), SIGTERM (`timeout`, cron, systemd) and SIGHUP (a closed
//! terminal), handled the same way for the whole process: a running
//! statement is cancelled (its output's temporary file removed, exit
//! 128 + the signal's number); with none running, the process exits at
//! once with that code. The handlers are installed once, at start: a
//! handler installed only while a statement streams would stay installed
//! afterwards (tokio never removes one) and swallow later signals.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use tokio::sync::watch;

use crate::error::Signal;

/// The last signal received while a statement ran.
static STOPS: OnceLock<watch::Sender<Option<Signal>>> = OnceLock::new();
/// Statements running now.
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// Installs the handlers; call once, inside the runtime.
pub fn install() {
    let (tx, _) = watch::channel(None);
    if STOPS.set(tx).is_err() {
        return;
    }
    use tokio::signal::unix::{signal, SignalKind};
    for (kind, which) in [
        (SignalKind::interrupt(), Signal::Interrupt),
        (SignalKind::terminate(), Signal::Terminate),
        (SignalKind::hangup(), Signal::Hangup),
    ] {
        let Ok(mut stream) = signal(kind) else {
            continue; // the signal keeps its default action
        };
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                if RUNNING.load(Ordering::SeqCst) == 0 {
                    std::process::exit(128 + which as i32);
                }
                if let Some(tx) = STOPS.get() {
                    tx.send_replace(Some(which));
                }
            }
        });
    }
}

/// A statement running: while it lives, a signal cancels it instead of
/// ending the process.
pub struct Running {
    stops: Option<watch::Receiver<Option<Signal>>>,
}

impl Running {
    pub fn start() -> Self {
        RUNNING.fetch_add(1, Ordering::SeqCst);
        let stops = STOPS.get().map(|tx| {
            tx.send_replace(None);
            tx.subscribe()
        });
        Self { stops }
    }

    /// The signal that stops this statement; never resolves without
    /// installed handlers.
    pub async fn stopped(&mut self) -> Signal {
        if let Some(rx) = &mut self.stops {
            loop {
                if let Some(signal) = *rx.borrow_and_update() {
                    return signal;
                }
                if rx.changed().await.is_err() {
                    break;
                }
            }
        }
        std::future::pending().await
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::SeqCst);
    }
}
