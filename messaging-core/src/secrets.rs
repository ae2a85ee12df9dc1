//! Recognising secrets (passwords, tokens, keys) by name, and masking them wherever
//! data is printed: logs, `Debug` output, the `log` notification sink.

use serde_json::Value;

/// Key fragments whose values are secrets (oslo.utils' sanitize keys), compared
/// case-insensitively.
const SECRET_KEY_PARTS: &[&str] = &[
    "adminpass",
    "admin_pass",
    "password",
    "auth_token",
    "new_pass",
    "secret",
    "sys_pswd",
    "token",
    "configdrive",
    "chappassword",
    "encrypted_key",
    "private_key",
    "fernetkey",
    "sslkey",
    "passphrase",
    "cephxkey",
    "cephx_key",
    "keystone_token",
];

/// Whether a key names a secret.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_KEY_PARTS.iter().any(|part| key.contains(part))
}

/// A copy of `value` whose secret-named keys, at any depth, hold `"***"`.
pub fn mask_passwords(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let masked = if is_secret_key(k) && !v.is_object() {
                        Value::String("***".into())
                    } else {
                        mask_passwords(v)
                    };
                    (k.clone(), masked)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(mask_passwords).collect()),
        other => other.clone(),
    }
}
