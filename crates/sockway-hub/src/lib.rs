//! # sockway-hub
//!
//! A hub server that speaks the SignalR protocol (dotnet/aspnetcore
//! `src/SignalR/docs/specs/`), so the official SignalR clients connect to it unchanged.

pub mod protocol;

pub mod link;

pub mod auth;
mod connections;
pub mod negotiate;
pub mod service;
pub mod token;
pub mod transport;

pub use service::{HttpOptions, HubService, NotFound};
pub use transport::HubBody;
