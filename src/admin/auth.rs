//! The admin bearer token: read once from `admin.token_file`, compared in constant time.

use std::path::Path;

/// The token the protected endpoints require.
pub struct Token(Vec<u8>);

/// Never shows the token itself (it may end up in a log).
impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// Reads the token from `path`: the file's text without surrounding white space.
    pub fn load(path: &Path) -> Result<Token, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(format!("{} holds no token", path.display()));
        }
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "{} must hold one token without white space",
                path.display()
            ));
        }
        Ok(Token(token.as_bytes().to_vec()))
    }

    /// Whether an `Authorization` header value carries this token (`Bearer <token>`).
    pub fn accepts(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let Some(scheme) = value.get(..7) else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case(b"bearer ") {
            return false;
        }
        let given = value[7..].trim_ascii();
        // Same work whatever the first difference: no timing hint about the token.
        let mut diff = given.len() ^ self.0.len();
        for (i, &b) in self.0.iter().enumerate() {
            diff |= usize::from(b ^ given.get(i).copied().unwrap_or(0));
        }
        diff == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_must_match_exactly() {
        let t = Token(b"s3cret".to_vec());
        assert!(t.accepts(Some(b"Bearer s3cret")));
        assert!(t.accepts(Some(b"bearer s3cret ")));
        for bad in [
            &b"Bearer s3cre"[..],
            b"Bearer s3cret2",
            b"Basic s3cret",
            b"Bearer ",
            b"s3cret",
            b"",
        ] {
            assert!(!t.accepts(Some(bad)), "{}", String::from_utf8_lossy(bad));
        }
        assert!(!t.accepts(None));
    }

    #[test]
    fn token_file_is_trimmed_and_checked() {
        let dir = std::env::temp_dir().join(format!("meridian-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("t");
        std::fs::write(&file, "abc\n").unwrap();
        assert!(Token::load(&file).unwrap().accepts(Some(b"Bearer abc")));
        std::fs::write(&file, " \n").unwrap();
        assert!(Token::load(&file).unwrap_err().contains("holds no token"));
        std::fs::write(&file, "a b").unwrap();
        assert!(Token::load(&file).is_err());
        assert!(
            Token::load(&dir.join("missing"))
                .unwrap_err()
                .contains("cannot read")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
