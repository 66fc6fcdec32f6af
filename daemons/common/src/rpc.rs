//! JSON-RPC 2.0 over HTTP: the server every daemon exposes and the client
//! they use to talk to each other. Framing, parsing and error answers are
//! jsonrpsee's; this module only fixes our defaults (body limits, a `GET /`
//! health answer for `curl http://host:8080`) and error conversion.

use std::net::TcpListener;
use std::time::Duration;

use jsonrpsee::RpcModule;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::server::middleware::http::ProxyGetRequestLayer;
use jsonrpsee::server::{Server, ServerConfig, ServerHandle};
use jsonrpsee::types::ErrorObjectOwned;

/// The method `GET /` and `GET /health` are answered with.
pub const HEALTH_METHOD: &str = "health";

/// Starts serving `module` on `listener` behind the front door
/// ([`crate::front_door`]): requests over `max_body_bytes` (sent with a
/// length or in chunks) are answered with HTTP 413 and a JSON-RPC error,
/// bodies must arrive in time, and with `token` every request but
/// `GET /` needs `Authorization: Bearer <token>`. `health` is the text a
/// `GET /` returns (as a JSON string).
pub fn serve<C: Send + Sync + 'static>(
    listener: TcpListener,
    mut module: RpcModule<C>,
    max_body_bytes: u32,
    health: &'static str,
    token: Option<&str>,
) -> std::io::Result<ServerHandle> {
    module
        .register_method(HEALTH_METHOD, move |_, _, _| health)
        .map_err(std::io::Error::other)?;
    let proxy = ProxyGetRequestLayer::new([("/", HEALTH_METHOD), ("/health", HEALTH_METHOD)])
        .map_err(std::io::Error::other)?;
    let config = ServerConfig::builder()
        .max_request_body_size(max_body_bytes)
        .max_response_body_size(max_body_bytes.saturating_mul(2).max(max_body_bytes))
        .max_connections(4096)
        .http_only()
        .build();
    let server = Server::builder()
        .set_config(config)
        .set_http_middleware(
            tower::ServiceBuilder::new()
                .layer(crate::front_door::FrontDoor::new(
                    token,
                    max_body_bytes as usize,
                    // A LAN link moves a MiB in far less than a second.
                    Duration::from_secs(1),
                ))
                .layer(proxy),
        )
        .build_from_tcp(listener)?;
    Ok(server.start(module))
}

/// A client for a daemon at `url` (`http://host:port`).
pub fn client(
    url: &str,
    timeout: Duration,
    max_body_bytes: u32,
) -> Result<HttpClient, jsonrpsee::core::ClientError> {
    client_with_token(url, timeout, max_body_bytes, None)
}

/// [`client`] sending `Authorization: Bearer <token>` with every request
/// when `token` is some and non-empty.
pub fn client_with_token(
    url: &str,
    timeout: Duration,
    max_body_bytes: u32,
    token: Option<&str>,
) -> Result<HttpClient, jsonrpsee::core::ClientError> {
    let mut headers = http::HeaderMap::new();
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        let mut v = http::HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| {
            jsonrpsee::core::ClientError::Custom("the token is not valid in an HTTP header".into())
        })?;
        v.set_sensitive(true);
        headers.insert(http::header::AUTHORIZATION, v);
    }
    HttpClientBuilder::default()
        .set_headers(headers)
        .request_timeout(timeout)
        .max_request_size(max_body_bytes)
        .max_response_size(max_body_bytes.saturating_mul(2).max(max_body_bytes))
        .build(url)
}

/// A JSON-RPC error with our code and message.
pub fn error(code: i32, message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message.into(), None::<()>)
}
