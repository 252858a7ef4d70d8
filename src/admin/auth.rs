//! Admin credentials: the bearer token read once from `admin.token_file` (compared in
//! constant time), and HTTP Basic credentials of a gateway user with the `admin` role.

use std::path::Path;

use crate::acl::Users;
use crate::config::Role;

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

    /// The `Authorization` value that carries this token.
    pub fn bearer_header(&self) -> String {
        format!("Bearer {}", String::from_utf8_lossy(&self.0))
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

/// Whether an `Authorization` header value is `Basic base64(user:password)` of an enabled
/// gateway user with the `admin` role.
pub fn admin_user(users: &Users, authorization: Option<&[u8]>) -> bool {
    let Some(value) = authorization else {
        return false;
    };
    let Some(scheme) = value.get(..6) else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return false;
    }
    let Some(pair) = decode_base64(value[6..].trim_ascii()) else {
        return false;
    };
    let Some(colon) = pair.iter().position(|&b| b == b':') else {
        return false;
    };
    users
        .authenticate(Some(&pair[..colon]), &pair[colon + 1..])
        .is_ok_and(|u| u.role == Role::Admin)
}

/// The `Authorization` value of HTTP Basic credentials.
pub fn basic_header(user: &str, password: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let raw = format!("{user}:{password}");
    let mut out = String::from("Basic ");
    for chunk in raw.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 with padding; `None` for anything else.
fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    for (i, quad) in text.chunks_exact(4).enumerate() {
        let last = i + 1 == text.len() / 4;
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_of_an_admin_user_only() {
        let cfg = crate::config::Config::parse(
            "cluster: { seeds: [127.0.0.1:7001] }\nusers:\n  - { name: ops, role: admin, passwords: [c592df4a86933b92addc9842402ddf198c638ea9be58916ee6e3734e1e3152f8] }\n  - { name: app, role: write, passwords: [93915a0a4bf8f634cb1856494dd4304472ad46b9827f541f76b6761c49cc55b0] }\n",
            "t.yaml",
        )
        .unwrap();
        let users = Users::from_config(&cfg.users).unwrap();
        // "ops:pw1", "app:pw2", "ops:nope"
        assert!(admin_user(&users, Some(b"Basic b3BzOnB3MQ==")));
        assert!(!admin_user(&users, Some(b"Basic YXBwOnB3Mg==")));
        assert!(!admin_user(&users, Some(b"Basic b3BzOm5vcGU=")));
        assert!(!admin_user(&users, Some(b"Basic b3BzOnB3MQ")));
        assert!(!admin_user(&users, Some(b"Bearer b3BzOnB3MQ==")));
        assert!(!admin_user(&users, None));
        assert_eq!(decode_base64(b"YQ==").unwrap(), b"a");
        assert_eq!(decode_base64(b"YWI=").unwrap(), b"ab");
        assert_eq!(decode_base64(b"YWJj").unwrap(), b"abc");
        assert!(decode_base64(b"Y===").is_none());
        for (u, p) in [
            ("ops", "pw1"),
            ("a", ""),
            ("ab", "c:d"),
            ("admin", "s3cr3t!"),
        ] {
            let h = basic_header(u, p);
            let decoded = decode_base64(&h.as_bytes()["Basic ".len()..]).unwrap();
            assert_eq!(decoded, format!("{u}:{p}").as_bytes());
        }
        assert!(admin_user(
            &users,
            Some(basic_header("ops", "pw1").as_bytes())
        ));
    }

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
