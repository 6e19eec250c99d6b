//! The input of `send`: a CSV file with a header row, one message per following row. Rows are
//! numbered from 1 (the first row after the header); a row's number and the file's content
//! hash make its `Idempotency-Key`, so sending the same file again never makes a second message.

use std::io::Read;

use csv::StringRecord;
use io_core::{FiscalCode, FiscalCodeError};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// The columns a file must have.
pub(crate) const REQUIRED_COLUMNS: [&str; 3] = ["fiscal_code", "subject", "markdown"];
/// The columns a file may have.
pub(crate) const OPTIONAL_COLUMNS: [&str; 3] = ["due_date", "amount", "notice_number"];
/// How many hex digits of the file's SHA-256 go into the idempotency keys (128 bits).
const KEY_HASH_DIGITS: usize = 32;

/// Why a header cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// A required column is absent.
    #[error(
        "the header has no {0} column (expected fiscal_code,subject,markdown[,due_date][,amount][,notice_number])"
    )]
    Missing(&'static str),
    /// A column is not one of ours (a typo would otherwise drop data silently).
    #[error(
        "the header has an unknown column {0:?} (known: fiscal_code, subject, markdown, due_date, amount, notice_number)"
    )]
    Unknown(String),
    /// A column appears twice.
    #[error("the header has the column {0} twice")]
    Duplicate(String),
}

/// Why one row cannot be sent; recorded in the results file, the rest of the file goes on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum RowError {
    /// The fiscal code is not valid (checked here: it goes into the URL's path).
    #[error("fiscal_code: {0}")]
    FiscalCode(#[from] FiscalCodeError),
    /// The amount is not a whole number of cents.
    #[error("amount: {value:?} is not a whole number of euro cents")]
    Amount {
        /// The cell.
        value: String,
    },
    /// The row itself is not valid CSV (wrong number of fields, not UTF-8).
    #[error("the row is not valid CSV: {reason}")]
    Csv {
        /// The reader's explanation.
        reason: String,
    },
}

/// Where each column is in a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Columns {
    fiscal_code: usize,
    subject: usize,
    markdown: usize,
    due_date: Option<usize>,
    amount: Option<usize>,
    notice_number: Option<usize>,
}

impl Columns {
    /// Reads the header (names trimmed, a byte-order mark ignored, in any order).
    pub(crate) fn from_header(header: &StringRecord) -> Result<Self, HeaderError> {
        let mut found: [Option<usize>; 6] = [None; 6];
        for (index, raw) in header.iter().enumerate() {
            let name = raw.trim_start_matches('\u{feff}').trim();
            let slot = REQUIRED_COLUMNS
                .iter()
                .chain(OPTIONAL_COLUMNS.iter())
                .position(|known| *known == name)
                .ok_or_else(|| HeaderError::Unknown(name.to_string()))?;
            if found[slot].replace(index).is_some() {
                return Err(HeaderError::Duplicate(name.to_string()));
            }
        }
        let required =
            |slot: usize| found[slot].ok_or(HeaderError::Missing(REQUIRED_COLUMNS[slot]));
        Ok(Self {
            fiscal_code: required(0)?,
            subject: required(1)?,
            markdown: required(2)?,
            due_date: found[3],
            amount: found[4],
            notice_number: found[5],
        })
    }

    /// The fiscal code cell of `record`, trimmed (empty when absent).
    pub(crate) fn fiscal_code<'r>(&self, record: &'r StringRecord) -> &'r str {
        record.get(self.fiscal_code).unwrap_or_default().trim()
    }

    /// Row `number` of the file, ready to send or with the reason it cannot be.
    pub(crate) fn row(&self, number: u64, record: &StringRecord) -> Row {
        let raw_fiscal_code = self.fiscal_code(record).to_string();
        Row {
            number,
            message: self.message(record),
            raw_fiscal_code,
        }
    }

    /// The recipient and the `NewMessage` body of a record.
    fn message(&self, record: &StringRecord) -> Result<RowMessage, RowError> {
        let fiscal_code = FiscalCode::parse(self.fiscal_code(record))?;
        let cell = |index: usize| record.get(index).unwrap_or_default();
        // Optional cells left empty are absent; the others go as written: the server validates.
        let optional = |index: Option<usize>| {
            index
                .map(|index| cell(index).trim())
                .filter(|value| !value.is_empty())
        };
        let mut content = Map::new();
        content.insert("subject".into(), json!(cell(self.subject)));
        content.insert("markdown".into(), json!(cell(self.markdown)));
        if let Some(due_date) = optional(self.due_date) {
            content.insert("due_date".into(), json!(due_date));
        }
        let amount = optional(self.amount)
            .map(|value| {
                value.parse::<u64>().map_err(|_| RowError::Amount {
                    value: value.to_string(),
                })
            })
            .transpose()?;
        let notice_number = optional(self.notice_number);
        if amount.is_some() || notice_number.is_some() {
            let mut payment = Map::new();
            if let Some(amount) = amount {
                payment.insert("amount".into(), json!(amount));
            }
            if let Some(notice_number) = notice_number {
                payment.insert("notice_number".into(), json!(notice_number));
            }
            content.insert("payment_data".into(), Value::Object(payment));
        }
        Ok(RowMessage {
            fiscal_code,
            body: json!({ "content": content }),
        })
    }
}

/// One row of the file.
#[derive(Debug, PartialEq)]
pub(crate) struct Row {
    /// 1 for the first row after the header.
    pub(crate) number: u64,
    /// The fiscal code cell, trimmed, as written (recorded in the results file).
    pub(crate) raw_fiscal_code: String,
    /// What to send, or why the row cannot be sent.
    pub(crate) message: Result<RowMessage, RowError>,
}

impl Row {
    /// A row the CSV reader could not read.
    pub(crate) fn unreadable(number: u64, error: &csv::Error) -> Self {
        Self {
            number,
            raw_fiscal_code: String::new(),
            message: Err(RowError::Csv {
                reason: error.to_string(),
            }),
        }
    }
}

/// A row's recipient and `NewMessage`.
#[derive(Debug, PartialEq)]
pub(crate) struct RowMessage {
    /// The recipient, validated.
    pub(crate) fiscal_code: FiscalCode,
    /// IO's `NewMessage`: `{content: {subject, markdown, due_date?, payment_data?}}`.
    pub(crate) body: Value,
}

/// The SHA-256 of a file's content, as it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContentHash(String);

impl ContentHash {
    /// The `Idempotency-Key` of row `row` of the file with this hash:
    /// `csv-<128 bits of the hash in hex>-<row>`. The same file gives the same keys, on any
    /// machine, for as long as the server remembers keys (24 hours by default).
    pub(crate) fn idempotency_key(&self, row: u64) -> String {
        format!("csv-{}-{row}", &self.0[..KEY_HASH_DIGITS])
    }

    /// The full hash in hex.
    pub(crate) fn as_hex(&self) -> &str {
        &self.0
    }
}

/// A reader that hashes what passes through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// The hash of everything read, after reading what is left.
    pub(crate) fn finish(mut self) -> std::io::Result<ContentHash> {
        std::io::copy(&mut self, &mut std::io::sink())?;
        Ok(ContentHash(hex::encode(self.hasher.finalize())))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// A CSV reader over `input` with the settings of `send`: a header row, every row as long as
/// the header.
pub(crate) fn csv_reader<R: Read>(input: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CITIZEN: &str = "RSSMRA85T10A562S";

    fn read_all(text: &str) -> (Columns, Vec<Row>) {
        let mut reader = csv_reader(text.as_bytes());
        let columns = Columns::from_header(reader.headers().unwrap()).unwrap();
        let mut rows = Vec::new();
        let mut record = StringRecord::new();
        let mut number = 0;
        loop {
            number += 1;
            match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => rows.push(columns.row(number, &record)),
                Err(error) => rows.push(Row::unreadable(number, &error)),
            }
        }
        (columns, rows)
    }

    #[test]
    fn quoted_cells_keep_their_commas_newlines_and_quotes() {
        let text = format!(
            "\u{feff}subject, fiscal_code ,markdown,amount,notice_number,due_date\n\
             \"Avviso, TARI\",{CITIZEN},\"Riga uno, con virgola\nriga \"\"due\"\"\",1500,012345678901234567,\n"
        );
        let (_, rows) = read_all(&text);
        assert_eq!(rows.len(), 1);
        let message = rows[0].message.as_ref().unwrap();
        assert_eq!(message.fiscal_code.as_str(), CITIZEN);
        assert_eq!(
            message.body,
            json!({"content": {
                "subject": "Avviso, TARI",
                "markdown": "Riga uno, con virgola\nriga \"due\"",
                "payment_data": {"amount": 1500, "notice_number": "012345678901234567"},
            }})
        );
    }

    #[test]
    fn a_bad_row_is_an_error_of_that_row_only() {
        let text = format!(
            "fiscal_code,subject,markdown,amount\n\
             NOTAFISCALCODE,s,m,\n\
             {CITIZEN},s,m,12.50\n\
             {CITIZEN},s\n\
             {CITIZEN},s,m,\n"
        );
        let (_, rows) = read_all(&text);
        assert_eq!(rows.len(), 4);
        assert!(matches!(rows[0].message, Err(RowError::FiscalCode(_))));
        assert_eq!(rows[0].raw_fiscal_code, "NOTAFISCALCODE");
        assert_eq!(
            rows[1].message,
            Err(RowError::Amount {
                value: "12.50".into()
            })
        );
        assert!(matches!(rows[2].message, Err(RowError::Csv { .. })));
        assert_eq!(
            rows[3].message.as_ref().unwrap().body,
            json!({"content": {"subject": "s", "markdown": "m"}})
        );
        assert_eq!(
            rows.iter().map(|r| r.number).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
    }

    #[test]
    fn headers_name_missing_unknown_and_repeated_columns() {
        let header = |names: &[&str]| StringRecord::from(names.to_vec());
        assert_eq!(
            Columns::from_header(&header(&["fiscal_code", "subject"])),
            Err(HeaderError::Missing("markdown"))
        );
        assert_eq!(
            Columns::from_header(&header(&["fiscal_code", "subject", "markdown", "amout"])),
            Err(HeaderError::Unknown("amout".into()))
        );
        assert_eq!(
            Columns::from_header(&header(&["fiscal_code", "subject", "markdown", "subject"])),
            Err(HeaderError::Duplicate("subject".into()))
        );
    }

    #[test]
    fn idempotency_keys_follow_the_content_and_the_row() {
        let hash = |text: &str| HashingReader::new(text.as_bytes()).finish().unwrap();
        let a = hash("fiscal_code,subject,markdown\n");
        assert_eq!(a, hash("fiscal_code,subject,markdown\n"));
        assert_ne!(a, hash("fiscal_code,subject,markdown\r\n"));
        let key = a.idempotency_key(12);
        assert!(key.starts_with("csv-") && key.ends_with("-12"));
        assert_eq!(key.len(), 4 + KEY_HASH_DIGITS + 3);
        assert!(io_core::IdempotencyKey::parse(&key).is_ok());
        assert_ne!(key, a.idempotency_key(13));
    }
}
