use super::*;
use crate::{Config, Event, Role};

const KEEP_ALIVE: KeepAlive = KeepAlive {
    interval: Duration::from_millis(1_000),
    timeout: Duration::from_millis(500),
};

const SETTINGS: Timers = Timers {
    keep_alive: Some(KEEP_ALIVE),
    close_timeout: Duration::from_millis(300),
};

fn opened_at(now: Millis) -> Connection {
    let mut conn = Connection::new(Role::Server, Config::default());
    conn.heard(now);
    conn
}

/// The frame a client sends: `header` with the mask bit set, a zero mask, `payload`.
fn masked(header: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![header, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(payload);
    frame
}

#[test]
fn a_quiet_peer_is_pinged_after_the_interval_and_failed_after_the_timeout() {
    let mut conn = opened_at(10_000);
    assert_eq!(conn.poll_timeout(&SETTINGS), Some(11_000));
    assert_eq!(conn.handle_timeout(10_999, &SETTINGS), None);
    assert!(!conn.has_output());
    assert_eq!(conn.handle_timeout(11_000, &SETTINGS), Some(Timeout::Ping));
    assert_eq!(conn.output(), [0x89, 0x00]);
    conn.advance_output(2);
    assert_eq!(conn.poll_timeout(&SETTINGS), Some(11_500));
    assert_eq!(conn.handle_timeout(11_499, &SETTINGS), None);
    assert_eq!(
        conn.handle_timeout(11_500, &SETTINGS),
        Some(Timeout::KeepAliveFailed(Duration::from_millis(1_500)))
    );
    assert!(conn.is_closed());
    assert_eq!(&conn.output()[..4], [0x88, 20, 0x03, 0xE9]);
}

#[test]
fn hearing_from_the_peer_moves_the_deadline_and_answers_the_ping() {
    let mut conn = opened_at(0);
    conn.heard(700);
    assert_eq!(conn.handle_timeout(1_000, &SETTINGS), None);
    assert_eq!(conn.handle_timeout(1_700, &SETTINGS), Some(Timeout::Ping));
    conn.heard(1_800);
    assert_eq!(conn.poll_timeout(&SETTINGS), Some(2_800));
    assert_eq!(conn.handle_timeout(2_300, &SETTINGS), None);
    assert!(!conn.is_closed());
}

#[test]
fn a_late_call_still_pings_before_it_fails() {
    // A driver that slept long (a stalled event loop) still gives the peer its timeout.
    let mut conn = opened_at(0);
    assert_eq!(conn.handle_timeout(60_000, &SETTINGS), Some(Timeout::Ping));
    assert!(!conn.is_closed());
}

#[test]
fn without_keep_alive_an_open_connection_needs_no_clock() {
    let timers = Timers {
        keep_alive: None,
        ..SETTINGS
    };
    let mut conn = opened_at(0);
    assert_eq!(conn.poll_timeout(&timers), None);
    assert_eq!(conn.handle_timeout(u64::MAX, &timers), None);
    assert!(!conn.has_output());
}

#[test]
fn huge_settings_do_not_overflow() {
    let forever = Timers {
        keep_alive: Some(KeepAlive {
            interval: Duration::MAX,
            timeout: Duration::MAX,
        }),
        close_timeout: Duration::MAX,
    };
    let mut conn = opened_at(u64::MAX - 1);
    assert_eq!(conn.poll_timeout(&forever), Some(u64::MAX));
    assert_eq!(conn.handle_timeout(u64::MAX - 1, &forever), None);
    conn.close(CloseCode::NORMAL, "").unwrap();
    assert_eq!(conn.handle_timeout(u64::MAX - 1, &forever), None);
    assert_eq!(conn.poll_timeout(&forever), Some(u64::MAX));
}

#[test]
fn an_unanswered_close_frame_is_given_up_after_the_close_timeout() {
    let mut conn = opened_at(0);
    conn.close(CloseCode::NORMAL, "bye").unwrap();
    // The phase's clock starts at the first call that sees it: due at once until then.
    assert_eq!(conn.poll_timeout(&SETTINGS), Some(0));
    assert_eq!(conn.handle_timeout(5_000, &SETTINGS), None);
    assert_eq!(conn.poll_timeout(&SETTINGS), Some(5_300));
    // Bytes from the peer (data, no close frame) do not hold the deadline back.
    conn.heard(5_200);
    assert_eq!(conn.handle_timeout(5_299, &SETTINGS), None);
    assert_eq!(
        conn.handle_timeout(5_300, &SETTINGS),
        Some(Timeout::CloseTimedOut(Duration::from_millis(300)))
    );
    assert!(conn.is_closed());
    assert_eq!(conn.poll_timeout(&SETTINGS), None);
    assert_eq!(conn.handle_timeout(9_000, &SETTINGS), None);
}

#[test]
fn a_finished_handshake_gets_the_close_timeout_again_to_close_the_transport() {
    let mut conn = opened_at(0);
    conn.close(CloseCode::NORMAL, "").unwrap();
    assert_eq!(conn.handle_timeout(100, &SETTINGS), None);
    // The peer's reply arrives: the handshake is over, the teardown's clock starts anew.
    let mut input = bytes::BytesMut::from(&masked(0x88, &[0x03, 0xE8])[..]);
    assert!(matches!(
        conn.read_event(&mut input, crate::connection::Delivery::Messages),
        Ok(Some(Event::Close(_)))
    ));
    assert!(conn.is_closed());
    assert_eq!(conn.poll_timeout(&SETTINGS), Some(100));
    assert_eq!(conn.handle_timeout(350, &SETTINGS), None);
    assert_eq!(conn.poll_timeout(&SETTINGS), Some(650));
    assert_eq!(
        conn.handle_timeout(650, &SETTINGS),
        Some(Timeout::CloseTimedOut(Duration::from_millis(300)))
    );
}

#[test]
fn a_keep_alive_failure_leaves_the_close_timeout_for_the_teardown() {
    let mut conn = opened_at(0);
    assert_eq!(conn.handle_timeout(1_000, &SETTINGS), Some(Timeout::Ping));
    assert!(matches!(
        conn.handle_timeout(1_500, &SETTINGS),
        Some(Timeout::KeepAliveFailed(_))
    ));
    assert_eq!(conn.handle_timeout(1_500, &SETTINGS), None);
    assert_eq!(conn.poll_timeout(&SETTINGS), Some(1_800));
    assert!(matches!(
        conn.handle_timeout(1_800, &SETTINGS),
        Some(Timeout::CloseTimedOut(_))
    ));
}
