//! Certificates made on the spot (rcgen), and a TLS server on loopback that
//! answers every request with one fixed response.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate authority.
pub(crate) struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate signed by a [`Ca`], with its key.
pub(crate) struct Leaf {
    pub(crate) der: CertificateDer<'static>,
    pub(crate) key: KeyPair,
    /// The certificate, then its key, in PEM.
    pub(crate) pem: String,
}

impl Ca {
    pub(crate) fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    /// The CA's certificate, in PEM.
    pub(crate) fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for 127.0.0.1 and localhost.
    pub(crate) fn server(&self) -> Leaf {
        self.leaf(ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate.
    pub(crate) fn client(&self) -> Leaf {
        self.leaf(ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// A server certificate for `names` only.
    pub(crate) fn server_for(&self, names: &[&str]) -> Leaf {
        self.leaf_for(names, ExtendedKeyUsagePurpose::ServerAuth)
    }

    fn leaf(&self, usage: ExtendedKeyUsagePurpose) -> Leaf {
        self.leaf_for(&["127.0.0.1", "localhost"], usage)
    }

    fn leaf_for(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Leaf {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        let pem = format!("{}{}", certificate.pem(), key.serialize_pem());
        Leaf {
            der: certificate.der().clone(),
            key,
            pem,
        }
    }
}

/// A self-signed CA certificate for 127.0.0.1 and localhost, made to be a
/// server's own (as `openssl req -x509` makes one by default), with its key.
pub(crate) fn ca_as_server() -> Leaf {
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let certificate = params.self_signed(&key).unwrap();
    let pem = certificate.pem();
    Leaf {
        der: certificate.der().clone(),
        key,
        pem,
    }
}

/// A TLS server with `leaf`'s certificate, answering every request with
/// `response` (and closing). With `client_ca`, it asks for a client
/// certificate signed by it, and refuses the handshake without one.
pub(crate) struct TlsServer {
    pub(crate) base: String,
    handshakes: Arc<AtomicUsize>,
}

impl TlsServer {
    pub(crate) fn start(leaf: &Leaf, client_ca: Option<&Ca>, response: String) -> TlsServer {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                roots.add(ca.issuer.der().clone()).unwrap();
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let key = PrivateKeyDer::try_from(leaf.key.serialize_der()).unwrap();
        let config = Arc::new(
            builder
                .with_single_cert(vec![leaf.der.clone()], key)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handshakes = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&handshakes);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (config, response) = (Arc::clone(&config), response.clone());
                let counted = Arc::clone(&counted);
                std::thread::spawn(move || {
                    let Ok(connection) = rustls::ServerConnection::new(config) else {
                        return;
                    };
                    let mut tls = BufReader::new(rustls::StreamOwned::new(connection, stream));
                    let mut line = String::new();
                    // Read the request head (a failed handshake ends here).
                    while tls.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                        line.clear();
                    }
                    if line != "\r\n" {
                        return;
                    }
                    counted.fetch_add(1, SeqCst);
                    let _ = tls.get_mut().write_all(response.as_bytes());
                    let _ = tls.get_mut().flush();
                });
            }
        });
        TlsServer {
            base: format!("https://{addr}"),
            handshakes,
        }
    }

    /// How many requests it has answered.
    pub(crate) fn answered(&self) -> usize {
        self.handshakes.load(SeqCst)
    }
}

/// A response with a small JSON body, closing the connection.
pub(crate) fn ok_json(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    )
}
