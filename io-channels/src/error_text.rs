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
