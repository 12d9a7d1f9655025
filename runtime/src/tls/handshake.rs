//! The handshakes of both sides, under their timeout, with every failure
//! turned into a [`TlsError`] that says what to fix.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use rustls::{AlertDescription, CertificateError, InvalidMessage};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::{ClientTlsConfig, PeerIdentity, ServerTlsConfig, TlsError};
use crate::error::StatusCode;
use crate::protocol::{FrameDecoder, MessageKind};

/// A server's end of a TLS connection.
pub(crate) type ServerStream = tokio_rustls::server::TlsStream<TcpStream>;
/// A client's end of a TLS connection.
pub(crate) type ClientStream = tokio_rustls::client::TlsStream<Sniffed<TcpStream>>;

/// A fatal `unexpected_message` alert record: what a TLS server answers a
/// client that sent plaintext, so that the client sees TLS bytes and can
/// say so.
const UNEXPECTED_MESSAGE_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x0A];
/// The first byte of a Courier frame (the magic `0xCA11`); never a TLS
/// record type.
const COURIER_FIRST_BYTE: u8 = 0xCA;
/// After a failed handshake, how long unread input is drained before the
/// socket is closed (closing with unread input sends a reset, which can
/// destroy the alert before the peer reads it).
const LINGER: Duration = Duration::from_millis(500);
/// At most this much input is drained while lingering.
const LINGER_MAX_BYTES: usize = 64 * 1024;

/// The server's handshake: the connection and the client's identity (with
/// mutual TLS), or why it failed (the alert, if any, has been sent).
pub(crate) async fn accept(
    config: &ServerTlsConfig,
    stream: TcpStream,
) -> Result<(ServerStream, Option<Arc<PeerIdentity>>), TlsError> {
    let timeout = config.handshake_timeout();
    let (error, stream) = match tokio::time::timeout(timeout, handshake(config, stream)).await {
        Ok(Ok(connected)) => return Ok(connected),
        Ok(Err(failed)) => failed,
        Err(_) => return Err(TlsError::HandshakeTimeout(timeout)),
    };
    if let Some(mut stream) = stream {
        if matches!(error, TlsError::ClientNotTls) {
            let _ = stream.write_all(&UNEXPECTED_MESSAGE_ALERT).await;
        }
        linger(stream).await;
    }
    Err(error)
}

async fn handshake(
    config: &ServerTlsConfig,
    stream: TcpStream,
) -> Result<(ServerStream, Option<Arc<PeerIdentity>>), (TlsError, Option<TcpStream>)> {
    let mut first = [0u8; 1];
    match stream.peek(&mut first).await {
        Ok(0) => {
            let closed = "the client closed the connection before the handshake";
            return Err((TlsError::Handshake(closed.to_owned()), None));
        }
        Ok(_) if first[0] == COURIER_FIRST_BYTE => {
            return Err((TlsError::ClientNotTls, Some(stream)));
        }
        Ok(_) => {}
        Err(e) => return Err((TlsError::Handshake(e.to_string()), None)),
    }
    let acceptor = TlsAcceptor::from(Arc::clone(&config.rustls));
    match acceptor.accept(stream).into_fallible().await {
        Ok(tls) => {
            let identity = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|leaf| PeerIdentity::from_der(leaf))
                .map(Arc::new);
            Ok((tls, identity))
        }
        Err((e, stream)) => Err((server_error(&e), Some(stream))),
    }
}

/// Shuts the write side (after the alert) and drains input for a while.
async fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let mut scratch = [0u8; 4096];
    let mut total = 0usize;
    let _ = tokio::time::timeout(LINGER, async {
        while total < LINGER_MAX_BYTES {
            match stream.read(&mut scratch).await {
                Ok(0) | Err(_) => return,
                Ok(n) => total += n,
            }
        }
    })
    .await;
}

/// The client's handshake with the server `name`.
pub(crate) async fn connect(
    config: &ClientTlsConfig,
    name: ServerName<'static>,
    stream: TcpStream,
) -> Result<ClientStream, TlsError> {
    let expected = name.to_str().into_owned();
    let connector = TlsConnector::from(Arc::clone(&config.rustls));
    let timeout = config.handshake_timeout();
    let handshake = connector
        .connect(name, Sniffed::new(stream))
        .into_fallible();
    match tokio::time::timeout(timeout, handshake).await {
        Ok(Ok(mut tls)) => {
            tls.get_mut().0.stop();
            Ok(tls)
        }
        Ok(Err((e, sniffed))) => Err(plaintext_answer(&sniffed.first)
            .or_else(|| client_error(&e, &expected))
            .unwrap_or_else(|| match e.kind() {
                io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe => TlsError::ServerNotTls(
                    "closed the connection during the handshake without a TLS alert",
                ),
                _ => TlsError::Handshake(e.to_string()),
            })),
        Err(_) => Err(TlsError::HandshakeTimeout(timeout)),
    }
}

/// A client-side read or write error that rustls raised (an alert from
/// the server after the handshake, such as a refused client certificate).
pub(crate) fn client_error(e: &io::Error, expected_name: &str) -> Option<TlsError> {
    rustls_error(e).map(|e| classify(e, "server", expected_name))
}

fn server_error(e: &io::Error) -> TlsError {
    match rustls_error(e) {
        Some(e) => classify(e, "client", ""),
        None => TlsError::Handshake(e.to_string()),
    }
}

fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// `peer`: whose certificate this side verifies (`server` on a client).
fn classify(e: &rustls::Error, peer: &'static str, expected_name: &str) -> TlsError {
    match e {
        rustls::Error::InvalidCertificate(certificate) => match certificate {
            CertificateError::NotValidForName => TlsError::WrongServerName {
                expected: expected_name.to_owned(),
                presented: Vec::new(),
            },
            CertificateError::NotValidForNameContext {
                expected,
                presented,
            } => TlsError::WrongServerName {
                expected: expected.to_str().into_owned(),
                presented: presented.iter().map(|name| bare_name(name)).collect(),
            },
            CertificateError::UnknownIssuer => TlsError::UntrustedCertificate { peer },
            CertificateError::Expired => TlsError::Expired {
                peer,
                not_after: None,
            },
            CertificateError::ExpiredContext { not_after, .. } => TlsError::Expired {
                peer,
                not_after: Some(not_after.as_secs()),
            },
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                TlsError::NotYetValid { peer }
            }
            _ => TlsError::BadCertificate {
                peer,
                reason: e.to_string(),
            },
        },
        rustls::Error::NoCertificatesPresented => TlsError::NoClientCertificate,
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired) if peer == "server" => {
            TlsError::ClientCertificateRequired
        }
        rustls::Error::AlertReceived(
            alert @ (AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied),
        ) if peer == "server" => TlsError::ClientCertificateRejected {
            alert: format!("{alert:?}"),
        },
        rustls::Error::AlertReceived(
            alert @ (AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA),
        ) => TlsError::ServerCertificateRejected {
            alert: format!("{alert:?}"),
        },
        rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType) if peer == "server" => {
            TlsError::ServerNotTls("answered with bytes that are not a TLS record")
        }
        rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType) => TlsError::Handshake(
            "the client sent bytes that are not a TLS record (is it speaking TLS?)".to_owned(),
        ),
        other => TlsError::Handshake(other.to_string()),
    }
}

/// A name as rustls lists it (`DnsName("localhost")`, `IpAddress(127.0.0.1)`)
/// without the wrapping.
fn bare_name(name: &str) -> String {
    let inner = name
        .strip_prefix("DnsName(")
        .or_else(|| name.strip_prefix("IpAddress("))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or(name);
    inner.trim_matches('"').to_owned()
}

/// What a server that answered a ClientHello with a Courier frame meant:
/// a status it sent before any TLS (such as a connection limit), or that
/// it speaks plaintext Courier.
fn plaintext_answer(first: &[u8]) -> Option<TlsError> {
    if first.first() != Some(&0xCA) {
        return None;
    }
    let mut buf = BytesMut::from(first);
    let refusal = match FrameDecoder::new(SNIFF_LIMIT as u32).decode(&mut buf) {
        Ok(Some(frame))
            if frame.header.kind == MessageKind::Response && frame.header.status > 1 =>
        {
            let code = StatusCode::from_u8(frame.header.status);
            Some(format!(
                "status {code}: {}",
                crate::protocol::refusal_message(&frame.body)
            ))
        }
        _ => None,
    };
    Some(match refusal {
        Some(status) => TlsError::RefusedBeforeTls(status),
        None => TlsError::ServerNotTls("answered with plaintext Courier frames"),
    })
}

/// At most this many of the server's first bytes are kept.
const SNIFF_LIMIT: usize = 512;

/// The client's TCP stream under TLS, keeping the first bytes the server
/// sends during the handshake, so that a failed handshake can tell what
/// came instead of TLS. Stopped once the handshake succeeds: then it only
/// passes calls through.
#[derive(Debug)]
pub(crate) struct Sniffed<S> {
    inner: S,
    first: Vec<u8>,
    recording: bool,
}

impl<S> Sniffed<S> {
    fn new(inner: S) -> Sniffed<S> {
        Sniffed {
            inner,
            first: Vec::new(),
            recording: true,
        }
    }

    fn stop(&mut self) {
        self.recording = false;
        self.first = Vec::new();
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Sniffed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.recording {
            let new = &buf.filled()[before..];
            let room = SNIFF_LIMIT.saturating_sub(this.first.len());
            this.first.extend_from_slice(&new[..new.len().min(room)]);
        }
        read
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Sniffed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
