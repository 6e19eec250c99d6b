//! Integers in a query string (`offset`, `limit`), read by hand so that a bad one is a 400
//! naming the parameter and its range rather than the query extractor's generic message.

use crate::problem::{ApiResult, Problem};

/// `raw` as an integer in `range` (inclusive), or `default` when absent.
pub(crate) fn number(
    raw: Option<&str>,
    name: &str,
    range: (usize, usize),
    default: usize,
) -> ApiResult<usize> {
    match raw {
        None => Ok(default),
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (range.0..=range.1).contains(&n) => Ok(n),
            _ => Err(Problem::bad_request(format!(
                "{name}: expected an integer in {}..={}",
                range.0, range.1
            ))),
        },
    }
}
