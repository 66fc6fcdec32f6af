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

/// Starts serving `module` on `listener`. Requests over `max_body_bytes` are
/// answered with HTTP 413 and a JSON-RPC error. `health` is the text a
/// `GET /` returns (as a JSON string).
pub fn serve<C: Send + Sync + 'static>(
    listener: TcpListener,
    mut module: RpcModule<C>,
    max_body_bytes: u32,
    health: &'static str,
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
        .set_http_middleware(tower::ServiceBuilder::new().layer(proxy))
        .build_from_tcp(listener)?;
    Ok(server.start(module))
}

/// A client for a daemon at `url` (`http://host:port`).
pub fn client(
    url: &str,
    timeout: Duration,
    max_body_bytes: u32,
) -> Result<HttpClient, jsonrpsee::core::ClientError> {
    HttpClientBuilder::default()
        .request_timeout(timeout)
        .max_request_size(max_body_bytes)
        .max_response_size(max_body_bytes.saturating_mul(2).max(max_body_bytes))
        .build(url)
}

/// A JSON-RPC error with our code and message.
pub fn error(code: i32, message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message.into(), None::<()>)
}
