//! Plain http through a forward proxy, and TLS to an https proxy.

use std::sync::Arc;

use ureq::http::Uri;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, NextTimeout, RustlsConnector, Transport,
};

use crate::transport::proxy::Proxy;

/// Sends plain http requests to a forward proxy in absolute form: the
/// request line names the whole URL (`GET http://host/path HTTP/1.1`), and
/// the proxy's credentials ride along in `Proxy-Authorization`. ureq writes
/// origin-form only, so the transport rewrites the request line as it
/// goes out: the first write on a connection, and the first after each
/// response, starts with a request head (ureq sends no `Expect:
/// 100-continue`, so a body never follows a read).
#[derive(Debug)]
pub(crate) struct AbsoluteFormConnector {
    /// `Proxy-Authorization: Basic ...\r\n`, if the proxy has credentials.
    authorization: Vec<u8>,
}

impl AbsoluteFormConnector {
    pub(crate) fn new(proxy: &Proxy) -> AbsoluteFormConnector {
        let authorization = ureq::Proxy::new(&proxy.url)
            .ok()
            .filter(|p| p.username().is_some() || p.password().is_some())
            .map(|p| {
                use base64::Engine as _;
                let credentials = format!(
                    "{}:{}",
                    p.username().unwrap_or_default(),
                    p.password().unwrap_or_default()
                );
                let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
                format!("Proxy-Authorization: Basic {encoded}\r\n").into_bytes()
            })
            .unwrap_or_default();
        AbsoluteFormConnector { authorization }
    }
}

impl<In: Transport> Connector<In> for AbsoluteFormConnector {
    type Out = AbsoluteForm<In>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<AbsoluteForm<In>>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        let origin = match (details.uri.scheme_str(), details.uri.authority()) {
            (Some(scheme), Some(authority)) => format!("{scheme}://{authority}"),
            _ => return Err(ureq::Error::BadUri(String::from("no authority"))),
        };
        Ok(Some(AbsoluteForm {
            inner: transport,
            origin: origin.into_bytes(),
            authorization: self.authorization.clone(),
            at_head: true,
        }))
    }
}

/// See [`AbsoluteFormConnector`].
#[derive(Debug)]
pub(crate) struct AbsoluteForm<T> {
    inner: T,
    origin: Vec<u8>,
    authorization: Vec<u8>,
    /// The next write starts a request head.
    at_head: bool,
}

impl<T: Transport> Transport for AbsoluteForm<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let head = std::mem::take(&mut self.at_head)
            .then(|| {
                let written = self.inner.buffers().output().get(..amount)?;
                absolute_form(written, &self.origin, &self.authorization)
            })
            .flatten();
        let Some(head) = head else {
            return self.inner.transmit_output(amount, timeout);
        };
        // Longer now, it may not fit the buffer: sent in as many writes as
        // it takes.
        for chunk in head.chunks(self.inner.buffers().output().len().max(1)) {
            let output = self.inner.buffers().output();
            output[..chunk.len()].copy_from_slice(chunk);
            self.inner.transmit_output(chunk.len(), timeout)?;
        }
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.at_head = true;
        self.inner.await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }
}

/// The request head `written` (what ureq wrote: the head, and maybe the
/// start of a body) in absolute form, with `origin` before its path and
/// `authorization` after its first line; `None` (left as it is) if it does
/// not start with an origin-form request line.
fn absolute_form(written: &[u8], origin: &[u8], authorization: &[u8]) -> Option<Vec<u8>> {
    let space = written.iter().position(|&b| b == b' ')?;
    let is_method = space > 0 && written[..space].iter().all(u8::is_ascii_uppercase);
    if !is_method || written.get(space + 1) != Some(&b'/') {
        return None;
    }
    let line_end = written.windows(2).position(|w| w == b"\r\n")? + 2;
    if !written[..line_end - 2].ends_with(b" HTTP/1.1") {
        return None;
    }
    let mut head = Vec::with_capacity(written.len() + origin.len() + authorization.len());
    head.extend_from_slice(&written[..=space]);
    head.extend_from_slice(origin);
    head.extend_from_slice(&written[space + 1..line_end]);
    head.extend_from_slice(authorization);
    head.extend_from_slice(&written[line_end..]);
    Some(head)
}

/// TLS to an https proxy, whatever the scheme of the request: ureq's own
/// TLS connector, told that it connects to the proxy.
#[derive(Debug)]
pub(crate) struct ProxyTlsConnector {
    pub(crate) proxy: Uri,
    pub(crate) tls: RustlsConnector,
}

impl<In: Transport> Connector<In> for ProxyTlsConnector {
    type Out = <RustlsConnector as Connector<In>>::Out;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let to_proxy = ConnectionDetails {
            uri: &self.proxy,
            addrs: details.addrs.clone(),
            config: details.config,
            request_level: details.request_level,
            resolver: details.resolver,
            now: details.now,
            timeout: details.timeout,
            current_time: Arc::clone(&details.current_time),
            run_connector: Arc::clone(&details.run_connector),
            register_shutdown: Arc::clone(&details.register_shutdown),
        };
        self.tls.connect(&to_proxy, chained)
    }
}
