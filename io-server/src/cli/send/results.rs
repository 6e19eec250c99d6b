//! The results file of `send`: `row,fiscal_code,status,id,error`, one line per row in the
//! order rows complete, each line flushed as it is written. A later run reads back the rows
//! already `created` and skips them, so an interrupted send resumes where it stopped.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// The header of a results file.
pub(crate) const HEADER: [&str; 5] = ["row", "fiscal_code", "status", "id", "error"];

/// The status of a row whose message the server accepted.
pub(crate) const CREATED: &str = "created";
/// The status of a row that was not accepted (the `error` column says why).
pub(crate) const FAILED: &str = "failed";

/// A row created by an earlier run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CreatedRow {
    /// The fiscal code cell it was created for.
    pub(crate) fiscal_code: String,
    /// The message id.
    pub(crate) id: String,
}

/// Why an existing results file cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResultsError {
    /// It cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// It exists but is not a results file (another file given as `--results`?).
    #[error(
        "{path} exists and is not a results file (its header is not row,fiscal_code,status,id,error)"
    )]
    NotResults {
        /// The file.
        path: PathBuf,
    },
}

/// The rows already created according to the results file at `path`; none if it does not
/// exist. Lines that do not parse (one cut short when a run was killed) are ignored: their rows
/// are sent again, with the same idempotency keys.
pub(crate) fn load_created(path: &Path) -> Result<BTreeMap<u64, CreatedRow>, ResultsError> {
    let io_error = |source| ResultsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(error) => return Err(io_error(error)),
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(file);
    let header = match reader.headers() {
        Ok(header) => header.clone(),
        Err(error) if error.is_io_error() => {
            return Err(io_error(io::Error::other(error.to_string())));
        }
        Err(_) => {
            return Err(ResultsError::NotResults {
                path: path.to_path_buf(),
            });
        }
    };
    // An empty file (created, then killed before the header) is a fresh start.
    if header.is_empty() {
        return Ok(BTreeMap::new());
    }
    if header.iter().ne(HEADER) {
        return Err(ResultsError::NotResults {
            path: path.to_path_buf(),
        });
    }
    let mut created = BTreeMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(error) if error.is_io_error() => {
                return Err(io_error(io::Error::other(error.to_string())));
            }
            Err(_) => continue,
        };
        let (Some(row), Some(fiscal_code), Some(CREATED), Some(id)) = (
            record.get(0).and_then(|r| r.parse::<u64>().ok()),
            record.get(1),
            record.get(2),
            record.get(3).filter(|id| !id.is_empty()),
        ) else {
            continue;
        };
        created.insert(
            row,
            CreatedRow {
                fiscal_code: fiscal_code.to_string(),
                id: id.to_string(),
            },
        );
    }
    Ok(created)
}

/// Writes the results of a run.
pub(crate) struct ResultsWriter {
    writer: csv::Writer<File>,
    path: PathBuf,
}

impl ResultsWriter {
    /// Starts the results file at `path` again with only the rows in `created` (so a row sent
    /// again is listed once, with its new result). The new content is written beside it and
    /// renamed over it: an interruption leaves the old file or the new one, never half of one.
    pub(crate) fn start(
        path: &Path,
        created: &BTreeMap<u64, CreatedRow>,
    ) -> Result<Self, ResultsError> {
        let io_error = |source| ResultsError::Io {
            path: path.to_path_buf(),
            source,
        };
        let csv_io = |error: csv::Error| io_error(io::Error::other(error.to_string()));
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        {
            let file = File::create(&temporary).map_err(io_error)?;
            let mut writer = csv::Writer::from_writer(file);
            writer.write_record(HEADER).map_err(csv_io)?;
            for (row, done) in created {
                writer
                    .write_record([
                        row.to_string().as_str(),
                        &done.fiscal_code,
                        CREATED,
                        &done.id,
                        "",
                    ])
                    .map_err(csv_io)?;
            }
            let file = writer
                .into_inner()
                .map_err(|e| io_error(io::Error::other(e.to_string())))?;
            file.sync_all().map_err(io_error)?;
        }
        std::fs::rename(&temporary, path).map_err(io_error)?;
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io_error)?;
        Ok(Self {
            writer: csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(file),
            path: path.to_path_buf(),
        })
    }

    /// Appends one row's result and flushes it to the operating system. Not synced to disk:
    /// a line lost in a power cut only makes the next run send that row again, with the same
    /// idempotency key, and get the same id.
    pub(crate) fn record(
        &mut self,
        row: u64,
        fiscal_code: &str,
        status: &str,
        id: &str,
        error: &str,
    ) -> Result<(), ResultsError> {
        self.writer
            .write_record([row.to_string().as_str(), fiscal_code, status, id, error])
            .and_then(|()| self.writer.flush().map_err(csv::Error::from))
            .map_err(|e| ResultsError::Io {
                path: self.path.clone(),
                source: io::Error::other(e.to_string()),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_keeps_created_rows_and_forgets_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.csv");
        assert!(load_created(&path).unwrap().is_empty());
        let mut writer = ResultsWriter::start(&path, &BTreeMap::new()).unwrap();
        writer
            .record(2, "RSSMRA85T10A562S", CREATED, "01ID2", "")
            .unwrap();
        writer
            .record(1, "BAD", FAILED, "", "fiscal_code: too short, with a comma")
            .unwrap();
        writer
            .record(3, "MRTMTT25D09F205Z", CREATED, "01ID3", "")
            .unwrap();
        drop(writer);
        // A line cut short by a kill.
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("4,RSSMRA85T10A562S,crea");
        std::fs::write(&path, &text).unwrap();

        let created = load_created(&path).unwrap();
        assert_eq!(created.keys().copied().collect::<Vec<_>>(), [2, 3]);
        assert_eq!(created[&2].id, "01ID2");

        let mut writer = ResultsWriter::start(&path, &created).unwrap();
        writer
            .record(1, "RSSMRA85T10A562S", CREATED, "01ID1", "")
            .unwrap();
        drop(writer);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "row,fiscal_code,status,id,error\n\
             2,RSSMRA85T10A562S,created,01ID2,\n\
             3,MRTMTT25D09F205Z,created,01ID3,\n\
             1,RSSMRA85T10A562S,created,01ID1,\n"
        );
        assert!(!dir.path().join("results.csv.tmp").exists());
    }

    #[test]
    fn another_file_is_not_taken_for_results() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("messages.csv");
        std::fs::write(&path, "fiscal_code,subject,markdown\n").unwrap();
        assert!(matches!(
            load_created(&path),
            Err(ResultsError::NotResults { .. })
        ));
    }
}
