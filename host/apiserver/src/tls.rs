//! The certificates of one dev cluster, made fresh at every start.
//!
//! A self-signed CA (`stepbox dev-cluster CA`), a server certificate it
//! signs for `127.0.0.1`, `::1` and `localhost`, and a client certificate
//! (`CN=stepbox-admin, O=system:masters`) for kubeconfigs that
//! authenticate by certificate instead of token. Keys are ECDSA P-256; the
//! rustls server uses the `ring` provider, as kube does.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;

use super::DevClusterError;

/// The PEM-encoded certificates and keys of one dev cluster.
#[derive(Clone)]
pub struct Certificates {
    /// The CA certificate (PEM): what clients trust.
    pub ca_pem: String,
    ca_der: CertificateDer<'static>,
    server_der: CertificateDer<'static>,
    server_key_der: Vec<u8>,
    /// The client certificate (PEM), signed by the CA.
    pub client_cert_pem: String,
    /// The client certificate's private key (PKCS#8 PEM).
    pub client_key_pem: String,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates")
            .field("ca_pem", &self.ca_pem)
            .finish_non_exhaustive()
    }
}

fn tls_error(e: impl std::fmt::Display) -> DevClusterError {
    DevClusterError::Tls(e.to_string())
}

/// Validity: from yesterday (clock skew) for ten years.
fn validity(params: &mut rcgen::CertificateParams) {
    use chrono::Datelike;
    let date =
        |d: chrono::NaiveDate| rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8);
    let today = chrono::Utc::now().date_naive();
    let start = today.pred_opt().unwrap_or(today);
    let end = today.with_year(today.year() + 10).unwrap_or(today);
    params.not_before = date(start);
    params.not_after = date(end);
}

impl Certificates {
    /// Generates a CA, a server certificate and a client certificate.
    ///
    /// # Errors
    /// [`DevClusterError::Tls`] when key generation or signing fails.
    pub fn generate() -> Result<Self, DevClusterError> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().map_err(tls_error)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(tls_error)?;
        ca.distinguished_name = rcgen::DistinguishedName::new();
        ca.distinguished_name
            .push(DnType::CommonName, "stepbox dev-cluster CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut ca);
        let ca_cert = ca.self_signed(&ca_key).map_err(tls_error)?;
        let issuer = Issuer::new(ca, &ca_key);

        let server_key = KeyPair::generate().map_err(tls_error)?;
        let mut server = CertificateParams::new(vec![
            "127.0.0.1".to_string(),
            "::1".to_string(),
            "localhost".to_string(),
        ])
        .map_err(tls_error)?;
        server.distinguished_name = rcgen::DistinguishedName::new();
        server
            .distinguished_name
            .push(DnType::CommonName, "stepbox dev-cluster");
        server.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server.use_authority_key_identifier_extension = true;
        validity(&mut server);
        let server_cert = server.signed_by(&server_key, &issuer).map_err(tls_error)?;

        let client_key = KeyPair::generate().map_err(tls_error)?;
        let mut client = CertificateParams::new(Vec::<String>::new()).map_err(tls_error)?;
        client.distinguished_name = rcgen::DistinguishedName::new();
        client
            .distinguished_name
            .push(DnType::CommonName, "stepbox-admin");
        client
            .distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        client.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        client.use_authority_key_identifier_extension = true;
        validity(&mut client);
        let client_cert = client.signed_by(&client_key, &issuer).map_err(tls_error)?;

        Ok(Self {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().clone(),
            server_der: server_cert.der().clone(),
            server_key_der: server_key.serialize_der(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
        })
    }

    /// The rustls server configuration: the server certificate, HTTP/2 and
    /// HTTP/1.1 by ALPN, and client certificates signed by the CA accepted
    /// but not required (token clients present none).
    ///
    /// # Errors
    /// [`DevClusterError::Tls`] when rustls rejects the certificates.
    pub fn server_config(&self) -> Result<rustls::ServerConfig, DevClusterError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone()).map_err(tls_error)?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(tls_error)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_der.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![self.server_der.clone()], key)
            .map_err(tls_error)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_a_usable_chain() {
        let c = Certificates::generate().unwrap();
        assert!(c.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(c.client_key_pem.contains("PRIVATE KEY"));
        c.server_config().unwrap();
        // Fresh every time.
        assert_ne!(Certificates::generate().unwrap().ca_pem, c.ca_pem);
    }
}
