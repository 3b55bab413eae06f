//! Certificates made on the spot (rcgen), a TLS server on loopback that
//! answers every request with one fixed response, and one that keeps its
//! connections open.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
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

impl Leaf {
    /// A server's TLS set-up with this certificate; with `client_ca`, it
    /// asks for a client certificate signed by it, and refuses the
    /// handshake without one.
    pub(crate) fn server_config(&self, client_ca: Option<&Ca>) -> Arc<rustls::ServerConfig> {
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
        let key = PrivateKeyDer::try_from(self.key.serialize_der()).unwrap();
        Arc::new(
            builder
                .with_single_cert(vec![self.der.clone()], key)
                .unwrap(),
        )
    }
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

/// A server connection: TLS over TCP, read through a buffer.
pub(crate) type TlsStream = BufReader<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>;

impl TlsServer {
    pub(crate) fn start(leaf: &Leaf, client_ca: Option<&Ca>, response: String) -> TlsServer {
        let config = leaf.server_config(client_ca);
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

    /// A server with `leaf`'s certificate that keeps its connections open:
    /// it answers each request (its body read) with `[N]`, N counting the
    /// requests answered, and then runs `idle` with the request's path on
    /// the connection, which goes on only if that returns `true`.
    pub(crate) fn keep_alive(
        leaf: &Leaf,
        idle: impl Fn(&mut TlsStream, &str) -> bool + Send + Sync + 'static,
    ) -> TlsServer {
        let config = leaf.server_config(None);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let answered = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&answered);
        let idle = Arc::new(idle);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (config, counted, idle) =
                    (Arc::clone(&config), Arc::clone(&counted), Arc::clone(&idle));
                std::thread::spawn(move || {
                    // What it sends goes at once, not when the client
                    // acknowledges what came before (Nagle).
                    let _ = stream.set_nodelay(true);
                    let Ok(connection) = rustls::ServerConnection::new(config) else {
                        return;
                    };
                    let mut tls = BufReader::new(rustls::StreamOwned::new(connection, stream));
                    while let Some(path) = read_request(&mut tls) {
                        let n = counted.fetch_add(1, SeqCst) + 1;
                        let body = format!("[{n}]");
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                             content-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if tls.get_mut().write_all(answer.as_bytes()).is_err()
                            || tls.get_mut().flush().is_err()
                            || !idle(&mut tls, &path)
                        {
                            return;
                        }
                    }
                });
            }
        });
        TlsServer {
            base: format!("https://{addr}"),
            handshakes: answered,
        }
    }

    /// How many requests it has answered.
    pub(crate) fn answered(&self) -> usize {
        self.handshakes.load(SeqCst)
    }
}

/// Reads a request, its body included: its path, or `None` at the end.
fn read_request(tls: &mut TlsStream) -> Option<String> {
    let mut line = String::new();
    tls.read_line(&mut line).ok().filter(|&n| n > 0)?;
    let path = line.split(' ').nth(1)?.to_owned();
    let mut length = 0;
    loop {
        line.clear();
        tls.read_line(&mut line).ok().filter(|&n| n > 0)?;
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    tls.read_exact(&mut body).ok()?;
    Some(path)
}

/// A response with a small JSON body, closing the connection.
pub(crate) fn ok_json(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    )
}
