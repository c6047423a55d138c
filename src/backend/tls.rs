//! TLS configuration: rustls with the ring provider.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, ErrorKind};

/// A trusted root certificate, added with
/// [`BackendBuilder::add_root_certificate`](super::BackendBuilder::add_root_certificate).
#[derive(Clone)]
pub struct Certificate {
    der: CertificateDer<'static>,
}

impl Certificate {
    /// A certificate from its DER encoding.
    pub fn from_der(der: impl Into<Vec<u8>>) -> Self {
        Certificate {
            der: CertificateDer::from(der.into()),
        }
    }

    /// Every certificate in a PEM document. A document with none, or a malformed one, is a
    /// [`Config`](ErrorKind::Config) error.
    pub fn from_pem_bundle(pem: &[u8]) -> Result<Vec<Self>, Error> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .map(|r| r.map(|der| Certificate { der }))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                Error::new(ErrorKind::Config).with_message(format!("invalid PEM certificate: {e}"))
            })?;
        if certs.is_empty() {
            return Err(Error::config("no certificate found in PEM input"));
        }
        Ok(certs)
    }

    /// The first certificate of a PEM document.
    pub fn from_pem(pem: &[u8]) -> Result<Self, Error> {
        Ok(Self::from_pem_bundle(pem)?.remove(0))
    }
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Certificate({} bytes DER)", self.der.len())
    }
}

pub(crate) struct TlsOptions {
    pub(crate) built_in_roots: bool,
    #[cfg_attr(not(feature = "native-roots"), allow(dead_code))]
    pub(crate) native_roots: bool,
    pub(crate) extra_roots: Vec<Certificate>,
    pub(crate) accept_invalid_certs: bool,
    /// How many servers' TLS session tickets to keep (0: no resumption).
    pub(crate) session_cache_hosts: usize,
}

/// The default of [`BackendBuilder::tls_session_cache`](super::BackendBuilder::tls_session_cache):
/// session tickets are kept for this many servers.
pub const DEFAULT_TLS_SESSION_CACHE: usize = 1024;

/// rustls keeps up to this many TLS 1.3 tickets per server in its in-memory cache, and sizes
/// that cache in tickets, not servers.
const TICKETS_PER_SERVER: usize = 8;

/// The provider's cipher suites with AES-128-GCM ahead of AES-256-GCM (same security level
/// for TLS, cheaper per record). The rest of the order is kept.
fn cipher_suites(provider: &CryptoProvider) -> Vec<rustls::SupportedCipherSuite> {
    use rustls::CipherSuite as C;
    let rank = |s: &rustls::SupportedCipherSuite| match s.suite() {
        C::TLS13_AES_128_GCM_SHA256
        | C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        | C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 0,
        _ => 1,
    };
    let mut suites = provider.cipher_suites.clone();
    // Stable: within each protocol version the relative order of the others stays.
    suites.sort_by_key(|s| {
        (
            s.version().version != rustls::ProtocolVersion::TLSv1_3,
            rank(s),
        )
    });
    suites
}

pub(crate) fn client_config(opts: &TlsOptions) -> Result<rustls::ClientConfig, Error> {
    let mut config = client_config_without_resumption(opts)?;
    config.resumption = if opts.session_cache_hosts == 0 {
        rustls::client::Resumption::disabled()
    } else {
        rustls::client::Resumption::in_memory_sessions(
            opts.session_cache_hosts.saturating_mul(TICKETS_PER_SERVER),
        )
    };
    Ok(config)
}

fn client_config_without_resumption(opts: &TlsOptions) -> Result<rustls::ClientConfig, Error> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = cipher_suites(&provider);
    let provider = Arc::new(provider);
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config(format!("TLS setup failed: {e}")).with_source(e))?;
    if opts.accept_invalid_certs {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerifier(provider)))
            .with_no_client_auth());
    }
    let mut roots = RootCertStore::empty();
    if opts.built_in_roots {
        #[cfg(feature = "webpki-roots")]
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    #[cfg(feature = "native-roots")]
    if opts.native_roots {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "could not load some native root certificates");
        }
        roots.add_parsable_certificates(found.certs);
    }
    for (n, cert) in opts.extra_roots.iter().enumerate() {
        roots.add(cert.der.clone()).map_err(|e| {
            Error::config(format!("root certificate #{} is not usable: {e}", n + 1)).with_source(e)
        })?;
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// Accepts any certificate: only for `danger_accept_invalid_certs`.
#[derive(Debug)]
struct NoVerifier(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
