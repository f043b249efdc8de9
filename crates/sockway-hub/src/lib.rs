//! # sockway-hub
//!
//! A hub server that speaks the SignalR protocol (dotnet/aspnetcore
//! `src/SignalR/docs/specs/`), so the official SignalR clients connect to it unchanged.

pub mod protocol;
pub mod relay;
mod relay_dispatch;

pub mod channel;
pub mod link;
mod request_head;

pub mod auth;
pub mod claims;
mod connections;
mod endpoint;
mod inbound_queue;
pub mod negotiate;
mod query;
mod response;
pub mod service;
pub mod token;
pub mod transport;

pub use endpoint::{HubService, NotFound};
pub use service::HttpOptions;
pub use transport::HubBody;

mod args;
pub mod backplane;
mod clients;
mod context;
mod error;
mod hub;
pub mod lifetime;
pub mod local;
mod method;
mod options;
mod replay;
mod runtime;
pub mod sample;
pub mod serialized;
pub mod sink;

pub use args::{Argument, Arguments, BindFailure, ClientStream, IntoArguments};
pub use clients::{CallerClients, ClientProxy, Clients, Groups, SingleClientProxy};
pub use context::{HubContext, HubHandle, Items};
pub use error::HubError;
pub use hub::{Hub, HubBuilder};
pub use method::{MethodResult, StreamResult};
pub use options::HubOptions;
