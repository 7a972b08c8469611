//! A small blocking HTTP client over wasi:http's outgoing-handler, mapping host refusals to `denied`.

use agent_plugin_sdk::ToolError;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, HeaderError, IncomingResponse, Method as WasiMethod, OutgoingBody,
    OutgoingRequest, RequestOptions, Scheme,
};
use wasip2::io::streams::StreamError;

use crate::url::Url;

/// wasi:io output streams accept at most 4096 bytes per blocking write.
const WRITE_CHUNK: usize = 4096;

#[derive(Debug, Clone, Copy)]
pub enum Method {
    Get,
    Post,
}

pub struct Request<'a> {
    pub method: Method,
    pub url: &'a Url,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    /// Content type and bytes.
    pub body: Option<(&'a str, &'a [u8])>,
    pub timeout_ms: u64,
}

pub struct Response {
    pub status: u16,
    headers: Vec<(String, Vec<u8>)>,
    /// At most `max_body` bytes.
    pub body: Vec<u8>,
    pub truncated: bool,
}

impl Response {
    /// A header's value(s), joined as HTTP does when a header repeats.
    pub fn header(&self, name: &str) -> Option<String> {
        let values: Vec<String> = self
            .headers
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }
}

pub fn send(request: &Request<'_>, max_body: usize) -> Result<Response, ToolError> {
    let url = request.url;
    let mut entries: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), value.as_bytes().to_vec()))
        .collect();
    if let Some((content_type, bytes)) = request.body {
        if !request
            .headers
            .iter()
            .any(|(name, _)| name == "content-type")
        {
            entries.push(("content-type".into(), content_type.as_bytes().to_vec()));
        }
        // A length lets the request go out without chunked encoding, which
        // some servers refuse.
        entries.push((
            "content-length".into(),
            bytes.len().to_string().into_bytes(),
        ));
    }
    let fields = Fields::from_list(&entries).map_err(|err| match err {
        HeaderError::Forbidden => ToolError::denied(format!(
            "the host does not allow one of the request headers ({})",
            header_names(&request.headers)
        )),
        other => ToolError::invalid_arguments(format!("invalid request header: {other}")),
    })?;

    let outgoing = OutgoingRequest::new(fields);
    let method = match request.method {
        Method::Get => WasiMethod::Get,
        Method::Post => WasiMethod::Post,
    };
    let scheme = if url.https {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let invalid = |what: &str| {
        ToolError::invalid_arguments(format!("the host rejected the request's {what}"))
    };
    outgoing
        .set_method(&method)
        .map_err(|()| invalid("method"))?;
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|()| invalid("scheme"))?;
    outgoing
        .set_authority(Some(&url.authority))
        .map_err(|()| invalid("authority"))?;
    outgoing
        .set_path_with_query(Some(&url.path_with_query))
        .map_err(|()| invalid("path"))?;
    let body = match request.body {
        Some(_) => Some(
            outgoing
                .body()
                .map_err(|()| ToolError::failed("request body already taken"))?,
        ),
        None => None,
    };

    let options = RequestOptions::new();
    // The host stops the whole call at its deadline anyway; these make a
    // slow server fail with a readable error instead of a killed call.
    let budget = request.timeout_ms.saturating_mul(1_000_000);
    let _ = options.set_connect_timeout(Some(budget));
    let _ = options.set_first_byte_timeout(Some(budget));
    let _ = options.set_between_bytes_timeout(Some(budget));

    let pending =
        outgoing_handler::handle(outgoing, Some(options)).map_err(|code| error(code, url))?;

    // The body is written after `handle` so the host is already draining it:
    // a body bigger than the host's buffer would otherwise block forever.
    if let (Some(body), Some((_, bytes))) = (body, request.body) {
        {
            let stream = body
                .write()
                .map_err(|()| ToolError::failed("request body stream unavailable"))?;
            for chunk in bytes.chunks(WRITE_CHUNK) {
                stream
                    .blocking_write_and_flush(chunk)
                    .map_err(|err| stream_error(err, "sending the request body", url))?;
            }
            // The stream is a child of the body and must go before `finish`.
        }
        OutgoingBody::finish(body, None).map_err(|code| error(code, url))?;
    }

    let response = loop {
        match pending.get() {
            Some(Ok(Ok(response))) => break response,
            Some(Ok(Err(code))) => return Err(error(code, url)),
            Some(Err(())) => return Err(ToolError::failed("the response was already taken")),
            None => pending.subscribe().block(),
        }
    };
    read_response(response, max_body, url)
}

fn read_response(
    response: IncomingResponse,
    max_body: usize,
    url: &Url,
) -> Result<Response, ToolError> {
    let status = response.status();
    let headers = response.headers().entries();
    let incoming = response
        .consume()
        .map_err(|()| ToolError::failed("the response body was already taken"))?;
    let mut body = Vec::new();
    let mut truncated = false;
    {
        let stream = incoming
            .stream()
            .map_err(|()| ToolError::failed("the response body stream was already taken"))?;
        loop {
            // One byte past the cap tells "exactly the cap" from "longer".
            let want = (max_body + 1 - body.len()) as u64;
            match stream.blocking_read(want) {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(err) => return Err(stream_error(err, "reading the response body", url)),
            }
            if body.len() > max_body {
                body.truncate(max_body);
                truncated = true;
                break;
            }
        }
    }
    Ok(Response {
        status,
        headers,
        body,
        truncated,
    })
}

/// The host refuses ungranted destinations with `HTTP-request-denied`; any
/// other error that says "denied" is treated the same way, since what the
/// model needs to know is that retrying will not help.
fn error(code: ErrorCode, url: &Url) -> ToolError {
    let text = code.to_string();
    let denied = matches!(code, ErrorCode::HttpRequestDenied)
        || text.to_ascii_lowercase().contains("denied");
    if denied {
        ToolError::denied(format!(
            "the host did not grant this plugin network access to {} ({text})",
            url.host
        ))
    } else {
        ToolError::failed(format!("request to {} failed: {text}", url.authority))
    }
}

fn stream_error(err: StreamError, doing: &str, url: &Url) -> ToolError {
    match err {
        StreamError::Closed => ToolError::failed(format!(
            "{doing} for {}: the connection closed",
            url.authority
        )),
        StreamError::LastOperationFailed(io) => {
            // A stream failure carries the HTTP error code when there is one.
            match wasip2::http::types::http_error_code(&io) {
                Some(code) => error(code, url),
                None => ToolError::failed(format!(
                    "{doing} for {}: {}",
                    url.authority,
                    io.to_debug_string()
                )),
            }
        }
    }
}

fn header_names(headers: &[(String, String)]) -> String {
    if headers.is_empty() {
        return "none given".into();
    }
    headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
