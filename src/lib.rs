//! bedrud: the control plane of a self-hosted video-meeting service around LiveKit.
//!
//! `config` reads settings, `store` keeps state in one redb file, `auth` handles accounts and
//! sessions, `http` serves the API, `livekit` talks to and supervises livekit-server, `systemd`
//! speaks sd_notify, `daemon` wires them together and `cli` is the command line.

pub mod config;
