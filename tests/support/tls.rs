//! Self-signed certificate + rustls server config for `TestServer::builder().tls()`.

use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// DNS names / IPs the self-signed certificate is valid for.
pub const CERT_NAMES: [&str; 4] = ["localhost", "127.0.0.1", "a.test", "b.test"];

/// A freshly generated self-signed certificate (one per TLS server).
#[derive(Debug, Clone)]
pub struct TestCert {
    /// Certificate, DER.
    pub der: Vec<u8>,
    /// Certificate, PEM (`-----BEGIN CERTIFICATE-----`).
    pub pem: String,
    key_pkcs8_der: Vec<u8>,
}

impl TestCert {
    /// Generates a new ECDSA P-256 self-signed certificate for [`CERT_NAMES`].
    pub fn generate() -> Self {
        let names: Vec<String> = CERT_NAMES.iter().map(|s| s.to_string()).collect();
        let ck = rcgen::generate_simple_self_signed(names).expect("rcgen: self-signed cert");
        TestCert {
            der: ck.cert.der().to_vec(),
            pem: ck.cert.pem(),
            key_pkcs8_der: ck.signing_key.serialize_der(),
        }
    }

    /// rustls server config with ALPN `h2` (unless `http1_only`) and `http/1.1`.
    pub(super) fn server_config(&self, alpn_h2: bool, alpn_h1: bool) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8_der.clone()));
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("rustls: protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(self.der.clone())], key)
            .expect("rustls: server cert");
        if alpn_h2 {
            cfg.alpn_protocols.push(b"h2".to_vec());
        }
        if alpn_h1 {
            cfg.alpn_protocols.push(b"http/1.1".to_vec());
        }
        Arc::new(cfg)
    }
}
