//! Which servers a fetcher trusts, and how it shows who it is.
//!
//! Behind a company's TLS-inspecting proxy, or against its internal hosts,
//! certificates are signed by the company's own authority. A fetcher that
//! knows only Mozilla's roots fails there ("unknown issuer"); one that
//! knows only the company's fails everywhere else. So roots add up:
//!
//! - **Mozilla's roots**, always (as `webpki-roots` ships them);
//! - **the machine's store**, with
//!   [`system_roots(true)`](crate::FetcherBuilder::system_roots): where a
//!   company installs its authority (`/etc/ssl/certs` and the like, read by
//!   `rustls-native-certs`);
//! - **`SSL_CERT_FILE` and `SSL_CERT_DIR`**, whenever they are set, as
//!   OpenSSL, Python and Go read them (they then stand for the machine's
//!   store; curl reads `CURL_CA_BUNDLE` instead);
//! - **certificates you give**,
//!   [`trust_root_certificates(pem)`](crate::FetcherBuilder::trust_root_certificates).
//!
//! The machine's store is read with `rustls-native-certs`, not ureq's
//! platform verifier: that verifier answers alone, so Mozilla's roots and
//! yours could not be added to it (on Linux it reads the same files).
//!
//! What it costs (`perf tls`, see the README): the machine's store is read
//! once per process (145 certificates here: 37 ms cold, 7 ms warm); the
//! roots become rustls's store once per fetcher, at its first TLS
//! connection. A handshake costs the same with 1 root or 264. The one
//! cost that stays is ureq's: a request with a timeout of its own (or a
//! redirect hop) builds rustls's store for each new connection until a
//! connection with the fetcher's timeout has built it once (some 0.4 ms
//! with 264 roots). With Mozilla's roots alone the roots are
//! `webpki-roots`' ready-made trust anchors.
//!
//! A client certificate (mutual TLS) is ureq's, given as PEM, and checked
//! when the fetcher is built: ureq would panic on a key that is not the
//! certificate's.

use std::sync::Arc;

use parking_lot::Mutex;
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use crate::error::Error;

/// The TLS settings of a builder, unchecked.
#[derive(Clone, Default)]
pub(crate) struct TlsSettings {
    /// PEM blocks of certificates to trust besides the others.
    pub(crate) extra_roots: Vec<Vec<u8>>,
    pub(crate) system_roots: bool,
    /// A PEM with the client's certificate chain and its private key.
    pub(crate) client_certificate: Option<Vec<u8>>,
    pub(crate) accept_invalid_certificates: bool,
}

impl TlsSettings {
    /// The TLS configuration, reading `SSL_CERT_FILE`/`SSL_CERT_DIR` with
    /// `var` (set: they are read as the machine's store).
    pub(crate) fn config(&self, var: impl Fn(&str) -> Option<String>) -> Result<TlsConfig, Error> {
        let mut tls = TlsConfig::builder();
        let mut given = Vec::new();
        for pem in &self.extra_roots {
            given.extend(certificates(pem, "trust_root_certificates")?);
        }
        let [file, dir] = ["SSL_CERT_FILE", "SSL_CERT_DIR"]
            .map(|name| var(name).filter(|value| !value.trim().is_empty()));
        let machine = if self.system_roots || file.is_some() || dir.is_some() {
            machine_roots(file, dir)
        } else {
            Arc::default()
        };
        // Mozilla's alone: ureq's ready-made anchors (the default).
        if !(machine.is_empty() && given.is_empty()) {
            let mut roots: Vec<Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .map(|der| Certificate::from_der(der.as_ref()))
                .collect();
            roots.extend(machine.iter().cloned());
            roots.extend(given);
            tls = tls.root_certs(RootCerts::new_with_certs(&roots));
        }
        if let Some(pem) = &self.client_certificate {
            tls = tls.client_cert(Some(client_certificate(pem)?));
        }
        if self.accept_invalid_certificates {
            log::warn!(
                "TLS certificate verification is OFF for this fetcher \
                 (danger_accept_invalid_certificates)"
            );
            tls = tls.disable_verification(true);
        }
        Ok(tls.build())
    }
}

impl std::fmt::Debug for TlsSettings {
    // The client certificate's PEM holds its private key: never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("extra_roots", &self.extra_roots.len())
            .field("system_roots", &self.system_roots)
            .field("client_certificate", &self.client_certificate.is_some())
            .field(
                "accept_invalid_certificates",
                &self.accept_invalid_certificates,
            )
            .finish()
    }
}

/// A TLS failure a person can act on, in words: `None` for the others
/// (their cause says what rustls said).
pub(crate) fn explain(error: &ureq::Error) -> Option<&'static str> {
    use rustls::{AlertDescription, CertificateError, Error as Tls};
    let tls = match error {
        ureq::Error::Io(io) => io.get_ref()?.downcast_ref::<Tls>()?,
        ureq::Error::Rustls(tls) => tls,
        _ => return None,
    };
    Some(match tls {
        Tls::InvalidCertificate(certificate) => match certificate {
            CertificateError::UnknownIssuer => {
                "the server's certificate is signed by an authority this fetcher does not \
                 trust: add it (trust_root_certificates, --cacert) or take the machine's \
                 store (system_roots)"
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "the server's certificate is for another host name"
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server's certificate has expired"
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet (is this machine's clock right?)"
            }
            CertificateError::Revoked => "the server's certificate is revoked",
            CertificateError::BadEncoding => "the server's certificate does not parse",
            CertificateError::Other(other) if other.to_string().contains("CaUsedAsEndEntity") => {
                "the server shows a CA certificate as its own (as a self-signed certificate \
                 made by `openssl req -x509` is, unless told \
                 `-addext basicConstraints=critical,CA:FALSE`)"
            }
            _ => return None,
        },
        Tls::AlertReceived(AlertDescription::CertificateRequired) => {
            "the server asks for a client certificate (client_certificate, --cert)"
        }
        // What comes back when an https URL names a port that speaks plain
        // HTTP: an HTTP answer read as TLS records.
        Tls::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            "the server did not answer in TLS: is this port plain HTTP (http://)?"
        }
        _ => return None,
    })
}

/// The machine's roots (or those of `SSL_CERT_FILE` and `SSL_CERT_DIR`,
/// whose values are `file` and `dir`), read once per process for each pair
/// of values: reading them takes 7 to 40 ms, and a program may build many
/// fetchers.
fn machine_roots(file: Option<String>, dir: Option<String>) -> Arc<Vec<Certificate<'static>>> {
    type Read = (
        (Option<String>, Option<String>),
        Arc<Vec<Certificate<'static>>>,
    );
    static LAST_READ: Mutex<Option<Read>> = Mutex::new(None);
    let mut last = LAST_READ.lock();
    let key = (file, dir);
    if let Some((read_for, roots)) = last.as_ref() {
        if *read_for == key {
            return Arc::clone(roots);
        }
    }
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        log::warn!("skipping part of the machine's certificate store: {error}");
    }
    let roots: Arc<Vec<Certificate<'static>>> = Arc::new(
        found
            .certs
            .iter()
            .map(|der| Certificate::from_der(der.as_ref()).to_owned())
            .collect(),
    );
    *last = Some((key, Arc::clone(&roots)));
    roots
}

/// The CERTIFICATE blocks of `pem`, for the setting `what`.
fn certificates(pem: &[u8], what: &str) -> Result<Vec<Certificate<'static>>, Error> {
    let mut found = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        match item {
            Ok(PemItem::Certificate(certificate)) => found.push(certificate),
            Ok(_) => {}
            Err(error) => {
                return Err(
                    Error::config(format!("{what}: the PEM does not parse")).with_source(error)
                );
            }
        }
    }
    if found.is_empty() {
        return Err(Error::config(format!(
            "{what}: the PEM holds no CERTIFICATE block"
        )));
    }
    Ok(found)
}

/// A client certificate from a PEM holding the chain and the key.
fn client_certificate(pem: &[u8]) -> Result<ClientCert, Error> {
    let chain = certificates(pem, "client_certificate")?;
    let key = ureq::tls::parse_pem(pem).find_map(|item| match item {
        Ok(PemItem::PrivateKey(key)) => Some(key),
        _ => None,
    });
    let key: PrivateKey<'static> =
        key.ok_or_else(|| Error::config("client_certificate: the PEM holds no PRIVATE KEY block"))?;
    check_key(pem)?;
    Ok(ClientCert::new_with_certs(&chain, key))
}

/// Refuses a key rustls cannot use, or one that is not the first
/// certificate's: ureq would panic on it at the first handshake.
fn check_key(pem: &[u8]) -> Result<(), Error> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect();
    let refused = |error: rustls::Error| {
        Error::config(
            "client_certificate: the private key cannot be used, or is not the \
             certificate's (the PEM must hold the client's certificate first)",
        )
        .with_source(error)
    };
    let key = PrivateKeyDer::from_pem_slice(pem)
        .map_err(|_| refused(rustls::Error::General("no private key".into())))?;
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(chain, key, &provider)
        .map(drop)
        .map_err(refused)
}
