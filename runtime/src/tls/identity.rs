//! [`PeerIdentity`]: who the client is, read from the certificate it
//! presented under mutual TLS.

use std::net::IpAddr;

/// The identity of a client that presented a certificate the server
/// verified (mutual TLS): the leaf certificate's subject and subject
/// alternative names, and the certificate itself.
///
/// One value per connection, shared by every call on it
/// ([`CallContext::peer_identity`](crate::CallContext::peer_identity)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    subject: String,
    common_name: Option<String>,
    dns_names: Vec<String>,
    ip_addresses: Vec<IpAddr>,
    uris: Vec<String>,
    emails: Vec<String>,
    certificate: Box<[u8]>,
}

impl PeerIdentity {
    /// The subject's distinguished name in RFC 4514 form: the last RDN of
    /// the certificate first, so a subject issued as `CN=billing, O=Acme`
    /// reads `O=Acme,CN=billing`; empty if the subject is.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The subject's common name (`CN`), if it has one.
    pub fn common_name(&self) -> Option<&str> {
        self.common_name.as_deref()
    }

    /// The DNS names of the subject alternative names.
    pub fn dns_names(&self) -> &[String] {
        &self.dns_names
    }

    /// The IP addresses of the subject alternative names.
    pub fn ip_addresses(&self) -> &[IpAddr] {
        &self.ip_addresses
    }

    /// The URIs of the subject alternative names (SPIFFE ids, for example).
    pub fn uris(&self) -> &[String] {
        &self.uris
    }

    /// The e-mail addresses (RFC 822 names) of the subject alternative names.
    pub fn emails(&self) -> &[String] {
        &self.emails
    }

    /// The leaf certificate, DER-encoded, for checks this type does not
    /// make (parse it with any X.509 library).
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate
    }
}

#[cfg(feature = "tls")]
mod parse {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use x509_cert::Certificate;
    use x509_cert::der::asn1::{Ia5StringRef, PrintableStringRef, Utf8StringRef};
    use x509_cert::der::{Decode, Tag, Tagged};
    use x509_cert::ext::pkix::SubjectAltName;
    use x509_cert::ext::pkix::name::GeneralName;

    use super::PeerIdentity;

    /// The `commonName` attribute (2.5.4.3).
    const COMMON_NAME: x509_cert::der::oid::ObjectIdentifier =
        x509_cert::der::oid::ObjectIdentifier::new_unwrap("2.5.4.3");

    impl PeerIdentity {
        /// Reads the identity from a DER certificate (one rustls already
        /// verified). `None` if it cannot be parsed.
        pub(crate) fn from_der(der: &[u8]) -> Option<PeerIdentity> {
            let certificate = match Certificate::from_der(der) {
                Ok(certificate) => certificate,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot parse the client's certificate");
                    return None;
                }
            };
            let tbs = &certificate.tbs_certificate;
            let common_name = tbs
                .subject
                .0
                .iter()
                .flat_map(|rdn| rdn.0.iter())
                .find(|attribute| attribute.oid == COMMON_NAME)
                .and_then(|attribute| {
                    let value = &attribute.value;
                    match value.tag() {
                        Tag::Utf8String => value
                            .decode_as::<Utf8StringRef<'_>>()
                            .ok()
                            .map(|s| s.as_str().to_owned()),
                        Tag::PrintableString => value
                            .decode_as::<PrintableStringRef<'_>>()
                            .ok()
                            .map(|s| s.as_str().to_owned()),
                        Tag::Ia5String => value
                            .decode_as::<Ia5StringRef<'_>>()
                            .ok()
                            .map(|s| s.as_str().to_owned()),
                        _ => None,
                    }
                });
            let mut identity = PeerIdentity {
                subject: tbs.subject.to_string(),
                common_name,
                dns_names: Vec::new(),
                ip_addresses: Vec::new(),
                uris: Vec::new(),
                emails: Vec::new(),
                certificate: der.into(),
            };
            if let Ok(Some((_, SubjectAltName(names)))) = tbs.get::<SubjectAltName>() {
                for name in names {
                    match name {
                        GeneralName::DnsName(dns) => identity.dns_names.push(dns.to_string()),
                        GeneralName::UniformResourceIdentifier(uri) => {
                            identity.uris.push(uri.to_string());
                        }
                        GeneralName::Rfc822Name(email) => identity.emails.push(email.to_string()),
                        GeneralName::IpAddress(octets) => match octets.as_bytes() {
                            &[a, b, c, d] => {
                                identity
                                    .ip_addresses
                                    .push(IpAddr::V4(Ipv4Addr::new(a, b, c, d)));
                            }
                            bytes => {
                                if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
                                    identity.ip_addresses.push(IpAddr::V6(Ipv6Addr::from(v6)));
                                }
                            }
                        },
                        _ => {}
                    }
                }
            }
            Some(identity)
        }
    }
}
