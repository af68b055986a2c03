//! [`Pki`]: a test CA and the certificates it issues, written as PEM files (rcgen).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use registry_http::tls::{PeerTls, PeerTlsFiles, ServerTls, ServerTlsFiles};

/// A certificate and its key, as files.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A CA whose files live in `dir`.
pub struct Pki {
    dir: PathBuf,
    name: String,
    cert: Certificate,
    key: KeyPair,
    /// The CA certificate (PEM).
    pub ca: PathBuf,
}

impl Pki {
    /// A new CA called `name`, its certificate written to `dir/<name>-ca.pem`.
    pub fn new(dir: &Path, name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        let ca = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&ca, cert.pem()).expect("write the CA");
        Pki {
            dir: dir.to_path_buf(),
            name: name.to_owned(),
            cert,
            key,
            ca,
        }
    }

    /// A certificate for 127.0.0.1 and localhost, fit for a server and a client, called
    /// `file` (`dir/<ca>-<file>.pem` and `…-key.pem`).
    pub fn issue(&self, file: &str) -> Issued {
        self.issue_with(file, |_| {})
    }

    /// [`Pki::issue`], its parameters changed by `adjust` first (validity, names).
    pub fn issue_with(&self, file: &str, adjust: impl FnOnce(&mut CertificateParams)) -> Issued {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params.distinguished_name.push(DnType::CommonName, file);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        adjust(&mut params);
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.cert, &self.key).expect("certificate");
        let issued = Issued {
            cert: self.dir.join(format!("{}-{file}.pem", self.name)),
            key: self.dir.join(format!("{}-{file}-key.pem", self.name)),
        };
        std::fs::write(&issued.cert, cert.pem()).expect("write the certificate");
        std::fs::write(&issued.key, key.serialize_pem()).expect("write the key");
        issued
    }

    /// A listener's TLS on `issued`, requiring client certificates of `client_ca` if given.
    pub fn server(issued: &Issued, client_ca: Option<&Path>) -> Arc<ServerTls> {
        ServerTls::load(ServerTlsFiles {
            cert: issued.cert.clone(),
            key: issued.key.clone(),
            client_ca: client_ca.map(Path::to_path_buf),
        })
        .expect("the listener's TLS files")
    }

    /// TLS towards servers this CA signed, presenting `identity` if given.
    pub fn peers(&self, identity: Option<&Issued>) -> Arc<PeerTls> {
        Pki::peers_of(&self.ca, identity)
    }

    /// TLS towards servers the CAs in the file `ca` signed, presenting `identity` if given.
    pub fn peers_of(ca: &Path, identity: Option<&Issued>) -> Arc<PeerTls> {
        PeerTls::load(PeerTlsFiles {
            ca: ca.to_path_buf(),
            identity: identity.map(|i| (i.cert.clone(), i.key.clone())),
        })
        .expect("the peers' TLS files")
    }
}
