//! Negotiating permessage-deflate (RFC 7692 section 7.1) on the server and on the client.

use crate::handshake::ExtensionOffer;

use super::EXTENSION_NAME;

/// What this end is willing to do, for the server's answer or the client's offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    /// The largest LZ77 window the server compresses with, 8 to 15 (section 7.1.2.1); smaller
    /// windows use less memory per connection and compress a little worse. Default 15.
    pub server_max_window_bits: u8,
    /// Limit the client's compression window, 8 to 15, when the client allows it (section
    /// 7.1.2.2); `None` leaves it to the client. Default `None`.
    pub client_max_window_bits: Option<u8>,
    /// The server resets its compressor after every message (section 7.1.1.1): less memory
    /// held between messages, worse ratio on similar messages. Default off.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after every message (section 7.1.1.2). Default off.
    pub client_no_context_takeover: bool,
    /// This end's zlib compression level, 0 (stored, no compression) to 9 (smallest output,
    /// most CPU); values above 9 mean 9. Not negotiated: each end picks its own (RFC 7692
    /// section 7 leaves the compressor's effort to the sender). Default 1, zlib's fastest,
    /// because CPU per message is what a busy server runs out of first; 6 is zlib's default
    /// (Node `ws`, Python `websockets`).
    pub compression_level: u8,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            server_max_window_bits: 15,
            client_max_window_bits: None,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            compression_level: DEFAULT_COMPRESSION_LEVEL,
        }
    }
}

/// zlib's fastest level, [`DeflateConfig::compression_level`]'s default.
pub const DEFAULT_COMPRESSION_LEVEL: u8 = 1;

/// What was agreed, from this end's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The window our compressor may use, 8 to 15.
    pub local_max_window_bits: u8,
    /// Whether our compressor resets after every message.
    pub local_no_context_takeover: bool,
    /// Whether the peer resets after every message (so our decompressor can too, freeing its
    /// window between messages).
    pub remote_no_context_takeover: bool,
    /// Our compressor's zlib level, 0 to 9: not negotiated, taken from this end's
    /// [`DeflateConfig::compression_level`].
    pub local_compression_level: u8,
}

/// Why a client refuses the server's permessage-deflate response (section 7.1: the client
/// must fail the WebSocket connection).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    /// The response names permessage-deflate more than once.
    #[error("permessage-deflate accepted more than once")]
    Repeated,
    /// A parameter appears twice.
    #[error("parameter {0} repeated")]
    DuplicateParameter(String),
    /// A parameter this extension does not define.
    #[error("unknown parameter {0}")]
    UnknownParameter(String),
    /// A parameter with a value it must not have, or without one it needs, or out of range.
    #[error("invalid value for {0}")]
    InvalidValue(String),
    /// `server_max_window_bits` missing or above what the client asked for (section 7.1.2.1).
    #[error("server_max_window_bits missing or larger than requested")]
    ServerWindowTooLarge,
}

/// The parameters of one offer or response, each at most once (section 7.1: a duplicate
/// parameter makes the offer invalid).
#[derive(Debug, Default)]
struct Parameters {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value (only allowed in an offer).
    client_max_window_bits: Option<Option<u8>>,
}

fn window_bits(name: &str, value: Option<&str>) -> Result<u8, NegotiationError> {
    // Section 7.1.2: a decimal integer from 8 to 15, without leading zeros.
    match value {
        Some(v) if !v.starts_with('0') && v.len() <= 2 => match v.parse::<u8>() {
            Ok(bits @ 8..=15) => Ok(bits),
            _ => Err(NegotiationError::InvalidValue(name.to_owned())),
        },
        _ => Err(NegotiationError::InvalidValue(name.to_owned())),
    }
}

fn parse(
    offer: &ExtensionOffer,
    client_window_may_be_empty: bool,
) -> Result<Parameters, NegotiationError> {
    let mut params = Parameters::default();
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in &offer.params {
        let name = name.as_str();
        if seen.iter().any(|s| s.eq_ignore_ascii_case(name)) {
            return Err(NegotiationError::DuplicateParameter(name.to_owned()));
        }
        seen.push(name);
        let flag = |set: &mut bool| match value {
            None => {
                *set = true;
                Ok(())
            }
            Some(_) => Err(NegotiationError::InvalidValue(name.to_owned())),
        };
        match name.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" => flag(&mut params.server_no_context_takeover)?,
            "client_no_context_takeover" => flag(&mut params.client_no_context_takeover)?,
            "server_max_window_bits" => {
                params.server_max_window_bits = Some(window_bits(name, value.as_deref())?)
            }
            "client_max_window_bits" => {
                params.client_max_window_bits = Some(match value {
                    None if client_window_may_be_empty => None,
                    _ => Some(window_bits(name, value.as_deref())?),
                });
            }
            _ => return Err(NegotiationError::UnknownParameter(name.to_owned())),
        }
    }
    Ok(params)
}

/// Server side: picks the first permessage-deflate offer it can honour and returns what was
/// agreed plus the response element for `Sec-WebSocket-Extensions`. `None` (no compression)
/// when there is no such offer or every one is invalid, which declines gracefully.
pub fn accept_offer(
    offers: &[ExtensionOffer],
    config: &DeflateConfig,
) -> Option<(DeflateParams, ExtensionOffer)> {
    offers
        .iter()
        .filter(|offer| offer.name.eq_ignore_ascii_case(EXTENSION_NAME))
        .find_map(|offer| {
            parse(offer, true)
                .ok()
                .map(|params| answer(&params, config))
        })
}

fn answer(offer: &Parameters, config: &DeflateConfig) -> (DeflateParams, ExtensionOffer) {
    let mut response = ExtensionOffer::new(EXTENSION_NAME);
    let server_no_context_takeover =
        offer.server_no_context_takeover || config.server_no_context_takeover;
    if server_no_context_takeover {
        response = response.with_param("server_no_context_takeover", None);
    }
    let client_no_context_takeover = config.client_no_context_takeover;
    if client_no_context_takeover {
        response = response.with_param("client_no_context_takeover", None);
    }
    let server_bits = config
        .server_max_window_bits
        .clamp(8, 15)
        .min(offer.server_max_window_bits.unwrap_or(15));
    if offer.server_max_window_bits.is_some() || server_bits < 15 {
        response = response.with_param("server_max_window_bits", Some(&server_bits.to_string()));
    }
    if let (Some(offered), Some(wanted)) =
        (offer.client_max_window_bits, config.client_max_window_bits)
    {
        let bits = wanted.clamp(8, 15).min(offered.unwrap_or(15));
        response = response.with_param("client_max_window_bits", Some(&bits.to_string()));
    }
    let params = DeflateParams {
        local_max_window_bits: server_bits,
        local_no_context_takeover: server_no_context_takeover,
        // The offer's `client_no_context_takeover` is only a hint (section 7.1.1.2): only a
        // response that includes it binds the client, so only then may inflation reset.
        remote_no_context_takeover: client_no_context_takeover,
        local_compression_level: config.compression_level.min(9),
    };
    (params, response)
}

/// Client side: the offer to send. It always allows the server to limit the client's window
/// (`client_max_window_bits` without a value), as browsers do.
pub fn client_offer(config: &DeflateConfig) -> ExtensionOffer {
    let mut offer = ExtensionOffer::new(EXTENSION_NAME);
    if config.server_no_context_takeover {
        offer = offer.with_param("server_no_context_takeover", None);
    }
    if config.client_no_context_takeover {
        offer = offer.with_param("client_no_context_takeover", None);
    }
    if config.server_max_window_bits < 15 {
        offer = offer.with_param(
            "server_max_window_bits",
            Some(&config.server_max_window_bits.clamp(8, 15).to_string()),
        );
    }
    match config.client_max_window_bits {
        Some(bits) => offer.with_param(
            "client_max_window_bits",
            Some(&bits.clamp(8, 15).to_string()),
        ),
        None => offer.with_param("client_max_window_bits", None),
    }
}

/// Client side: checks the server's response elements (only those naming
/// permessage-deflate) against the offer made from `config`. `Ok(None)`: the server declined.
pub fn confirm_response(
    accepted: &[ExtensionOffer],
    config: &DeflateConfig,
) -> Result<Option<DeflateParams>, NegotiationError> {
    let mut ours = accepted
        .iter()
        .filter(|e| e.name.eq_ignore_ascii_case(EXTENSION_NAME));
    let Some(response) = ours.next() else {
        return Ok(None);
    };
    if ours.next().is_some() {
        return Err(NegotiationError::Repeated);
    }
    let params = parse(response, false)?;
    let requested_server_bits =
        (config.server_max_window_bits < 15).then_some(config.server_max_window_bits.clamp(8, 15));
    match (requested_server_bits, params.server_max_window_bits) {
        (Some(_), None) => return Err(NegotiationError::ServerWindowTooLarge),
        (Some(asked), Some(got)) if got > asked => {
            return Err(NegotiationError::ServerWindowTooLarge)
        }
        _ => {}
    }
    let client_bits = match params.client_max_window_bits {
        Some(Some(bits)) => bits.min(config.client_max_window_bits.unwrap_or(15)),
        Some(None) => {
            return Err(NegotiationError::InvalidValue(
                "client_max_window_bits".into(),
            ))
        }
        None => config.client_max_window_bits.unwrap_or(15),
    };
    Ok(Some(DeflateParams {
        local_max_window_bits: client_bits,
        local_no_context_takeover: params.client_no_context_takeover
            || config.client_no_context_takeover,
        remote_no_context_takeover: params.server_no_context_takeover,
        local_compression_level: config.compression_level.min(9),
    }))
}

#[cfg(test)]
#[path = "negotiate_tests.rs"]
mod tests;
