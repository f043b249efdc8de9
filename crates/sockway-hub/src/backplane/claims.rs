//! [`ConnectionClaims`] in Redis: `SET <prefix>:started:<id> 1 NX PX <ttl>`, which only the
//! first caller sets, with the token's remaining lifetime as expiry so the keys go away with
//! the tokens.

use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::aio::MultiplexedConnection;
use tokio::sync::Mutex;

use crate::claims::ConnectionClaims;

/// Connection claims kept in the fleet's Redis server, on a connection of their own.
pub struct RedisClaims {
    client: redis::Client,
    prefix: String,
    timeout: Duration,
    connection: Mutex<Option<MultiplexedConnection>>,
}

impl std::fmt::Debug for RedisClaims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisClaims")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisClaims {
    /// Claims in the Redis server at `url`, under keys starting with `prefix` (the
    /// backplane's channel prefix, `RedisOptions::channel_prefix`); each connection attempt
    /// and each command may take `timeout` (the backplane's `response_timeout`, 5 s). Fails
    /// only on a URL that is not a Redis URL; connects on first use.
    pub fn new(url: &str, prefix: &str, timeout: Duration) -> Result<Self, redis::RedisError> {
        Ok(RedisClaims {
            client: redis::Client::open(url)?,
            prefix: prefix.to_owned(),
            timeout,
            connection: Mutex::new(None),
        })
    }

    async fn set_once(&self, key: String, ttl: Duration) -> redis::RedisResult<bool> {
        let mut slot = self.connection.lock().await;
        let mut connection = match slot.as_ref() {
            Some(connection) => connection.clone(),
            None => {
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout));
                let connection = self
                    .client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                *slot = Some(connection.clone());
                connection
            }
        };
        drop(slot);
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let set: redis::RedisResult<Option<String>> = redis::cmd("SET")
            .arg(key)
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(millis)
            .query_async(&mut connection)
            .await;
        if set.is_err() {
            // A broken connection is made again on the next claim.
            *self.connection.lock().await = None;
        }
        Ok(set?.is_some())
    }
}

impl ConnectionClaims for RedisClaims {
    fn claim(&self, connection_id: &str, ttl: Duration) -> BoxFuture<'_, Result<bool, String>> {
        let key = format!("{}:started:{connection_id}", self.prefix);
        Box::pin(async move {
            self.set_once(key, ttl)
                .await
                .map_err(|error| format!("cannot reach Redis to claim the connection: {error}"))
        })
    }
}
