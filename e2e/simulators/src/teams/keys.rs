//! The Bot Framework's signing keys: RSA 2048 generated with `openssl` at
//! start and on rotation, published as a JWK set with `endorsements`, and
//! used to sign the RS256 JWT of every activity posted to a bot.

use std::io::Write;
use std::process::{Command, Stdio};

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use crate::SimError;

pub(crate) struct SigningKey {
    pub kid: String,
    /// base64url modulus; the exponent is 65537 (`AQAB`).
    pub n: String,
    pub endorsements: Vec<String>,
    encoding: EncodingKey,
}

fn openssl(args: &[&str], input: Option<&[u8]>) -> Result<Vec<u8>, SimError> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| SimError::KeyGeneration(format!("openssl {}: {e}", args.join(" "))))?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(input)
            .map_err(|e| SimError::KeyGeneration(format!("openssl stdin: {e}")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| SimError::KeyGeneration(format!("openssl: {e}")))?;
    if !output.status.success() {
        return Err(SimError::KeyGeneration(format!(
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(output.stdout)
}

impl SigningKey {
    /// A fresh RSA 2048 key endorsed for `endorsements` (e.g. `msteams`).
    pub fn generate(kid: &str, endorsements: &[&str]) -> Result<Self, SimError> {
        let pem = openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ],
            None,
        )?;
        let modulus = openssl(&["rsa", "-noout", "-modulus"], Some(&pem))?;
        let text = String::from_utf8_lossy(&modulus);
        let hex_modulus = text.trim().strip_prefix("Modulus=").ok_or_else(|| {
            SimError::KeyGeneration(format!("unexpected modulus output {text:?}"))
        })?;
        let bytes = hex_to_bytes(hex_modulus)
            .ok_or_else(|| SimError::KeyGeneration("modulus is not hex".to_owned()))?;
        let encoding = EncodingKey::from_rsa_pem(&pem)
            .map_err(|e| SimError::KeyGeneration(format!("generated key unreadable: {e}")))?;
        Ok(Self {
            kid: kid.to_owned(),
            n: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
            endorsements: endorsements.iter().map(|e| (*e).to_owned()).collect(),
            encoding,
        })
    }

    pub fn jwk(&self) -> Value {
        json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "n": self.n,
            "e": "AQAB",
            "endorsements": self.endorsements,
        })
    }

    /// An RS256 JWT of `claims` naming this key.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        // Encoding a JSON object with a valid RSA key does not fail.
        encode(&header, claims, &self.encoding).unwrap_or_default()
    }
}

fn hex_to_bytes(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}
