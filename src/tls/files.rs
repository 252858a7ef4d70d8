//! Reading PEM certificates and keys through rustls-pki-types, with errors that name the
//! config key and the file (never the file's content: a key is a secret).

use std::path::Path;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

fn file_error(key: &'static str, path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        key,
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Every certificate in the PEM file at `path` (a chain: leaf first); at least one.
pub fn certs(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| file_error(key, path, e))?;
    let certs = iter
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(key, path, e))?;
    if certs.is_empty() {
        return Err(file_error(key, path, "holds no PEM CERTIFICATE"));
    }
    Ok(certs)
}

/// The first private key in the PEM file at `path` (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(key: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => {
            file_error(key, path, "holds no PEM private key")
        }
        other => file_error(key, path, other),
    })
}

/// A trust store of every certificate in the PEM file at `path`.
pub fn roots(key: &'static str, path: &Path) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in certs(key, path)? {
        store
            .add(cert)
            .map_err(|e| file_error(key, path, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_files_name_key_and_path() {
        let dir = std::env::temp_dir().join(format!("meridian-tls-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let err = certs("tls.cert", &missing).unwrap_err().to_string();
        assert!(
            err.starts_with("tls.cert: ") && err.contains("missing.pem"),
            "{err}"
        );
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not pem at all\n").unwrap();
        let err = certs("tls.cert", &empty).unwrap_err().to_string();
        assert!(err.contains("no PEM CERTIFICATE"), "{err}");
        let err = private_key("tls.key", &empty).unwrap_err().to_string();
        assert!(err.contains("no PEM private key"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn generated_cert_and_key_load() {
        let dir = std::env::temp_dir().join(format!("meridian-tls-gen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(dir.join("c.pem"), cert.cert.pem()).unwrap();
        std::fs::write(dir.join("k.pem"), cert.signing_key.serialize_pem()).unwrap();
        assert_eq!(certs("tls.cert", &dir.join("c.pem")).unwrap().len(), 1);
        assert!(private_key("tls.key", &dir.join("k.pem")).is_ok());
        assert!(roots("tls.client_ca", &dir.join("c.pem")).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
