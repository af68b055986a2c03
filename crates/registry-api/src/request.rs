use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::Request;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use registry_core::{validate_service_name, InstanceMeta};

use crate::error::ApiError;

/// The query string of a request, decoded on demand.
pub(crate) struct Query<'a>(&'a str);

impl<'a> Query<'a> {
    pub(crate) fn of<B>(request: &'a Request<B>) -> Self {
        Query(request.uri().query().unwrap_or(""))
    }

    /// The first value of `name`, percent-decoded; absent or empty is an error.
    pub(crate) fn required(&self, name: &'static str) -> Result<String, ApiError> {
        form_urlencoded::parse(self.0.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .filter(|v| !v.is_empty())
            .ok_or(ApiError::MissingParam(name))
    }

    /// `service`, validated.
    pub(crate) fn service(&self) -> Result<String, ApiError> {
        let service = self.required("service")?;
        validate_service_name(&service)?;
        Ok(service)
    }

    /// `services=a,b,c`, each validated, duplicates dropped, order kept.
    pub(crate) fn services(&self) -> Result<Vec<String>, ApiError> {
        let joined = self.required("services")?;
        let mut services: Vec<String> = Vec::new();
        for name in joined.split(',') {
            validate_service_name(name)?;
            if !services.iter().any(|s| s == name) {
                services.push(name.to_owned());
            }
        }
        Ok(services)
    }
}

/// Reads the whole body, refusing one over `max` bytes: at once when `Content-Length`
/// says so, otherwise as soon as the limit is crossed, without reading the rest.
pub(crate) async fn read_body(request: Request<Incoming>, max: usize) -> Result<Bytes, ApiError> {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return Err(ApiError::PayloadTooLarge(max));
    }
    match Limited::new(request.into_body(), max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(ApiError::PayloadTooLarge(max)),
        Err(e) => Err(ApiError::UnreadableBody(e.to_string())),
    }
}

/// The body as one instance.
pub(crate) fn instance(body: &[u8]) -> Result<InstanceMeta, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::MissingBody);
    }
    Ok(InstanceMeta::from_json(body)?)
}
