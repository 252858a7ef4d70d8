//! A small certificate authority for the lab and the tests: a self-signed CA and the leaf
//! certificates it signs (rcgen). Never used by `serve`: production certificates come from
//! the operator's own PKI.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// Why a certificate could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("cannot make a certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("cannot write {path}: {err}")]
    Write { path: String, err: std::io::Error },
}

/// A CA that signs leaf certificates.
pub struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate and its private key, in PEM.
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
    /// The certificate in DER, to compare with what a peer presented.
    pub der: Vec<u8>,
}

/// Where [`Issued::write`] put the files.
#[derive(Debug, Clone)]
pub struct Files {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn write(path: &Path, text: &str) -> Result<(), MintError> {
    std::fs::write(path, text).map_err(|err| MintError::Write {
        path: path.display().to_string(),
        err,
    })
}

impl Authority {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> Result<Authority, MintError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(Authority { issuer })
    }

    /// The CA certificate in PEM (what peers trust).
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// Writes the CA certificate to `path`.
    pub fn write_cert(&self, path: &Path) -> Result<(), MintError> {
        write(path, &self.cert_pem())
    }

    /// A certificate for `common_name`, valid for the names and IP addresses in `sans`, usable
    /// by a server and a client alike (Redis nodes are both on the cluster bus).
    pub fn issue(&self, common_name: &str, sans: &[&str]) -> Result<Issued, MintError> {
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        })
    }
}

impl Issued {
    /// Writes `<dir>/<name>.crt` and `<dir>/<name>.key`.
    pub fn write(&self, dir: &Path, name: &str) -> Result<Files, MintError> {
        let files = Files {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        write(&files.cert, &self.cert_pem)?;
        write(&files.key, &self.key_pem)?;
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_load_and_verify_against_the_ca() {
        let ca = Authority::new("test CA").unwrap();
        let leaf = ca.issue("node", &["127.0.0.1", "localhost"]).unwrap();
        let dir = std::env::temp_dir().join(format!("meridian-mint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        ca.write_cert(&dir.join("ca.crt")).unwrap();
        let files = leaf.write(&dir, "node").unwrap();
        let settings = crate::config::TlsListenConfig {
            listen: "127.0.0.1:0".into(),
            cert: files.cert.clone(),
            key: files.key.clone(),
            client_ca: Some(dir.join("ca.crt")),
            ..Default::default()
        };
        assert!(crate::tls::ServerTls::new(&settings).is_ok());
        // A key that does not go with the certificate is refused, naming the key.
        let other = ca.issue("other", &["localhost"]).unwrap();
        other.write(&dir, "other").unwrap();
        let mismatched = crate::config::TlsListenConfig {
            key: dir.join("other.key"),
            ..settings
        };
        let err = crate::tls::ServerTls::new(&mismatched)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("tls.key"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
