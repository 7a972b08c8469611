//! The one integration-test binary: real components, a real sled store in a temp dir, real loopback HTTP.

mod agent;
mod cache;
mod cli;
mod examples;
mod extensions;
mod hardening;
mod hostile;
mod hostile_grants;
mod languages;
mod loading;
mod mcp;
mod mcp_client;
mod mcp_python;
mod mock_llm;
mod providers;
mod quotas;
mod schema_attacks;
mod serve;
mod sessions;
mod support;
mod terminal;
mod tiers;
