use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use http::{Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::error::{ErrorKind, HttpInvokeError};
use crate::invoker::{HttpInvoker, HttpRequest, HttpResponse};
use crate::tls::{self, PeerTls};

/// Settings of a [`HyperInvoker`].
#[derive(Debug, Clone)]
pub struct HyperInvokerConfig {
    /// How long a TCP connect may take.
    pub connect_timeout: Duration,
    /// How long the server may take to start answering once the request is sent, and the
    /// longest pause between two pieces of the answer.
    pub read_timeout: Duration,
    /// Idle keep-alive connections kept per host.
    pub pool_max_idle_per_host: usize,
    /// How long an idle connection is kept.
    pub pool_idle_timeout: Duration,
    /// The largest answer accepted, in bytes.
    pub max_response_bytes: usize,
    /// TLS towards `https://` urls; without it only `http://` urls are called.
    pub tls: Option<Arc<PeerTls>>,
}

impl Default for HyperInvokerConfig {
    fn default() -> Self {
        HyperInvokerConfig {
            connect_timeout: Duration::from_millis(500),
            read_timeout: Duration::from_millis(500),
            pool_max_idle_per_host: 16,
            pool_idle_timeout: Duration::from_secs(30),
            max_response_bytes: 256 * 1024 * 1024,
            tls: None,
        }
    }
}

impl HyperInvokerConfig {
    /// The defaults with both timeouts set to `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        HyperInvokerConfig {
            connect_timeout: timeout,
            read_timeout: timeout,
            ..Self::default()
        }
    }
}

/// [`HttpInvoker`] on hyper-util's pooled client (HTTP/1.1 keep-alive; `https://` with
/// a [`PeerTls`]). Cloning is cheap and shares the pool.
#[derive(Clone)]
pub struct HyperInvoker {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    config: HyperInvokerConfig,
}

impl HyperInvoker {
    /// A client with its own connection pool. Must be created inside a tokio runtime's
    /// context only when first used; creation itself needs none.
    pub fn new(config: HyperInvokerConfig) -> Self {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(config.connect_timeout));
        http.set_nodelay(true);
        http.enforce_http(false);
        // Without TLS material an https url is refused before it is called; the connector
        // still needs a configuration.
        let tls = config.tls.as_ref().map_or_else(tls::no_peers, |tls| tls.config());
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        HyperInvoker { client, config }
    }

    /// The body of an answer, within `max_response_bytes`, each frame within the read
    /// timeout.
    async fn collect(
        &self,
        mut body: hyper::body::Incoming,
        err: &impl Fn(ErrorKind) -> HttpInvokeError,
    ) -> Result<Bytes, HttpInvokeError> {
        let max = self.config.max_response_bytes;
        let mut first: Option<Bytes> = None;
        let mut rest = BytesMut::new();
        loop {
            let frame = match tokio::time::timeout(self.config.read_timeout, body.frame()).await {
                Err(_) => return Err(err(ErrorKind::Timeout)),
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(err(ErrorKind::Transport).with_source(e)),
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else { continue };
            let so_far = first.as_ref().map_or(0, Bytes::len) + rest.len();
            if so_far + data.len() > max {
                return Err(err(ErrorKind::TooLarge).with_source(format!("more than {max} bytes")));
            }
            // Most answers come in one frame: keep it without copying.
            match first.take() {
                None if rest.is_empty() => first = Some(data),
                None => rest.extend_from_slice(&data),
                Some(head) => {
                    rest.extend_from_slice(&head);
                    rest.extend_from_slice(&data);
                }
            }
        }
        Ok(first.unwrap_or_else(|| rest.freeze()))
    }
}

#[async_trait]
impl HttpInvoker for HyperInvoker {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpInvokeError> {
        let method = request.method.clone();
        let err = |kind| HttpInvokeError::new(kind, method.as_str(), &request.url);

        let uri: Uri = request
            .url
            .parse()
            .map_err(|e| err(ErrorKind::InvalidUrl).with_source(e))?;
        match uri.scheme_str() {
            _ if uri.host().is_none() => {
                return Err(err(ErrorKind::InvalidUrl).with_source("only absolute urls are supported"));
            }
            Some("http") => {}
            Some("https") if self.config.tls.is_some() => {}
            Some("https") => {
                return Err(
                    err(ErrorKind::InvalidUrl).with_source("an https:// url needs a CA to check it (--peer-ca)")
                );
            }
            _ => return Err(err(ErrorKind::InvalidUrl).with_source("only http:// and https:// urls are supported")),
        }
        let mut builder = Request::builder().method(request.method.clone()).uri(uri);
        for (name, value) in &request.headers {
            builder = builder.header(*name, value.as_str());
        }
        if !request.body.is_empty() {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        let outgoing = builder
            .body(Full::new(request.body.clone()))
            .map_err(|e| err(ErrorKind::InvalidUrl).with_source(e))?;

        let head_deadline = self.config.connect_timeout + request.timeout.unwrap_or(self.config.read_timeout);
        let response = match tokio::time::timeout(head_deadline, self.client.request(outgoing)).await {
            Err(_) => return Err(err(ErrorKind::Timeout)),
            Ok(Err(e)) if e.is_connect() => return Err(err(ErrorKind::Connect).with_source(e)),
            Ok(Err(e)) => return Err(err(ErrorKind::Transport).with_source(e)),
            Ok(Ok(response)) => response,
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let gzip = response
            .headers()
            .get(CONTENT_ENCODING)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));

        let max = self.config.max_response_bytes;
        let body = self.collect(response.into_body(), &err).await?;
        let wire_len = body.len();
        let body = if gzip {
            gunzip(&body, max).map_err(|e| match e.kind() {
                std::io::ErrorKind::FileTooLarge => err(ErrorKind::TooLarge).with_source(e),
                _ => err(ErrorKind::Decode).with_source(e),
            })?
        } else {
            body
        };
        Ok(HttpResponse {
            status,
            body,
            wire_len,
            headers,
        })
    }
}

/// Decompresses a gzip body, refusing to inflate it past `max` bytes.
fn gunzip(body: &[u8], max: usize) -> std::io::Result<Bytes> {
    use std::io::Read;
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(max));
    let read = flate2::read::GzDecoder::new(body)
        .take(max as u64 + 1)
        .read_to_end(&mut out)?;
    if read > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("the gzip body inflates past {max} bytes"),
        ));
    }
    Ok(Bytes::from(out))
}
