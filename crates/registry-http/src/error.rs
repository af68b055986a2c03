use std::fmt;

/// A boxed error from the layer below (hyper, the connector, serde_json).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What kind of failure an [`HttpInvokeError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The url could not be turned into a request (bad syntax, unsupported scheme).
    InvalidUrl,
    /// No connection could be made (refused, unreachable, connect timeout).
    Connect,
    /// The server did not answer, or stopped sending, within the read timeout.
    Timeout,
    /// The server answered with a status outside 2xx.
    Status,
    /// The connection failed while sending or receiving.
    Transport,
    /// The answer was larger than the configured cap.
    TooLarge,
    /// The answer was not the JSON the caller expected.
    Decode,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::InvalidUrl => "invalid url",
            ErrorKind::Connect => "connection failed",
            ErrorKind::Timeout => "timed out",
            ErrorKind::Status => "error status",
            ErrorKind::Transport => "transport error",
            ErrorKind::TooLarge => "answer too large",
            ErrorKind::Decode => "undecodable answer",
        })
    }
}

/// A failed HTTP call, with what a log line needs to explain it.
#[derive(Debug)]
pub struct HttpInvokeError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// `GET` or `POST`.
    pub method: String,
    /// The url called, query included.
    pub url: String,
    /// The status, when the server answered.
    pub status: Option<u16>,
    /// The first bytes of the answer, when there was one.
    pub body_excerpt: Option<String>,
    source: Option<BoxError>,
}

impl HttpInvokeError {
    /// A new error of `kind` for a call of `method` to `url`.
    pub fn new(kind: ErrorKind, method: &str, url: &str) -> Self {
        HttpInvokeError {
            kind,
            method: method.to_owned(),
            url: url.to_owned(),
            status: None,
            body_excerpt: None,
            source: None,
        }
    }

    /// Attaches the underlying error.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Attaches the server's status and the start of its answer.
    pub fn with_answer(mut self, status: u16, body: &[u8]) -> Self {
        self.status = Some(status);
        self.body_excerpt = Some(excerpt(body));
        self
    }
}

impl fmt::Display for HttpInvokeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.method, self.url, self.kind)?;
        if let Some(status) = self.status {
            write!(f, " {status}")?;
        }
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        if let Some(body) = self.body_excerpt.as_deref().filter(|b| !b.is_empty()) {
            write!(f, " (answer: {body})")?;
        }
        Ok(())
    }
}

impl std::error::Error for HttpInvokeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    if body.len() > MAX {
        format!("{text}…")
    } else {
        text.into_owned()
    }
}
