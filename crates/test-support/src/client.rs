//! [`Client`]: HTTP (or HTTPS) to a node, as a client would send it, with generous timeouts.

use std::sync::Arc;
use std::time::Duration;

use registry_http::tls::PeerTls;
use registry_http::{HttpInvoker, HttpRequest, HttpResponse, HyperInvoker, HyperInvokerConfig};
use serde_json::Value;

use crate::node::Node;

/// A plain HTTP client with generous timeouts (the machine may be slow).
#[derive(Clone)]
pub struct Client {
    http: HyperInvoker,
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    /// A client whose calls time out after 20 s.
    pub fn new() -> Client {
        Client {
            http: HyperInvoker::new(HyperInvokerConfig::with_timeout(Duration::from_secs(20))),
        }
    }

    /// [`Client::new`] that also calls `https://` urls with `tls`.
    pub fn with_tls(tls: Arc<PeerTls>) -> Client {
        Client {
            http: HyperInvoker::new(HyperInvokerConfig {
                tls: Some(tls),
                ..HyperInvokerConfig::with_timeout(Duration::from_secs(20))
            }),
        }
    }

    pub async fn raw(&self, method: &str, url: &str, body: &str) -> HttpResponse {
        self.try_raw(method, url, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
    }

    /// [`Client::raw`] for a node that may be down or starting.
    pub async fn try_raw(
        &self,
        method: &str,
        url: &str,
        body: &str,
    ) -> Result<HttpResponse, registry_http::HttpInvokeError> {
        let request = HttpRequest {
            method: method.parse().expect("method"),
            url: url.to_owned(),
            headers: Vec::new(),
            body: body.to_owned().into(),
            timeout: None,
        };
        self.http.send(request).await
    }

    /// Status and JSON body. Every answer of the API is JSON.
    pub async fn call(&self, method: &str, url: &str, body: &str) -> (u16, Value) {
        let answer = self.raw(method, url, body).await;
        assert_eq!(answer.content_type(), Some("application/json"), "{method} {url}");
        let json = serde_json::from_slice(&answer.body).unwrap_or_else(|e| {
            panic!(
                "{method} {url}: not JSON ({e}): {:?}",
                String::from_utf8_lossy(&answer.body)
            )
        });
        (answer.status, json)
    }

    pub async fn get(&self, url: &str) -> (u16, Value) {
        self.call("GET", url, "").await
    }

    pub async fn post(&self, url: &str, body: &str) -> (u16, Value) {
        self.call("POST", url, body).await
    }

    /// A 200 answer's JSON; panics on anything else.
    pub async fn ok(&self, method: &str, url: &str, body: &str) -> Value {
        let (status, json) = self.call(method, url, body).await;
        assert_eq!(status, 200, "{method} {url} answered {json}");
        json
    }
}

impl Client {
    /// The url of the leader `node` reports, if any.
    pub async fn leader_of(&self, node: &Node) -> Option<String> {
        let leader = self.ok("GET", &node.at("/leader"), "").await;
        leader["url"].as_str().map(str::to_owned)
    }

    /// A raw request with extra headers.
    pub async fn send(&self, method: &str, url: &str, body: &str, headers: &[(&'static str, &str)]) -> HttpResponse {
        let request = HttpRequest {
            method: method.parse().expect("method"),
            url: url.to_owned(),
            headers: headers.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
            body: body.to_owned().into(),
            timeout: Some(Duration::from_secs(60)),
        };
        self.http
            .send(request)
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
    }

    /// A request whose body is any bytes, with extra headers.
    pub async fn send_bytes(
        &self,
        method: &str,
        url: &str,
        body: Vec<u8>,
        headers: &[(&'static str, &str)],
    ) -> HttpResponse {
        let request = HttpRequest {
            method: method.parse().expect("method"),
            url: url.to_owned(),
            headers: headers.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
            body: body.into(),
            timeout: Some(Duration::from_secs(60)),
        };
        self.http
            .send(request)
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
    }

    /// A raw request with one extra header.
    pub async fn raw_with_header(&self, method: &str, url: &str, body: &str, header: &'static str) -> HttpResponse {
        let request = HttpRequest {
            method: method.parse().expect("method"),
            url: url.to_owned(),
            headers: vec![(header, "test".to_owned())],
            body: body.to_owned().into(),
            timeout: None,
        };
        self.http
            .send(request)
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
    }
}

/// The JSON of an instance `http://host:port/ctx`.
pub fn instance(host: &str, port: u16) -> String {
    format!(r#"{{"scheme":"http","host":"{host}","port":{port},"context":"ctx"}}"#)
}

/// One operation of a `POST /batch` (`reg`, `unreg`, `renew`) on the instance
/// `http://host:port/ctx` of `service`.
pub fn batch_op(op: &str, service: &str, host: &str, port: u16) -> serde_json::Value {
    let instance: serde_json::Value = serde_json::from_str(&instance(host, port)).expect("an instance's JSON");
    serde_json::json!({"op": op, "service": service, "instance": instance})
}
