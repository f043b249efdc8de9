//! Name resolution with a hook: the default asks the system resolver (`getaddrinfo`, through
//! tokio), and tests or applications can plug in their own mapping, e.g. a name to chosen
//! loopback addresses to exercise RFC 8305 address racing.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;

/// A boxed, sendable future, as [`Resolve::resolve`] returns.
pub type ResolveFuture = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>>;

/// Looks a host name up. Return every address, in the resolver's preference order; the
/// connector interleaves the families and races them (RFC 8305 sections 4 and 5). An empty
/// list or an error is reported as [`super::ClientError::HostNotFound`].
///
/// Any `Fn(&str, u16) -> io::Result<Vec<SocketAddr>>` closure is a resolver, for fixed maps.
pub trait Resolve: Send + Sync + 'static {
    /// The addresses of `host` (never an IP literal: those are used without resolving), with
    /// `port` filled in.
    fn resolve(&self, host: &str, port: u16) -> ResolveFuture;
}

impl<F> Resolve for F
where
    F: Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync + 'static,
{
    fn resolve(&self, host: &str, port: u16) -> ResolveFuture {
        let result = self(host, port);
        Box::pin(async move { result })
    }
}

/// The system resolver (`getaddrinfo` on a blocking thread, through
/// [`tokio::net::lookup_host`]); the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> ResolveFuture {
        let host = host.to_owned();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), port))
                .await?
                .collect())
        })
    }
}

/// A shared resolver that can be cloned into the builder.
#[derive(Clone)]
pub(crate) struct SharedResolver(pub(crate) std::sync::Arc<dyn Resolve>);

impl fmt::Debug for SharedResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Resolver")
    }
}

impl Default for SharedResolver {
    fn default() -> Self {
        Self(std::sync::Arc::new(SystemResolver))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn closures_and_system_resolve() {
        let fixed = |_: &str, port: u16| Ok(vec![SocketAddr::from(([127, 0, 0, 2], port))]);
        let addrs = fixed.resolve("name", 7).await.unwrap();
        assert_eq!(addrs, vec![SocketAddr::from(([127, 0, 0, 2], 7))]);
        let addrs = SystemResolver.resolve("localhost", 80).await.unwrap();
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
    }
}
