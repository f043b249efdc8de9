//! The stream client: `AsyncRead + AsyncWrite` over binary messages, through an echo server.
//!
//! `bulk_transfer_through_echo_stays_bounded` moves 1 GiB each way (about 20 s unoptimised on
//! 2 cores; `SOCKWAY_STREAM_BYTES` sets another size), verifying every byte and a checksum, and
//! reporting time, throughput and peak memory growth (`--nocapture` shows them).

#![cfg(feature = "client")]

mod client_support;

use std::time::{Duration, Instant};

use client_support::*;
use sockway::client::ClientBuilder;
use sockway::{CloseCode, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

/// The repeating content: a pseudo-random block whose length is not a power of two, so that
/// message and read boundaries fall everywhere in it.
fn pattern() -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..1_048_573)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

fn transfer_size() -> u64 {
    std::env::var("SOCKWAY_STREAM_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 30)
}

/// A position-dependent checksum of a stream, updated a slice at a time (Fletcher-like over
/// bytes, with the position folded in so reordering is caught too).
#[derive(Default)]
struct Checksum {
    a: u64,
    b: u64,
}

impl Checksum {
    fn update(&mut self, data: &[u8]) {
        for chunk in data.chunks(4096) {
            for &byte in chunk {
                self.a = self.a.wrapping_add(u64::from(byte));
                self.b = self.b.wrapping_add(self.a);
            }
            self.a %= 0xffff_fffb;
            self.b %= 0xffff_fffb;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_transfer_through_echo_stays_bounded() {
    let total = transfer_size();
    let pattern = std::sync::Arc::new(pattern());
    let addr = echo_server().await;
    let socket = ClientBuilder::new(format!("ws://{addr}/"))
        .stream_chunk_size(256 * 1024)
        .write_buffer_limit(512 * 1024)
        .read_buffer_size(64 * 1024)
        .connect_stream();
    let socket = timeout(STEP, socket).await.unwrap().unwrap();
    let (mut reader, mut writer) = socket.into_split();

    let rss_before = proc_status_kib("VmRSS:").unwrap_or(0);
    let started = Instant::now();

    let source = pattern.clone();
    let write = tokio::spawn(async move {
        let mut sent = 0u64;
        let mut sum = Checksum::default();
        while sent < total {
            let at = (sent % source.len() as u64) as usize;
            let len = (source.len() - at)
                .min((total - sent) as usize)
                .min(1 << 20);
            let slice = &source[at..at + len];
            writer.write_all(slice).await.unwrap();
            sum.update(slice);
            sent += len as u64;
        }
        writer.shutdown().await.unwrap();
        (sum.a, sum.b)
    });

    let mut received = 0u64;
    let mut sum = Checksum::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = timeout(Duration::from_secs(120), reader.read(&mut buf))
            .await
            .expect("stalled")
            .unwrap();
        if n == 0 {
            break;
        }
        // Byte-for-byte check against the pattern (memcmp, fast even unoptimised).
        let mut checked = 0;
        while checked < n {
            let at = ((received + checked as u64) % pattern.len() as u64) as usize;
            let len = (pattern.len() - at).min(n - checked);
            assert!(
                buf[checked..checked + len] == pattern[at..at + len],
                "corrupt data near offset {}",
                received + checked as u64
            );
            checked += len;
        }
        sum.update(&buf[..n]);
        received += n as u64;
    }
    let elapsed = started.elapsed();
    let sent_sum = write.await.unwrap();
    let hwm = proc_status_kib("VmHWM:").unwrap_or(0);
    let rss_after = proc_status_kib("VmRSS:").unwrap_or(0);

    assert_eq!(received, total);
    assert_eq!((sum.a, sum.b), sent_sum, "checksums differ");
    let close = reader.close_info().expect("closed");
    assert_eq!(close.code, CloseCode::NORMAL);

    let growth_kib = hwm.saturating_sub(rss_before);
    let mib = total as f64 / (1 << 20) as f64;
    eprintln!(
        "stream echo: {mib:.0} MiB each way in {:.2} s ({:.0} MiB/s each way); \
         RSS before {} KiB, after {} KiB, peak (VmHWM) {} KiB, peak growth {} KiB",
        elapsed.as_secs_f64(),
        mib / elapsed.as_secs_f64(),
        rss_before,
        rss_after,
        hwm,
        growth_kib
    );
    // Bounded memory: nothing close to the transfer size is ever held (the pattern itself is
    // 1 MiB; socket buffers and in-flight chunks a few more).
    assert!(growth_kib < 64 * 1024, "peak RSS grew by {growth_kib} KiB");
}

#[tokio::test]
async fn small_writes_go_out_without_flush_and_reads_cross_messages() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let addr = serve_once(|tcp| async move {
        let (mut ws, _) = accept(tcp, "").await;
        // The client's first write arrives without the client flushing.
        let first = ws.recv().await.unwrap();
        // Several messages, one empty and one text: the reader sees one byte stream.
        ws.send_binary(b"abc").await.unwrap();
        ws.send_binary(b"").await.unwrap();
        ws.send_text("def").await.unwrap();
        ws.send_binary(b"ghi").await.unwrap();
        let _ = tx.send(first);
        let _ = ws.close(CloseCode::NORMAL, "").await;
    })
    .await;
    let mut socket = ClientBuilder::new(format!("ws://{addr}/"))
        .connect_stream()
        .await
        .unwrap();
    assert_eq!(socket.write(b"hello").await.unwrap(), 5);
    assert_eq!(
        timeout(STEP, rx).await.unwrap().unwrap(),
        Some(Message::binary(&b"hello"[..]))
    );
    let mut all = Vec::new();
    timeout(STEP, socket.read_to_end(&mut all))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(all, b"abcdefghi");
    assert!(socket.stats().messages_received >= 4);
}

#[tokio::test]
async fn writes_are_cut_into_bounded_messages() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let addr = serve_once(|tcp| async move {
        let (mut ws, _) = accept(tcp, "").await;
        let mut sizes = Vec::new();
        while let Ok(Some(message)) = ws.recv().await {
            sizes.push(message.len());
        }
        let _ = tx.send(sizes);
    })
    .await;
    let mut socket = ClientBuilder::new(format!("ws://{addr}/"))
        .stream_chunk_size(1000)
        .connect_stream()
        .await
        .unwrap();
    socket.write_all(&[7u8; 2500]).await.unwrap();
    socket.shutdown().await.unwrap();
    let sizes = timeout(STEP, rx).await.unwrap().unwrap();
    assert_eq!(sizes, vec![1000, 1000, 500]);
}

#[tokio::test]
async fn a_server_error_close_is_a_read_error() {
    let addr = serve_once(|tcp| async move {
        let (mut ws, _) = accept(tcp, "").await;
        ws.send_binary(b"partial").await.unwrap();
        let _ = ws.close(CloseCode::INTERNAL_ERROR, "disk full").await;
    })
    .await;
    let mut socket = ClientBuilder::new(format!("ws://{addr}/"))
        .connect_stream()
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let n = socket.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"partial");
    let e = timeout(STEP, socket.read(&mut buf))
        .await
        .unwrap()
        .unwrap_err();
    assert!(e.to_string().contains("1011"), "{e}");
    // After the error, the stream is at its end.
    assert_eq!(socket.read(&mut buf).await.unwrap(), 0);
}
