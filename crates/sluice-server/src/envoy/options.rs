//! The `envoy:` block of the configuration: how ShouldRateLimit answers,
//! with envoyproxy/ratelimit's settings under their own names.

use sluice::OnStoreError;

/// How ShouldRateLimit answers (the `envoy:` block).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct EnvoyOptions {
    /// Domains spread over several files are merged (envoyproxy/ratelimit's
    /// `MERGE_DOMAIN_CONFIG`); otherwise a domain loaded twice is an error.
    pub merge_domains: bool,
    /// Every answer is OK; breaches are still counted (its `SHADOW_MODE`).
    pub shadow_mode: bool,
    /// What to answer when the store cannot decide: `deny` (UNAVAILABLE,
    /// so that Envoy's `failure_mode_deny` decides), `allow`, or `local`
    /// (this process's memory decides).
    pub on_store_error: OnStoreError,
    /// Which rate-limit headers the answer asks Envoy to add.
    pub response_headers: ResponseHeaders,
    /// Whether a rejection names the rule that rejected it in the answer's
    /// dynamic metadata.
    pub dynamic_metadata: bool,
    /// The share of a limit past which hits count as `near_limit` (its
    /// `NEAR_LIMIT_RATIO`), from 0 to 1.
    pub near_limit_ratio: f32,
}

impl Default for EnvoyOptions {
    fn default() -> EnvoyOptions {
        EnvoyOptions {
            merge_domains: false,
            shadow_mode: false,
            on_store_error: OnStoreError::Deny,
            response_headers: ResponseHeaders::Draft,
            dynamic_metadata: false,
            near_limit_ratio: 0.8,
        }
    }
}

impl EnvoyOptions {
    /// The same options with `response_headers`.
    pub fn with_response_headers(mut self, headers: ResponseHeaders) -> EnvoyOptions {
        self.response_headers = headers;
        self
    }

    /// The same options with the global shadow mode `on`.
    pub fn with_shadow_mode(mut self, on: bool) -> EnvoyOptions {
        self.shadow_mode = on;
        self
    }

    /// The same options answering `mode` when the store fails.
    pub fn with_on_store_error(mut self, mode: OnStoreError) -> EnvoyOptions {
        self.on_store_error = mode;
        self
    }

    /// The same options with dynamic metadata `on`.
    pub fn with_dynamic_metadata(mut self, on: bool) -> EnvoyOptions {
        self.dynamic_metadata = on;
        self
    }

    /// The same options with domains merged across files when `on`.
    pub fn with_merge_domains(mut self, on: bool) -> EnvoyOptions {
        self.merge_domains = on;
        self
    }

    /// The same options with `ratio` as the near-limit ratio.
    pub fn with_near_limit_ratio(mut self, ratio: f32) -> EnvoyOptions {
        self.near_limit_ratio = ratio;
        self
    }
}

/// Which rate-limit headers an answer carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseHeaders {
    /// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` of the
    /// most restrictive limit (envoyproxy/ratelimit's headers).
    #[default]
    Draft,
    /// Those, and the IETF draft's structured `RateLimit-Policy` and
    /// `RateLimit` fields.
    Ietf,
    /// None.
    Off,
}

impl ResponseHeaders {
    /// Every mode, as written in the configuration.
    pub const NAMES: &'static str = "draft, ietf or off";

    /// The mode named `text` (`draft`, `ietf` or `off`).
    pub fn parse(text: &str) -> Option<ResponseHeaders> {
        match text {
            "draft" => Some(ResponseHeaders::Draft),
            "ietf" => Some(ResponseHeaders::Ietf),
            "off" => Some(ResponseHeaders::Off),
            _ => None,
        }
    }
}
