//! # sockway-hub
//!
//! A hub server that speaks the SignalR protocol (dotnet/aspnetcore
//! `src/SignalR/docs/specs/`), so the official SignalR clients connect to it unchanged.

pub mod protocol;

pub mod link;
