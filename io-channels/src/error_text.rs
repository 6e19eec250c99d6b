//! Errors as one line of text for outcomes and logs: the libraries' own `Display` often hides
//! the cause (reqwest's "error sending request", lettre's "network error").

/// An error with its sources, on one line.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A reqwest error on one line with its URL cut to scheme, host, port and path: a query string
/// or a fragment may carry a secret (a callback URL's token), and these texts reach logs and
/// journals.
#[cfg(feature = "http")]
pub(crate) fn http_error_chain(error: &reqwest::Error) -> String {
    let text = error_chain(error);
    match error.url() {
        Some(url) => text.replace(url.as_str(), &redacted_url(url)),
        None => text,
    }
}

/// `url` without credentials, query or fragment (a `?…` says a query was there).
#[cfg(feature = "http")]
pub(crate) fn redacted_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    let had_query = url.query().is_some() || url.fragment().is_some();
    shown.set_query(None);
    shown.set_fragment(None);
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    let mut text = shown.to_string();
    if had_query {
        text.push_str("?…");
    }
    text
}

#[cfg(all(test, feature = "http"))]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_secrets_in_error_texts() {
        let url = reqwest::Url::parse("https://user:pw@hooks.example.it:8443/io/cb?token=s3cret#x")
            .unwrap();
        let shown = redacted_url(&url);
        assert_eq!(shown, "https://hooks.example.it:8443/io/cb?…");
        assert!(!shown.contains("s3cret") && !shown.contains("pw"));
    }
}
