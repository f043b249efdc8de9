//! The sockway application gateway (work in progress: see the gateway issue).
