//! bedrud: the control plane of a self-hosted video-meeting service around LiveKit.
//!
//! `config` reads settings, `store` keeps state in one redb file, `auth` and `accounts` handle
//! users and sessions, `oidc`, `passkeys` and `mail` the other ways to sign in and the mail
//! that goes with them, `rooms` the rooms, `meeting` who gets into a meeting and who speaks,
//! `recording` records rooms, `http` serves the API, `livekit` talks to LiveKit and configures
//! livekit-server, `supervise` runs child processes (livekit-server and the recording's helpers),
//! `systemd` speaks sd_notify, `daemon` wires them together and `cli` is the command line. `acme`
//! obtains certificates, `setup` makes the first administrator, and `doctor` checks an
//! installation against the known troubleshooting rows.

pub mod accounts;
pub mod acme;
pub mod auth;
pub mod certs;
pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod doctor;
pub mod error;
pub mod fuzzing;
pub mod http;
pub mod livekit;
pub mod logging;
pub mod mail;
pub mod meeting;
pub mod metrics;
pub mod oidc;
pub mod passkeys;
pub mod recording;
pub mod redis;
pub mod rooms;
pub mod setup;
pub mod store;
pub mod supervise;
pub mod systemd;
