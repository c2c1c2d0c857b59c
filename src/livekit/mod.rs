//! Everything about LiveKit: the API client, join tokens, the webhook receiver, the reconciler,
//! and (embedded mode) finding, configuring and supervising the `livekit-server` child.

pub mod binary;
pub mod client;
pub mod cluster;
pub mod configgen;
pub mod http;
pub mod nodeip;
pub mod status;
pub mod supervisor;
pub mod reconciler;
pub mod token;
pub mod webhook;

/// LiveKit API key and secret: from the config, or generated once and kept in the store.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeys {
    pub key: String,
    pub secret: String,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys").field("key", &self.key).field("secret", &"<redacted>").finish()
    }
}
