//! A WebSocket client at the byte level over plain TCP, for 9.11 to 9.14: the
//! upgrade request written by hand, text frames written masked, and the
//! server's frames read back as they came, pings left unanswered.
//!
//! A WebSocket library answers pings as it reads, and a failed answer (the
//! backend has reset the connection) fails the read before the frames
//! already received, the close frame among them, are handed over. This
//! client only ever reads while reading, so what it reports is what the
//! backend sent. It speaks no TLS; the cases that use it need plain TCP.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// The largest message the reader takes: a mutation response is a few
/// hundred bytes, and anything this large is no answer it waits for.
const MAX_MESSAGE_BYTES: u64 = 64 * 1024 * 1024;

/// One thing the backend sent, as the reader saw it.
#[derive(Debug, PartialEq)]
pub(super) enum Received {
    /// A whole text (or binary) message, its fragments joined.
    Text(String),
    /// A close frame, with its code and reason if it had a code.
    Close(Option<(u16, String)>),
    /// The connection ended with no close frame: how.
    Ended(String),
    /// A frame the reader does not take (over [`MAX_MESSAGE_BYTES`]).
    Unreadable(String),
}

/// The reading half: frames as the backend sent them.
#[derive(Debug)]
pub(super) struct Reader(BufReader<OwnedReadHalf>);

/// The writing half: masked text frames. Dropping it does not half-close
/// the connection (tokio's write half would send a FIN); the connection
/// ends when the [`Reader`] goes.
#[derive(Debug)]
pub(super) struct Writer(Option<OwnedWriteHalf>);

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(half) = self.0.take() {
            half.forget();
        }
    }
}

/// Sends the upgrade request for `path` on a connected `stream` to `host`
/// (as the `Host` header names it), and reads the `101` that accepts it.
pub(super) async fn upgrade(
    stream: TcpStream,
    host: &str,
    path: &str,
    within: Duration,
) -> Result<(Reader, Writer), String> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let handshake = async {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        write.write_all(request.as_bytes()).await.map_err(|e| format!("could not send the upgrade request: {e}"))?;
        let mut status = String::new();
        reader.read_line(&mut status).await.map_err(|e| format!("no answer to the upgrade request: {e}"))?;
        if !status.starts_with("HTTP/1.1 101") {
            return Err(format!("expected 101 Switching Protocols for the upgrade, got {:?}", status.trim_end()));
        }
        loop {
            let mut header = String::new();
            let n = reader.read_line(&mut header).await.map_err(|e| format!("the upgrade's headers: {e}"))?;
            if n == 0 || header == "\r\n" {
                return Ok(());
            }
        }
    };
    match tokio::time::timeout(within, handshake).await {
        Ok(Ok(())) => Ok((Reader(reader), Writer(Some(write)))),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!("no WebSocket handshake at {host}{path} within {within:?}")),
    }
}

impl Writer {
    /// Writes text frames, in one write.
    pub(super) async fn texts(&mut self, texts: &[String]) -> std::io::Result<()> {
        let mut bytes = Vec::with_capacity(texts.iter().map(|t| t.len() + 14).sum());
        for text in texts {
            encode_text(text, &mut bytes);
        }
        match &mut self.0 {
            Some(half) => half.write_all(&bytes).await,
            None => Ok(()),
        }
    }
}

/// One text frame as a client sends it: final, masked (with a zero key, so
/// the payload goes as is; a server cannot tell one key from another).
fn encode_text(text: &str, out: &mut Vec<u8>) {
    out.push(0x81);
    match text.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend((n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend((n as u64).to_be_bytes());
        }
    }
    out.extend([0, 0, 0, 0]);
    out.extend(text.as_bytes());
}

impl Reader {
    /// The next message, close or end; pings and pongs are skipped.
    pub(super) async fn next(&mut self) -> Received {
        let mut message = Vec::new();
        loop {
            let (fin, opcode, payload) = match self.frame().await {
                Ok(frame) => frame,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Received::Ended("the connection ended".to_owned())
                }
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => return Received::Unreadable(e.to_string()),
                Err(e) => return Received::Ended(e.to_string()),
            };
            match opcode {
                0x8 => {
                    let code = payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
                    let reason = String::from_utf8_lossy(payload.get(2..).unwrap_or_default()).into_owned();
                    return Received::Close(code.map(|code| (code, reason)));
                }
                0x9 | 0xa => continue,
                _ => message.extend(payload),
            }
            if fin {
                return Received::Text(String::from_utf8_lossy(&message).into_owned());
            }
        }
    }

    /// One frame: whether it is final, its opcode, its (unmasked) payload.
    async fn frame(&mut self) -> std::io::Result<(bool, u8, Vec<u8>)> {
        let mut head = [0u8; 2];
        self.0.read_exact(&mut head).await?;
        let len = match head[1] & 0x7f {
            126 => u64::from(self.0.read_u16().await?),
            127 => self.0.read_u64().await?,
            n => u64::from(n),
        };
        let mask = if head[1] & 0x80 != 0 {
            let mut key = [0u8; 4];
            self.0.read_exact(&mut key).await?;
            Some(key)
        } else {
            None
        };
        if len > MAX_MESSAGE_BYTES {
            let message = format!("a frame of {len} bytes, over the reader's {MAX_MESSAGE_BYTES}");
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, message));
        }
        let mut payload = vec![0u8; len as usize];
        self.0.read_exact(&mut payload).await?;
        if let Some(key) = mask {
            payload.iter_mut().enumerate().for_each(|(i, b)| *b ^= key[i % 4]);
        }
        Ok((head[0] & 0x80 != 0, head[0] & 0x0f, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_frames_carry_their_length_in_the_form_its_size_needs() {
        for (len, head) in [(5, vec![0x81, 0x85]), (300, vec![0x81, 0xfe, 1, 44]), (70_000, vec![0x81, 0xff])] {
            let mut out = Vec::new();
            encode_text(&"x".repeat(len), &mut out);
            assert!(out.starts_with(&head), "{len}: {:?}", &out[..10]);
            assert_eq!(out.len() - len, head.len() + if len > 0xffff { 8 } else { 0 } + 4, "{len}");
        }
    }

    #[tokio::test]
    async fn the_reader_joins_fragments_skips_pings_and_reads_the_close_code() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 1024];
            let mut got = Vec::new();
            while !got.ends_with(b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                got.extend(&buf[..n]);
            }
            let mut frames = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".to_vec();
            frames.extend([0x01, 3]);
            frames.extend(b"hel");
            frames.extend([0x89, 0]);
            frames.extend([0x80, 2]);
            frames.extend(b"lo");
            frames.extend([0x88, 5, 0x03, 0xf5]);
            frames.extend(b"bye");
            socket.write_all(&frames).await.unwrap();
        });
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut reader, _writer) =
            upgrade(stream, &addr.to_string(), "/api/sync", Duration::from_secs(5)).await.unwrap();
        assert_eq!(reader.next().await, Received::Text("hello".to_owned()));
        assert_eq!(reader.next().await, Received::Close(Some((1013, "bye".to_owned()))));
        assert!(matches!(reader.next().await, Received::Ended(_)));
        server.await.unwrap();
    }
}
