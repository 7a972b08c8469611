//! The TLS crypto provider for `https://` MCP servers: rustls with ring (the provider the LLM client already uses), installed once per process.

/// Installs ring as the process's rustls provider, unless one is set. The
/// client does this before its first HTTP connection; an embedder that
/// builds rmcp's HTTP transport itself calls it first.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    });
}
