//! One way to show a URL that may hold a secret: in logs, errors and `--help`.
//!
//! The password becomes `***` (the user name stays: it helps tell which identity was used), and a
//! value that does not parse as a URL is never echoed, because a malformed URL is often a password with
//! a stray character in it.

/// `scheme://user:secret@host/path?query` → `scheme://user:***@host/path`. The query is dropped too
/// (S3 pre-signed URLs and some brokers carry credentials there). Unparsable input → a placeholder.
pub fn url(s: &str) -> String {
    match url::Url::parse(s.trim()) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            if u.query().is_some() {
                u.set_query(Some("***"));
            }
            u.to_string()
        }
        Err(e) => format!("<not a URL: {e}>"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_never_show() {
        assert_eq!(
            super::url("redis://:hunter2@cache:6379/0"),
            "redis://:***@cache:6379/0"
        );
        assert_eq!(
            super::url("amqps://app:s3cret@mq.internal:5671/%2f"),
            "amqps://app:***@mq.internal:5671/%2f"
        );
        assert_eq!(
            super::url("https://s3.example/bucket?X-Amz-Signature=abc"),
            "https://s3.example/bucket?***"
        );
        assert_eq!(super::url("redis://cache:6379"), "redis://cache:6379");
        // A malformed URL is not echoed: it may be a password with a typo.
        let shown = super::url("redis://user:p@ss word@host:notaport");
        assert!(!shown.contains("p@ss"), "{shown}");
        assert!(shown.starts_with("<not a URL"), "{shown}");
    }
}
