//! TLS for `scimlab serve` (rustls, no OpenSSL): a certificate chain and key from PEM files,
//! or a self-signed certificate for localhost generated at start-up, whose SHA-256
//! fingerprint is printed and whose PEM is written beside the database so a client can trust
//! it. Many SCIM client SDKs refuse plain HTTP.

use anyhow::Context as _;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// The names the self-signed certificate is valid for.
const LOCAL_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// A server configuration for this certificate chain and key (HTTP/1.1 only, as served).
fn config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the certificate and the key do not belong together")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Loads a PEM certificate chain (leaf first) and its PEM private key.
pub fn from_files(cert: &Path, key: &Path) -> anyhow::Result<Arc<ServerConfig>> {
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} holds no PEM certificate", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("{} holds no PEM certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("{} holds no PEM private key", key.display()))?;
    config(chain, key)
}

/// A self-signed certificate for localhost: the server configuration, the certificate as PEM
/// (for clients to trust), and its SHA-256 fingerprint (`AB:CD:…`).
pub fn self_signed() -> anyhow::Result<(Arc<ServerConfig>, String, String)> {
    let names: Vec<String> = LOCAL_NAMES.iter().map(|n| n.to_string()).collect();
    let generated =
        rcgen::generate_simple_self_signed(names).context("generating a certificate")?;
    let der = generated.cert.der().clone();
    let fingerprint = fingerprint(&der);
    let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der())
        .map_err(|e| anyhow::anyhow!("the generated key: {e}"))?;
    Ok((config(vec![der], key)?, generated.cert.pem(), fingerprint))
}

/// SHA-256 of a certificate, as browsers and `openssl x509 -fingerprint -sha256` show it.
pub fn fingerprint(der: &[u8]) -> String {
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(der);
    let hex: Vec<String> = hash.iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}
