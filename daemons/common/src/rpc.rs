//! JSON-RPC 2.0 over HTTP: the server every daemon exposes and the client
//! they use to talk to each other. Framing, parsing and error answers are
//! jsonrpsee's; this module only fixes our defaults (body limits, a `GET /`
//! health answer for `curl http://host:8080`) and error conversion.

use std::net::TcpListener;
use std::time::Duration;

use jsonrpsee::Methods;
use jsonrpsee::RpcModule;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::server::middleware::http::ProxyGetRequestLayer;
use jsonrpsee::server::{
    HttpRequest, Server, ServerConfig, ServerHandle, serve_with_graceful_shutdown, stop_channel,
};
use jsonrpsee::types::ErrorObjectOwned;

/// The method `GET /` and `GET /health` are answered with.
pub const HEALTH_METHOD: &str = "health";

/// How a server admits connections and answers.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The largest request (and half the largest answer) in bytes.
    pub max_body_bytes: u32,
    /// The text `GET /` answers with (as a JSON string).
    pub health: &'static str,
    /// With a token, every request but `GET /` needs
    /// `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Connections in all and per peer address.
    pub connections: crate::connections::Limits,
    /// Where the server's own counts go, and what `GET /metrics` shows
    /// (with a token, `GET /metrics` needs it too).
    pub metrics: crate::metrics::Metrics,
    /// Methods (by name prefix) whose failed calls outside a batch are
    /// answered with HTTP 400, as Aztec's servers do.
    pub status_400_for: &'static [&'static str],
}

impl ServeOptions {
    /// Options with default connection limits and no token.
    pub fn new(max_body_bytes: u32, health: &'static str) -> ServeOptions {
        ServeOptions {
            max_body_bytes,
            health,
            token: None,
            connections: crate::connections::Limits::default(),
            metrics: crate::metrics::Metrics::off(),
            status_400_for: &[],
        }
    }
}

/// The peer address of a request, in its extensions.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// Starts serving `module` on `listener` (call inside a Tokio runtime).
///
/// Each connection is admitted against the limits (per peer address and in
/// all: past them HTTP 429 at once, see [`crate::connections`]), its writes
/// may stall for at most [`crate::connections::WRITE_STALL_LIMIT`], and its
/// requests pass the front door ([`crate::front_door`]): body size and
/// deadline, the bearer token, request ids, and the answer budget a method
/// may take through an [`crate::front_door::AnswerSlot`].
pub fn serve<C: Send + Sync + 'static>(
    listener: TcpListener,
    mut module: RpcModule<C>,
    options: ServeOptions,
) -> std::io::Result<ServerHandle> {
    let health = options.health;
    let counts = crate::rpc_metrics::RpcMetrics::new(
        &options.metrics,
        module.method_names().map(str::to_string),
    );
    module
        .register_method(HEALTH_METHOD, move |_, _, _| health)
        .map_err(std::io::Error::other)?;
    let proxy = ProxyGetRequestLayer::new([("/", HEALTH_METHOD), ("/health", HEALTH_METHOD)])
        .map_err(std::io::Error::other)?;
    let max_body_bytes = options.max_body_bytes;
    let config = ServerConfig::builder()
        .max_request_body_size(max_body_bytes)
        .max_response_body_size(max_body_bytes.saturating_mul(2).max(max_body_bytes))
        // Connections are counted by the accept loop below; this counts
        // requests being answered, which cannot exceed it by much.
        .max_connections(
            u32::try_from(options.connections.total.saturating_mul(4)).unwrap_or(u32::MAX),
        )
        .http_only()
        .build();
    let rpc_counts = counts.clone();
    let builder = Server::builder()
        .set_config(config)
        .set_rpc_middleware(
            jsonrpsee::server::middleware::rpc::RpcServiceBuilder::new()
                .layer_fn(move |s| crate::rpc_metrics::Counted::new(s, rpc_counts.clone())),
        )
        .set_http_middleware(
            tower::ServiceBuilder::new()
                .layer(
                    crate::front_door::FrontDoor::new(
                        options.token.as_deref(),
                        max_body_bytes as usize,
                        // A LAN link moves a MiB in far less than a second.
                        Duration::from_secs(1),
                    )
                    .with_metrics(options.metrics.clone(), counts.clone())
                    .with_status_400_for(options.status_400_for),
                )
                .layer(proxy),
        )
        .to_service_builder();
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let methods: Methods = module.into();
    let (stop, handle) = stop_channel();
    let peers = crate::connections::PeerTable::new(options.connections);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                r = listener.accept() => r,
                () = stop.clone().shutdown() => break,
            };
            let (socket, remote) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: wait, do not spin.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let admitted = match peers.admit(remote.ip()) {
                Ok(a) => a,
                Err(why) => {
                    tracing::debug!("connection from {remote} refused: {why:?}");
                    counts.refused("too_many_connections");
                    tokio::spawn(crate::connections::refuse(socket, why));
                    continue;
                }
            };
            let _ = socket.set_nodelay(true);
            let service = builder.clone().build(methods.clone(), stop.clone());
            let per_request =
                tower::service_fn(move |mut req: HttpRequest<hyper::body::Incoming>| {
                    req.extensions_mut().insert(PeerAddr(remote));
                    let mut service = service.clone();
                    async move { tower::Service::call(&mut service, req).await }
                });
            let io =
                crate::connections::StallLimit::new(socket, crate::connections::WRITE_STALL_LIMIT);
            // Boxed so the connection's future has one named type (the
            // compiler cannot prove the unboxed one Send for all lifetimes).
            let connection: std::pin::Pin<
                Box<dyn std::future::Future<Output = Result<(), jsonrpsee::core::BoxError>> + Send>,
            > = Box::pin(serve_with_graceful_shutdown(
                io,
                per_request,
                stop.clone().shutdown(),
            ));
            tokio::spawn(async move {
                let _admitted = admitted;
                if let Err(e) = connection.await {
                    tracing::debug!("connection from {remote} ended: {e}");
                }
            });
        }
    });
    Ok(handle)
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
