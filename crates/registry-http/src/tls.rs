//! TLS for both ends of a node's HTTP (rustls with the ring provider, TLS 1.2 and 1.3):
//! [`ServerTls`], the listener's certificate and the client CA it may require, and
//! [`PeerTls`], the CA a node checks its peers against and the certificate it shows them.
//!
//! Files are PEM. Each is checked when it is loaded: readable, holding what it should, a
//! key that matches its certificate, every certificate within its validity period; a
//! problem is a [`TlsError`] naming the file. `reload` reads the files again and swaps
//! what new handshakes use (connections already made keep theirs); a file that fails the
//! checks changes nothing.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::SystemTime;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    CipherSuite, ClientConfig, ConfigBuilder, DigitallySignedStruct, DistinguishedName, Error, RootCertStore,
    ServerConfig, SignatureScheme, WantsVerifier,
};

/// A TLS file that cannot be used: which one, what it is, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {problem}", file.display())]
pub struct TlsError {
    /// The file.
    pub file: PathBuf,
    /// What the file was given as.
    pub kind: TlsFile,
    /// What is wrong with it.
    pub problem: String,
}

/// What a TLS file is given as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    /// A certificate (chain) to present.
    Certificate,
    /// Its private key.
    Key,
    /// The CA certificates to check the other side's against.
    Ca,
}

impl TlsError {
    fn new(file: &Path, kind: TlsFile, problem: impl Into<String>) -> Self {
        TlsError {
            file: file.to_path_buf(),
            kind,
            problem: problem.into(),
        }
    }
}

/// The files of a listener's TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsFiles {
    /// The certificate, then any intermediates (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// When set, every client must present a certificate this CA signed.
    pub client_ca: Option<PathBuf>,
}

/// The files of the TLS a node speaks to its peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerTlsFiles {
    /// The CA the peers' certificates must chain to (their hostname or IP in a SAN).
    pub ca: PathBuf,
    /// The certificate and key this node presents to peers that ask for one.
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// The one provider: ring, TLS 1.2 and 1.3, made once. rustls 0.23.48 deprecates it
/// because ring has no post-quantum key exchange. It is kept: aws-lc-rs, the provider with
/// one, served keep-alive requests at the same CPU cost here (docs/benchmarks-tls.md).
///
/// AES-128-GCM comes first (10 AES rounds against AES-256's 14); the listener picks by this
/// order rather than the client's.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            let mut provider = ring::default_provider();
            provider.cipher_suites.sort_by_key(|suite| match suite.suite() {
                CipherSuite::TLS13_AES_128_GCM_SHA256
                | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 0,
                CipherSuite::TLS13_AES_256_GCM_SHA384
                | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
                | CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => 1,
                _ => 2,
            });
            Arc::new(provider)
        })
        .clone()
}

/// A client configuration's builder on [`provider`], at [`VERSIONS`].
fn client_builder() -> ConfigBuilder<ClientConfig, WantsVerifier> {
    ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .unwrap_or_else(|_| unreachable!("ring supports TLS 1.2 and 1.3"))
}

/// Checks a handshake signature of a certificate the reloaded verifiers accepted: it
/// depends on the provider's algorithms only, not on any CA.
fn tls12_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, Error> {
    verify_tls12_signature(message, cert, dss, &provider().signature_verification_algorithms)
}

/// [`tls12_signature`] for TLS 1.3.
fn tls13_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, Error> {
    verify_tls13_signature(message, cert, dss, &provider().signature_verification_algorithms)
}

/// The signature schemes [`tls12_signature`] and [`tls13_signature`] check.
fn signature_schemes() -> Vec<SignatureScheme> {
    provider().signature_verification_algorithms.supported_schemes()
}

const VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A value new handshakes read and a reload replaces.
struct Current<T: ?Sized>(RwLock<Arc<T>>);

impl<T: ?Sized> Current<T> {
    fn new(value: Arc<T>) -> Arc<Self> {
        Arc::new(Current(RwLock::new(value)))
    }

    fn get(&self) -> Arc<T> {
        self.0.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn set(&self, value: Arc<T>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = value;
    }
}

impl<T: ?Sized> fmt::Debug for Current<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("reloadable")
    }
}

/// The certificates of a PEM file: at least one, each within its validity period.
fn certificates(file: &Path, kind: TlsFile) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let fail = |problem: String| TlsError::new(file, kind, problem);
    let read = CertificateDer::pem_file_iter(file).map_err(|e| fail(pem_problem(&e)))?;
    let certs = read.collect::<Result<Vec<_>, _>>().map_err(|e| fail(pem_problem(&e)))?;
    if certs.is_empty() {
        return Err(fail("no PEM certificate in it".to_owned()));
    }
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    for (i, cert) in certs.iter().enumerate() {
        let (_, parsed) = x509_parser::parse_x509_certificate(cert)
            .map_err(|e| fail(format!("certificate {} cannot be read: {e}", i + 1)))?;
        let validity = parsed.validity();
        if validity.not_after.timestamp() < now {
            return Err(fail(format!(
                "certificate {} ({}) expired on {}",
                i + 1,
                parsed.subject(),
                validity.not_after
            )));
        }
        if validity.not_before.timestamp() > now {
            return Err(fail(format!(
                "certificate {} ({}) is not valid before {}",
                i + 1,
                parsed.subject(),
                validity.not_before
            )));
        }
    }
    Ok(certs)
}

fn pem_problem(e: &rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(e) => format!("cannot be read: {e}"),
        other => format!("not usable PEM: {other}"),
    }
}

/// A certificate chain and the key that goes with it.
fn identity(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = certificates(cert, TlsFile::Certificate)?;
    let fail = |problem: String| TlsError::new(key, TlsFile::Key, problem);
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => fail("no PEM private key in it".to_owned()),
        e => fail(pem_problem(&e)),
    })?;
    match CertifiedKey::from_der(chain, private, &provider()) {
        Ok(certified) => Ok(Arc::new(certified)),
        Err(Error::InconsistentKeys(_)) => Err(fail(format!(
            "the key does not match the certificate in {}",
            cert.display()
        ))),
        Err(e) => Err(fail(format!("not a usable private key: {e}"))),
    }
}

/// The trust anchors of a CA file.
fn roots(file: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in certificates(file, TlsFile::Ca)? {
        store
            .add(cert)
            .map_err(|e| TlsError::new(file, TlsFile::Ca, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(Arc::new(store))
}

/// A listener's TLS: its certificate and, with a client CA, the check of clients'.
pub struct ServerTls {
    files: ServerTlsFiles,
    identity: Arc<Current<CertifiedKey>>,
    clients: Option<Arc<Current<dyn ClientCertVerifier>>>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls").field("files", &self.files).finish()
    }
}

fn client_verifier(ca: &Path) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    WebPkiClientVerifier::builder_with_provider(roots(ca)?, provider())
        .build()
        .map_err(|e| TlsError::new(ca, TlsFile::Ca, format!("cannot check clients with it: {e}")))
}

impl ServerTls {
    /// Loads and checks `files`.
    pub fn load(files: ServerTlsFiles) -> Result<Arc<ServerTls>, TlsError> {
        let identity = Current::new(identity(&files.cert, &files.key)?);
        let clients = match &files.client_ca {
            Some(ca) => Some(Current::new(client_verifier(ca)?)),
            None => None,
        };
        Ok(Arc::new(ServerTls {
            files,
            identity,
            clients,
        }))
    }

    /// Reads the files again; new handshakes use them. A file that fails the checks
    /// changes nothing.
    pub fn reload(&self) -> Result<(), TlsError> {
        let identity = identity(&self.files.cert, &self.files.key)?;
        let clients = match (&self.files.client_ca, &self.clients) {
            (Some(ca), Some(_)) => Some(client_verifier(ca)?),
            _ => None,
        };
        self.identity.set(identity);
        if let (Some(current), Some(verifier)) = (&self.clients, clients) {
            current.set(verifier);
        }
        Ok(())
    }

    /// Whether clients must present a certificate.
    pub fn requires_client_certificates(&self) -> bool {
        self.clients.is_some()
    }

    /// The files.
    pub fn files(&self) -> &ServerTlsFiles {
        &self.files
    }

    /// A rustls server configuration on this material (and its reloads), offering the
    /// `alpn` protocols.
    pub fn config(&self, alpn: &[&[u8]]) -> Arc<ServerConfig> {
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)
            // ring supports both versions: this cannot fail.
            .unwrap_or_else(|_| unreachable!("ring supports TLS 1.2 and 1.3"));
        let builder = match &self.clients {
            Some(clients) => builder.with_client_cert_verifier(Arc::new(ReloadedClients(clients.clone()))),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(Arc::new(ReloadedIdentity(self.identity.clone())));
        config.ignore_client_order = true;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

/// The TLS a node speaks to its peers: the CA their certificates must chain to, and the
/// certificate it presents.
pub struct PeerTls {
    files: PeerTlsFiles,
    servers: Arc<Current<dyn ServerCertVerifier>>,
    identity: Arc<Current<Option<Arc<CertifiedKey>>>>,
}

impl fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerTls").field("files", &self.files).finish()
    }
}

fn server_verifier(ca: &Path) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
    let verifier: Arc<dyn ServerCertVerifier> = WebPkiServerVerifier::builder_with_provider(roots(ca)?, provider())
        .build()
        .map_err(|e| TlsError::new(ca, TlsFile::Ca, format!("cannot check servers with it: {e}")))?;
    Ok(verifier)
}

fn peer_identity(files: &PeerTlsFiles) -> Result<Option<Arc<CertifiedKey>>, TlsError> {
    files
        .identity
        .as_ref()
        .map(|(cert, key)| identity(cert, key))
        .transpose()
}

impl PeerTls {
    /// Loads and checks `files`.
    pub fn load(files: PeerTlsFiles) -> Result<Arc<PeerTls>, TlsError> {
        let servers = Current::new(server_verifier(&files.ca)?);
        let identity = Current::new(Arc::new(peer_identity(&files)?));
        Ok(Arc::new(PeerTls {
            files,
            servers,
            identity,
        }))
    }

    /// Reads the files again; new connections use them. A file that fails the checks
    /// changes nothing.
    pub fn reload(&self) -> Result<(), TlsError> {
        let servers = server_verifier(&self.files.ca)?;
        let identity = peer_identity(&self.files)?;
        self.servers.set(servers);
        self.identity.set(Arc::new(identity));
        Ok(())
    }

    /// The files.
    pub fn files(&self) -> &PeerTlsFiles {
        &self.files
    }

    /// A rustls client configuration on this material (and its reloads). It offers no
    /// ALPN protocol (the connector that takes it sets them).
    pub fn config(&self) -> Arc<ClientConfig> {
        let config = client_builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ReloadedServers(self.servers.clone())))
            .with_client_cert_resolver(Arc::new(ReloadedIdentity(self.identity.clone())));
        Arc::new(config)
    }
}

/// A client configuration that trusts no server: for an invoker without TLS material,
/// which calls no https url.
pub(crate) fn no_peers() -> Arc<ClientConfig> {
    let config = client_builder()
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth();
    Arc::new(config)
}

/// The current certificate of a listener, or of a node towards its peers.
#[derive(Debug)]
struct ReloadedIdentity<T: ?Sized>(Arc<Current<T>>);

impl ResolvesServerCert for ReloadedIdentity<CertifiedKey> {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.get())
    }
}

impl ResolvesClientCert for ReloadedIdentity<Option<Arc<CertifiedKey>>> {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        (*self.0.get()).clone()
    }

    fn has_certs(&self) -> bool {
        self.0.get().is_some()
    }
}

/// The current check of clients' certificates.
#[derive(Debug)]
struct ReloadedClients(Arc<Current<dyn ClientCertVerifier>>);

impl ClientCertVerifier for ReloadedClients {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // The hints live in the verifier a reload replaces; without them a client sends
        // the one certificate it has.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        self.0.get().verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        signature_schemes()
    }
}

/// The current check of servers' certificates.
#[derive(Debug)]
struct ReloadedServers(Arc<Current<dyn ServerCertVerifier>>);

impl ServerCertVerifier for ReloadedServers {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        self.0
            .get()
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        signature_schemes()
    }
}
