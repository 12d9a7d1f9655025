//! [`TlsError`]: what went wrong with TLS, said so that the reader knows
//! what to fix.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A TLS failure: a configuration that cannot be used, or a handshake (or
/// the certificate check that follows it) that failed. Every message says
/// which side has to change what.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("cannot read the {what} file `{}`: {source}", path.display())]
    ReadFile {
        /// What the file should hold (`certificate chain`, `private key`, `CA certificates`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// PEM text holds no usable item of the kind wanted, or a broken one.
    #[error("the {what} ({source_name}) is not usable: {reason}")]
    Pem {
        /// What the PEM should hold.
        what: &'static str,
        /// Where it came from: a file name, or `PEM text`.
        source_name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The certificates and key given cannot make a TLS configuration (for
    /// instance, the key does not belong to the certificate).
    #[error("invalid TLS configuration: {0}")]
    Config(String),
    /// The name to check the server's certificate against is neither a DNS
    /// name nor an IP address.
    #[error(
        "`{0}` is not a valid TLS server name (a DNS name or an IP address); set one with ClientTlsConfig::with_server_name"
    )]
    InvalidServerName(String),
    /// The handshake did not finish in time.
    #[error("the TLS handshake did not finish within {0:?}")]
    HandshakeTimeout(Duration),
    /// The server's certificate holds other names than the one the client
    /// checks.
    #[error(
        "the server presented a certificate for {}, not `{expected}`; connect by a name the certificate holds, or set the name to check with ClientTlsConfig::with_server_name (demo: --tls-server-name)",
        list_names(presented)
    )]
    WrongServerName {
        /// The name the client checked.
        expected: String,
        /// The names the certificate holds (DNS names and IP addresses).
        presented: Vec<String>,
    },
    /// The peer's certificate is not signed by a CA this side trusts.
    #[error(
        "the {peer}'s certificate is not signed by a trusted CA; {}",
        if *peer == "server" {
            "add the CA that signed it to the channel's roots (ClientTlsConfig, demo: --tls-ca)"
        } else {
            "the client needs a certificate signed by the CA the server requires (ServerTlsConfig::with_client_ca_pem_file, demo: --tls-ca)"
        }
    )]
    UntrustedCertificate {
        /// `server` or `client`: whose certificate.
        peer: &'static str,
    },
    /// The peer's certificate has expired.
    #[error("the {peer}'s certificate has expired{}; renew it", at_time(*not_after))]
    Expired {
        /// `server` or `client`: whose certificate.
        peer: &'static str,
        /// Its `notAfter`, in seconds since the Unix epoch, when known.
        not_after: Option<u64>,
    },
    /// The peer's certificate is not valid yet.
    #[error("the {peer}'s certificate is not valid yet; check its notBefore and both clocks")]
    NotYetValid {
        /// `server` or `client`: whose certificate.
        peer: &'static str,
    },
    /// The peer's certificate was refused for another reason.
    #[error("the {peer}'s certificate was refused: {reason}")]
    BadCertificate {
        /// `server` or `client`: whose certificate.
        peer: &'static str,
        /// rustls's reason.
        reason: String,
    },
    /// Server side: the client sent no certificate, but mutual TLS is on.
    #[error(
        "the client sent no certificate, but this server requires one (mutual TLS); give the channel a client certificate"
    )]
    NoClientCertificate,
    /// Client side: the server requires a client certificate and the
    /// channel has none.
    #[error(
        "the server requires a client certificate (mutual TLS); give the channel one with ClientTlsConfig::with_identity_pem_files (demo: --tls-cert/--tls-key)"
    )]
    ClientCertificateRequired,
    /// Client side: the server refused the client's certificate.
    #[error(
        "the server refused this client's certificate ({alert}); use a certificate signed by the CA the server trusts, valid now"
    )]
    ClientCertificateRejected {
        /// The TLS alert the server sent.
        alert: String,
    },
    /// Server side: the client refused the server's certificate.
    #[error(
        "the client refused this server's certificate ({alert}); give the server a certificate signed by a CA the client trusts, for the name the client dials, valid now"
    )]
    ServerCertificateRejected {
        /// The TLS alert the client sent.
        alert: String,
    },
    /// Client side: the server answered the TLS handshake with something
    /// that is not TLS, or closed the connection without a TLS alert: it
    /// serves plaintext.
    #[error(
        "the server does not speak TLS (it {0}); remove TLS from the channel, or configure TLS on the server"
    )]
    ServerNotTls(&'static str),
    /// Client side: the server answered the handshake with a plaintext
    /// Courier status before any TLS (it refused the connection, e.g. at
    /// its connection limit).
    #[error("the server refused the connection before the TLS handshake: {0}")]
    RefusedBeforeTls(String),
    /// Client side, without TLS: the server answered in TLS records.
    #[error("the server speaks TLS; configure TLS on the channel (ChannelConfig::tls)")]
    ServerRequiresTls,
    /// Server side: the client sent plaintext Courier frames instead of a
    /// TLS handshake.
    #[error(
        "the client does not speak TLS (it sent plaintext Courier frames); configure TLS on the client's channel"
    )]
    ClientNotTls,
    /// Any other handshake failure.
    #[error("the TLS handshake failed: {0}")]
    Handshake(String),
}

fn list_names(names: &[String]) -> String {
    match names {
        [] => "no name at all".to_owned(),
        names => names
            .iter()
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn at_time(not_after: Option<u64>) -> String {
    match not_after {
        Some(seconds) => format!(" (notAfter: {seconds} s after the Unix epoch)"),
        None => String::new(),
    }
}

/// The first two bytes of a TLS record as the plaintext decoder reads them
/// (as a big-endian magic): a handshake (22) or alert (21) record of
/// version 3.x.
pub(crate) fn is_tls_record_start(first_two: u16) -> bool {
    matches!(first_two >> 8, 0x15 | 0x16) && first_two & 0xFF == 0x03
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_to_fix() {
        let wrong = TlsError::WrongServerName {
            expected: "foo".into(),
            presented: vec!["localhost".into()],
        };
        assert!(
            wrong
                .to_string()
                .starts_with("the server presented a certificate for `localhost`, not `foo`;"),
            "{wrong}"
        );
        assert!(
            TlsError::ServerRequiresTls
                .to_string()
                .contains("configure TLS on the channel")
        );
    }

    #[test]
    fn tls_records_are_recognised() {
        assert!(is_tls_record_start(0x1603));
        assert!(is_tls_record_start(0x1503));
        assert!(!is_tls_record_start(0xCA11));
        assert!(!is_tls_record_start(0x1703));
    }
}
