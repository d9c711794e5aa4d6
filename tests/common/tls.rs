//! A rustls client for the tests of `wss://` (cargo feature `tls`).

/// Accepts the test certificate (self-signed, so webpki would refuse it as a CA used
/// as an end entity) but still checks the handshake's signatures with its key.
#[derive(Debug)]
struct TestCert(rustls::crypto::WebPkiSupportedAlgorithms);

impl rustls::client::danger::ServerCertVerifier for TestCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_schemes()
    }
}

pub type TlsClient = rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>;

/// A TLS client (rustls) of `addr` for `localhost` that trusts the test certificate.
pub fn tls_client(addr: std::net::SocketAddr) -> TlsClient {
    tls_client_over(super::tcp(addr))
}

/// The same over a connected `socket` of the caller's making.
pub fn tls_client_over(socket: std::net::TcpStream) -> TlsClient {
    use rustls::pki_types::ServerName;
    use std::sync::Arc;
    let provider = rustls::crypto::ring::default_provider();
    let verifier = Arc::new(TestCert(provider.signature_verification_algorithms));
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    let conn =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap())
            .unwrap();
    rustls::StreamOwned::new(conn, socket)
}
