//! sd_notify, done completely: READY with STATUS, WATCHDOG from the main loop, RELOADING with
//! MONOTONIC_USEC, EXTEND_TIMEOUT_USEC while LiveKit starts, STOPPING. Without NOTIFY_SOCKET
//! every call is a no-op. NOTIFY_SOCKET is never unset, so the child never inherits it either
//! way (the child gets a minimal environment).

use std::time::Duration;

use sd_notify::NotifyState;

#[derive(Clone, Copy)]
pub struct Notifier {
    enabled: bool,
}

impl Notifier {
    pub fn from_env() -> Self {
        Self { enabled: std::env::var_os("NOTIFY_SOCKET").is_some() }
    }

    fn send(&self, states: &[NotifyState]) {
        if self.enabled {
            if let Err(e) = sd_notify::notify(states) {
                tracing::warn!(error = %e, "sd_notify failed");
            }
        }
    }

    pub fn status(&self, s: &str) {
        tracing::debug!(status = %s, "status");
        self.send(&[NotifyState::Status(s)]);
    }

    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    pub fn reloading(&self) {
        match NotifyState::monotonic_usec_now() {
            Ok(m) => self.send(&[NotifyState::Reloading, m, NotifyState::Status("reloading configuration")]),
            Err(_) => self.send(&[NotifyState::Reloading, NotifyState::Status("reloading configuration")]),
        }
    }

    pub fn stopping(&self, status: &str) {
        self.send(&[NotifyState::Stopping, NotifyState::Status(status)]);
    }

    pub fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }

    /// Asks systemd for `d` more before it gives up on the start.
    pub fn extend_timeout(&self, d: Duration) {
        let usec = u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
        self.send(&[NotifyState::ExtendTimeoutUsec(usec)]);
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }
}

/// Half the watchdog period when systemd asks for one (`WATCHDOG_USEC` for this process).
pub fn watchdog_period() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|d| d / 2).filter(|d| !d.is_zero())
}
