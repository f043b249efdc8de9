//! The Unix side of [`super`]: passing listening sockets between processes over a Unix
//! socket with `SCM_RIGHTS` (unix(7)).

use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

use super::Inherited;

/// Most sockets handed over at once (listeners on distinct ports plus the admin one).
const MAX_SOCKETS: usize = 256;

/// How long each side waits for the other's next message.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// The new process's side after it received the sockets: it must say when it accepts.
#[derive(Debug)]
pub struct Taken {
    stream: UnixStream,
}

impl Taken {
    /// Tells the old process that the new one accepts, and waits until the old one has
    /// stopped accepting (`done`). Returns whether it did.
    pub async fn ready(self) -> bool {
        let mut stream = self.stream;
        tokio::task::spawn_blocking(move || {
            stream.write_all(b"ready\n").ok()?;
            (read_line(&mut stream)? == "done").then_some(())
        })
        .await
        .ok()
        .flatten()
        .is_some()
    }
}

/// Asks a gateway running with the same configuration for its sockets; `None` when none
/// answers at `path`.
pub async fn take_over(path: &Path) -> Option<(Inherited, Taken)> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut stream = UnixStream::connect(&path).ok()?;
        stream.set_read_timeout(Some(STEP_TIMEOUT)).ok()?;
        stream.set_write_timeout(Some(STEP_TIMEOUT)).ok()?;
        stream.write_all(b"take\n").ok()?;
        let (keys, fds) = receive(&stream)?;
        let sockets = keys
            .into_iter()
            .zip(fds)
            .map(|(key, fd)| (key, std::net::TcpListener::from(fd)))
            .collect();
        Some((Inherited { sockets }, Taken { stream }))
    })
    .await
    .ok()
    .flatten()
}

fn receive(stream: &UnixStream) -> Option<(Vec<String>, Vec<OwnedFd>)> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut space = nix::cmsg_space!([RawFd; MAX_SOCKETS]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .ok()?;
    let mut fds = Vec::new();
    for cmsg in msg.cmsgs().ok()? {
        if let ControlMessageOwned::ScmRights(raw) = cmsg {
            // SAFETY: the kernel has just installed these descriptors in this process for
            // this message (SCM_RIGHTS); nothing else owns them.
            fds.extend(
                raw.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    let len = msg.bytes;
    let line = std::str::from_utf8(&buf[..len]).ok()?.trim_end();
    let keys: Vec<String> = serde_json::from_str(line).ok()?;
    (keys.len() == fds.len()).then_some((keys, fds))
}

/// Reads one line (at most 64 bytes).
fn read_line(stream: &mut UnixStream) -> Option<String> {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    while out.len() < 64 {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        if byte[0] == b'\n' {
            return String::from_utf8(out).ok();
        }
        out.push(byte[0]);
    }
    None
}

/// Listens at `path` for a new process; binds over a stale socket file (one nobody answers
/// on). Fails when a live gateway answers there.
pub fn listen(path: &Path) -> Result<UnixListener, String> {
    if UnixStream::connect(path).is_ok() {
        return Err(format!(
            "{}: another gateway is running with this configuration",
            path.display()
        ));
    }
    let _ = std::fs::remove_file(path);
    UnixListener::bind(path).map_err(|e| format!("cannot listen on {}: {e}", path.display()))
}

/// Waits for a new process at `listener` and hands it the sockets that `sockets` lists when
/// it asks; returns once it said it accepts, after removing the socket file and answering
/// `done`, so the caller can stop accepting and drain. A peer that breaks off midway is
/// dropped and the next one awaited. Waiting is asynchronous; each exchange is bounded by
/// ten seconds per message.
pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    sockets: impl Fn() -> Vec<(String, OwnedFd)> + Send + Sync + 'static,
) {
    let sockets = std::sync::Arc::new(sockets);
    let listener = listener
        .set_nonblocking(true)
        .and_then(|()| tokio::net::UnixListener::from_std(listener));
    let listener = match listener {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("hand-over socket: {e}");
            return std::future::pending().await;
        }
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        let sockets = sockets.clone();
        let path = path.clone();
        let handed =
            tokio::task::spawn_blocking(move || exchange(stream, &path, sockets.as_ref())).await;
        match handed {
            Ok(Some(())) => return,
            Ok(None) => tracing::warn!("a hand-over request broke off; still running"),
            Err(_) => return,
        }
    }
}

fn exchange(
    mut stream: UnixStream,
    path: &Path,
    sockets: &(impl Fn() -> Vec<(String, OwnedFd)> + ?Sized),
) -> Option<()> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(STEP_TIMEOUT)).ok()?;
    stream.set_write_timeout(Some(STEP_TIMEOUT)).ok()?;
    (read_line(&mut stream)? == "take").then_some(())?;
    let (keys, fds): (Vec<String>, Vec<OwnedFd>) = sockets().into_iter().unzip();
    let line = format!("{}\n", serde_json::to_string(&keys).ok()?);
    let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let cmsg = [ControlMessage::ScmRights(&raw)];
    let iov = [IoSlice::new(line.as_bytes())];
    sendmsg::<()>(stream.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None).ok()?;
    (read_line(&mut stream)? == "ready").then_some(())?;
    let _ = std::fs::remove_file(path);
    stream.write_all(b"done\n").ok()?;
    Some(())
}
