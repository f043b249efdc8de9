//! Shared by the `scaleout_*` tests: a real `redis-server` (Debian's package) on a free
//! loopback port with no persistence, stopped when dropped; a fleet of hub servers, each a
//! `HubService` on its own loopback port, sharing that Redis and one token key and relaying
//! the requests of Server-Sent Events and long polling to each other; and a raw
//! WebSocket client speaking the JSON hub protocol.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use sockway::client::{ClientBuilder, MessageWebSocket};
use sockway::server::{Server, ServerOptions, ShutdownHandle};
use sockway_hub::auth::{AuthRequest, AuthResult};
use sockway_hub::backplane::{
    Backplane, BackplaneStats, RedisBackplane, RedisOptions, ScaleOutLifetimeManager,
    ScaleOutOptions,
};
use sockway_hub::token::TokenKey;
use sockway_hub::{HttpOptions, Hub, HubContext, HubError, HubService};

/// The bound of every wait: generous, CI is a loaded 2-core machine.
pub const WAIT: Duration = Duration::from_secs(20);

/// Where `redis-server` is, or a failure that says how to install it.
fn redis_binary() -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "redis-server was not found on PATH: the scale-out tests need Debian's \
                 redis-server package; run scripts/install-peers.sh (it installs it with apt-get)"
            )
        })
}

/// A free loopback port (bound, read, released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

/// A `redis-server` of the test's own, killed when dropped.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one on a free port and waits until it answers.
    pub async fn start() -> Self {
        let mut server = Self::reserve();
        server.resume().await;
        server
    }

    /// A port for a server that is not running yet ([`RedisServer::resume`] starts it).
    pub fn reserve() -> Self {
        RedisServer {
            port: free_port(),
            child: None,
        }
    }

    /// The URL the hub servers connect to.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Starts the server (again) on its port, with no persistence, and waits until it answers.
    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "redis-server is already running");
        let child = Command::new(redis_binary())
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--protected-mode", "no", "--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let client = redis::Client::open(self.url()).unwrap();
        let ready = async {
            loop {
                if let Ok(mut connection) = client.get_multiplexed_async_connection().await {
                    let pong: redis::RedisResult<String> =
                        redis::cmd("PING").query_async(&mut connection).await;
                    if pong.is_ok() {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(WAIT, ready)
            .await
            .expect("redis-server did not answer in time");
    }

    /// Kills the server at once (SIGKILL), as an outage would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// How many subscribers `channel` has now (`PUBSUB NUMSUB`).
    pub async fn subscribers(&self, channel: &str) -> u64 {
        let client = redis::Client::open(self.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let (_, count): (String, u64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query_async(&mut connection)
            .await
            .unwrap();
        count
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Users by bearer token: `?access_token=alice` is user `alice`; no token is anonymous.
fn users(request: AuthRequest<'_>) -> BoxFuture<'static, AuthResult> {
    let user = request.token.map(str::to_owned);
    Box::pin(std::future::ready(Ok(user)))
}

/// The hub every fleet server runs: one method per target, each sending `Receive(text)`.
pub fn test_hub(lifetime: Arc<ScaleOutLifetimeManager>) -> Hub {
    type R = Result<(), HubError>;
    Hub::builder()
        .lifetime_manager(lifetime)
        .method("WhoAmI", |ctx: HubContext, (): ()| async move {
            Ok::<_, HubError>(ctx.connection_id().to_owned())
        })
        .method("Join", |ctx: HubContext, (group,): (String,)| async move {
            ctx.groups().add(ctx.connection_id(), group).await
        })
        .method("Leave", |ctx: HubContext, (group,): (String,)| async move {
            ctx.groups().remove(ctx.connection_id(), group).await
        })
        .method(
            "AddOther",
            |ctx: HubContext, (id, group): (String, String)| async move {
                ctx.groups().add(id, group).await
            },
        )
        .method(
            "RemoveOther",
            |ctx: HubContext, (id, group): (String, String)| async move {
                ctx.groups().remove(id, group).await
            },
        )
        .method("ToAll", |ctx: HubContext, (t,): (String,)| async move {
            ctx.clients().all().send("Receive", (t,)).await
        })
        .method(
            "ToAllExcept",
            |ctx: HubContext, (ids, t): (Vec<String>, String)| async move {
                ctx.clients().all_except(ids).send("Receive", (t,)).await
            },
        )
        .method("ToOthers", |ctx: HubContext, (t,): (String,)| async move {
            ctx.clients().others().send("Receive", (t,)).await
        })
        .method(
            "ToClient",
            |ctx: HubContext, (id, t): (String, String)| async move {
                ctx.clients().client(id).send("Receive", (t,)).await
            },
        )
        .method(
            "ToClients",
            |ctx: HubContext, (ids, t): (Vec<String>, String)| async move {
                ctx.clients().clients(ids).send("Receive", (t,)).await
            },
        )
        .method(
            "ToGroup",
            |ctx: HubContext, (g, t): (String, String)| async move {
                ctx.clients().group(g).send("Receive", (t,)).await
            },
        )
        .method(
            "ToGroups",
            |ctx: HubContext, (gs, t): (Vec<String>, String)| async move {
                ctx.clients().groups(gs).send("Receive", (t,)).await
            },
        )
        .method(
            "ToGroupExcept",
            |ctx: HubContext, (g, ids, t): (String, Vec<String>, String)| async move {
                ctx.clients()
                    .group_except(g, ids)
                    .send("Receive", (t,))
                    .await
            },
        )
        .method(
            "ToOthersInGroup",
            |ctx: HubContext, (g, t): (String, String)| async move {
                ctx.clients().others_in_group(g).send("Receive", (t,)).await
            },
        )
        .method(
            "ToUser",
            |ctx: HubContext, (u, t): (String, String)| async move {
                let sent: R = ctx.clients().user(u).send("Receive", (t,)).await;
                sent
            },
        )
        .method(
            "ToUsers",
            |ctx: HubContext, (us, t): (Vec<String>, String)| async move {
                ctx.clients().users(us).send("Receive", (t,)).await
            },
        )
        .method(
            "Members",
            |ctx: HubContext, (group,): (String,)| async move { ctx.groups().members(group).await },
        )
        .method(
            "UserConnections",
            |ctx: HubContext, (user,): (String,)| async move {
                ctx.groups().user_connections(user).await
            },
        )
        .method("Ask", |ctx: HubContext, (id,): (String,)| async move {
            ctx.clients()
                .client(id)
                .invoke::<String>("GetMessage", ())
                .await
        })
        .build()
}

/// One hub server of the fleet.
pub struct HubServer {
    pub addr: SocketAddr,
    pub manager: Arc<ScaleOutLifetimeManager>,
    stop: ShutdownHandle,
}

impl Drop for HubServer {
    fn drop(&mut self) {
        self.stop.shutdown();
    }
}

impl HubServer {
    /// A server at `/hub` on a loopback port, routing through Redis at `url`.
    pub async fn start(url: &str, key: &TokenKey, redis: RedisOptions) -> Self {
        Self::start_with(url, key, redis, ScaleOutOptions::default()).await
    }

    /// The same, with the routing layer's settings.
    pub async fn start_with(
        url: &str,
        key: &TokenKey,
        redis: RedisOptions,
        scale: ScaleOutOptions,
    ) -> Self {
        let options = RedisOptions {
            url: url.to_owned(),
            ..redis
        };
        let backplane: Arc<dyn Backplane> =
            Arc::new(RedisBackplane::start(options).expect("a Redis URL"));
        let manager = ScaleOutLifetimeManager::start(backplane, scale)
            .await
            .expect("the backplane is free");
        let http = HttpOptions::default()
            .token_key(key.clone())
            .adopt_signed_tokens(true)
            .relay(manager.clone())
            .authenticator(users);
        let service = HubService::new("/hub", test_hub(manager.clone()), http);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = Server::new(
            ServerOptions::default()
                .handle_signals(false)
                .drain_timeout(Duration::from_secs(1)),
        );
        let stop = server.shutdown_handle();
        tokio::spawn(server.serve(listener, service));
        HubServer {
            addr,
            manager,
            stop,
        }
    }

    /// Waits until the server's backplane is connected (publishing and subscribed).
    pub async fn connected(&self) {
        let wait = async {
            while !self.manager.stats().connected {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .expect("the backplane did not connect in time");
    }
}

impl HubServer {
    /// Waits until the server has seen `count` servers on the fleet channel (it checks every
    /// second), so it knows whom to wait for after an outage.
    pub async fn sees_fleet(&self, count: u64) {
        let wait = async {
            while self.manager.stats().servers < count {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .expect("the server did not see the whole fleet in time");
    }

    /// Waits until `check` holds for the server's backplane counters.
    pub async fn until(&self, what: &str, check: impl Fn(&BackplaneStats) -> bool) {
        let wait = async {
            while !check(&self.manager.stats()) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        if tokio::time::timeout(WAIT, wait).await.is_err() {
            panic!("{what}: not within {WAIT:?}: {:?}", self.manager.stats());
        }
    }
}

/// `count` hub servers sharing one Redis and one token key.
pub async fn fleet(redis: &RedisServer, count: usize, options: RedisOptions) -> Vec<HubServer> {
    let key = TokenKey::random();
    let mut servers = Vec::new();
    for _ in 0..count {
        servers.push(HubServer::start(&redis.url(), &key, options.clone()).await);
    }
    for server in &servers {
        server.connected().await;
    }
    for server in &servers {
        server.sees_fleet(count as u64).await;
    }
    servers
}

/// Negotiates (version 1) with `server` over a plain HTTP/1.1 request; returns the
/// connection id and token.
pub async fn negotiate(server: &HubServer) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let request = "POST /hub/negotiate?negotiateVersion=1 HTTP/1.1\r\nHost: hub\r\n\
                       Content-Length: 0\r\nConnection: close\r\n\r\n";
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        response
    };
    let response = tokio::time::timeout(WAIT, exchange)
        .await
        .expect("negotiate answered in time");
    let text = String::from_utf8(response).expect("a UTF-8 response");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let body = &text[text.find('{').expect("a JSON body")..=text.rfind('}').unwrap()];
    let body: Value = serde_json::from_str(body).expect("negotiate JSON");
    let id = body["connectionId"].as_str().expect("connectionId");
    let token = body["connectionToken"].as_str().expect("connectionToken");
    (id.to_owned(), token.to_owned())
}

/// A raw JSON hub client over WebSockets (negotiation skipped).
pub struct HubClient {
    pub id: String,
    socket: MessageWebSocket,
    records: VecDeque<Value>,
    next_invocation: u64,
}

impl HubClient {
    /// Connects to `server` as `user` (anonymous for `None`) and learns its connection id.
    pub async fn connect(server: &HubServer, user: Option<&str>) -> Self {
        let query = user.map_or(String::new(), |user| format!("?access_token={user}"));
        Self::open(server, &query).await
    }

    /// Connects to `server` with `query` (`?id=TOKEN` for a negotiated connection).
    pub async fn open(server: &HubServer, query: &str) -> Self {
        let url = format!("ws://{}/hub{query}", server.addr);
        let socket = tokio::time::timeout(WAIT, ClientBuilder::new(url).connect_message())
            .await
            .expect("the WebSocket handshake did not finish in time")
            .expect("the hub accepts the WebSocket");
        let mut client = HubClient {
            id: String::new(),
            socket,
            records: VecDeque::new(),
            next_invocation: 0,
        };
        client
            .socket
            .send_text("{\"protocol\":\"json\",\"version\":1}\u{1e}")
            .await
            .unwrap();
        assert_eq!(client.next_any().await, json!({}), "handshake response");
        let id = client.call("WhoAmI", json!([])).await;
        client.id = id["result"].as_str().expect("an id").to_owned();
        client
    }

    /// The next record from the hub, pings included.
    pub async fn next_any(&mut self) -> Value {
        loop {
            if let Some(record) = self.records.pop_front() {
                return record;
            }
            let message = tokio::time::timeout(WAIT, self.socket.recv())
                .await
                .unwrap_or_else(|_| panic!("{}: no message within {WAIT:?}", self.id))
                .expect("the socket reads")
                .expect("the socket is open");
            for record in message.as_bytes().split(|&byte| byte == 0x1e) {
                if !record.is_empty() {
                    self.records
                        .push_back(serde_json::from_slice(record).expect("JSON records"));
                }
            }
        }
    }

    /// The next message that is not a `Ping`.
    pub async fn next(&mut self) -> Value {
        loop {
            let message = self.next_any().await;
            if message["type"] != 6 {
                return message;
            }
        }
    }

    /// Sends one JSON record.
    pub async fn send(&mut self, message: Value) {
        self.socket
            .send_text(&format!("{message}\u{1e}"))
            .await
            .expect("the socket writes");
    }

    /// Invokes `target` and returns its `Completion`; `Receive` invocations that arrive
    /// meanwhile stay queued for [`HubClient::receive`].
    pub async fn call(&mut self, target: &str, arguments: Value) -> Value {
        self.next_invocation += 1;
        let id = self.next_invocation.to_string();
        self.send(json!({"type": 1, "invocationId": id, "target": target, "arguments": arguments}))
            .await;
        let mut kept = Vec::new();
        let completion = loop {
            let message = self.next().await;
            if message["type"] == 3 && message["invocationId"] == id.as_str() {
                break message;
            }
            kept.push(message);
        };
        for message in kept.into_iter().rev() {
            self.records.push_front(message);
        }
        completion
    }

    /// Invokes `target`, which must complete without an error.
    pub async fn ok(&mut self, target: &str, arguments: Value) -> Value {
        let completion = self.call(target, arguments.clone()).await;
        assert!(
            completion.get("error").is_none(),
            "{target}({arguments}) failed: {completion}"
        );
        completion
    }

    /// The text of the next `Receive` invocation.
    pub async fn receive(&mut self) -> String {
        loop {
            let message = self.next().await;
            if message["type"] == 1 && message["target"] == "Receive" {
                return message["arguments"][0].as_str().expect("a text").to_owned();
            }
        }
    }

    /// Every `Receive` text up to (without) `end`, in order.
    pub async fn receive_until(&mut self, end: &str) -> Vec<String> {
        let mut texts = Vec::new();
        loop {
            let text = self.receive().await;
            if text == end {
                return texts;
            }
            texts.push(text);
        }
    }
}
