//! Who may ask: a token read from `--token-file`, sent by clients as
//! `Authorization: Bearer TOKEN`, or as the password of Basic auth (the
//! JDBC driver and ADBC's username/password options send Basic to the
//! Handshake call, then the bearer token the server answers with). Every
//! call is checked, the handshake included; tokens are compared in
//! constant time and never printed.

use std::path::Path;

use base64::Engine;
use subtle::ConstantTimeEq;
use tonic::{Request, Status};

use crate::error::{Result, WaError};

/// The server's token.
#[derive(Clone)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

impl Token {
    /// Reads the token: the file's text without surrounding whitespace.
    pub fn from_file(path: &Path) -> Result<Token> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| WaError::io(format!("--token-file {}", path.display()), e))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(WaError::Input(format!(
                "--token-file {}: the file is empty; put the token clients will send in it",
                path.display()
            )));
        }
        if token.chars().any(|c| c.is_control() || c == ' ') {
            return Err(WaError::Input(format!(
                "--token-file {}: the token holds spaces or control characters, \
                 which an Authorization header cannot carry",
                path.display()
            )));
        }
        Ok(Token(token.to_string()))
    }

    #[cfg(test)]
    pub fn for_tests(token: &str) -> Token {
        Token(token.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn matches(&self, given: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(given).into()
    }
}

/// Checks a call's credentials; with no token every call passes (the
/// server then listens on loopback only).
#[allow(clippy::result_large_err)]
pub fn check(
    token: Option<&Token>,
    request: Request<()>,
) -> std::result::Result<Request<()>, Status> {
    let Some(token) = token else {
        return Ok(request);
    };
    let header = request
        .metadata()
        .get("authorization")
        .ok_or_else(|| Status::unauthenticated("this server needs a token: send Authorization: Bearer TOKEN, or Basic auth with the token as password"))?
        .to_str()
        .map_err(|_| Status::unauthenticated("the Authorization header is not text"))?;
    let (scheme, credentials) = header.split_once(' ').unwrap_or((header, ""));
    let given: Vec<u8> = if scheme.eq_ignore_ascii_case("bearer") {
        credentials.trim().as_bytes().to_vec()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials.trim())
            .map_err(|_| Status::unauthenticated("Basic credentials are not base64"))?;
        // user:password; the user is free, the password is the token.
        match decoded.iter().position(|&b| b == b':') {
            Some(i) => decoded[i + 1..].to_vec(),
            None => decoded,
        }
    } else {
        return Err(Status::unauthenticated(
            "the Authorization header is neither Bearer nor Basic",
        ));
    };
    if token.matches(&given) {
        Ok(request)
    } else {
        Err(Status::unauthenticated("wrong token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_header(value: &str) -> Request<()> {
        let mut r = Request::new(());
        r.metadata_mut()
            .insert("authorization", value.parse().unwrap());
        r
    }

    #[test]
    fn bearer_and_basic_pass_with_the_token_only() {
        let token = Token("s3cret-token".into());
        let t = Some(&token);
        assert!(check(t, with_header("Bearer s3cret-token")).is_ok());
        assert!(check(t, with_header("bearer s3cret-token")).is_ok());
        let basic = base64::engine::general_purpose::STANDARD.encode("anyone:s3cret-token");
        assert!(check(t, with_header(&format!("Basic {basic}"))).is_ok());
        for wrong in [
            "Bearer s3cret",
            "Bearer s3cret-token2",
            "Bearer ",
            "Token s3cret-token",
        ] {
            let err = check(t, with_header(wrong)).unwrap_err();
            assert_eq!(err.code(), tonic::Code::Unauthenticated, "{wrong}");
        }
        let wrong = base64::engine::general_purpose::STANDARD.encode("s3cret-token:nope");
        assert!(check(t, with_header(&format!("Basic {wrong}"))).is_err());
        assert!(check(t, Request::new(())).is_err());
        assert!(check(None, Request::new(())).is_ok());
    }

    #[test]
    fn the_token_file_is_trimmed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "abc123\n").unwrap();
        assert_eq!(Token::from_file(&path).unwrap().as_str(), "abc123");
        std::fs::write(&path, "  \n").unwrap();
        assert!(Token::from_file(&path)
            .unwrap_err()
            .to_string()
            .contains("empty"));
        std::fs::write(&path, "a b").unwrap();
        assert!(Token::from_file(&path).is_err());
        let missing = dir.path().join("missing");
        assert!(Token::from_file(&missing)
            .unwrap_err()
            .to_string()
            .contains("missing"));
        assert!(!format!("{:?}", Token("abc123".into())).contains("abc"));
    }
}
