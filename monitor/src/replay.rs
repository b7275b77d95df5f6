//! `buildwatch replay`: the same pipeline on a recorded run, without privileges.
//!
//! A recorded stream may come from another machine, so it is read as hostile input: every line
//! is bounded ([`MAX_LINE`]), every problem (invalid UTF-8, a line that is not an event, a corrupt
//! gzip stream) is an error naming the file and the line, and nothing in it can panic the
//! pipeline (fuzzed: `cargo xtask fuzz`).
use std::{
    fs::File,
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
};

use thiserror::Error;

use crate::{
    model::Event,
    pipeline::{Pipeline, PipelineOptions, RunReport},
};

/// The longest line accepted. The longest real event is an exec with its argv and environment,
/// a few hundred KiB at most; a longer line is not an event, and reading it whole would let a
/// hostile file exhaust memory.
pub const MAX_LINE: usize = 16 << 20;

/// Replay failed.
#[derive(Debug, Error)]
pub enum ReplayError {
    /// The file cannot be opened.
    #[error("cannot read {path}: {error}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// Reading failed part way (an I/O error, a corrupt or truncated gzip stream).
    #[error("cannot read {path} at line {line}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// 1-based number of the line being read.
        line: usize,
        /// Why.
        error: std::io::Error,
    },
    /// A line is not an event.
    #[error("{path}:{line}: not a buildwatch event: {error}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Why.
        error: String,
    },
    /// The output cannot be written.
    #[error("cannot write {path}: {error}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
}

/// Opens an events file, transparently decompressing gzip.
pub fn open_events(path: &Path) -> Result<Box<dyn BufRead>, ReplayError> {
    let file = File::open(path).map_err(|error| ReplayError::Open {
        path: path.to_owned(),
        error,
    })?;
    events_reader(file).map_err(|error| ReplayError::Read {
        path: path.to_owned(),
        line: 1,
        error,
    })
}

/// `input` as lines of events: decompressed when it starts with gzip's magic number. The input
/// is read once, front to back, so a pipe (`replay <(ssh host cat events.jsonl)`) works too.
pub fn events_reader<R: Read + 'static>(mut input: R) -> std::io::Result<Box<dyn BufRead>> {
    let mut head = [0u8; 2];
    let mut n = 0;
    while n < head.len() {
        match input.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let gzip = head[..n] == [0x1f, 0x8b];
    let whole = std::io::Cursor::new(head[..n].to_vec()).chain(input);
    Ok(if gzip {
        // Multi-member: `cat a.gz b.gz`, or a stream gzipped in pieces, is one stream.
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(whole)))
    } else {
        Box::new(BufReader::new(whole))
    })
}

/// Reads every event of a recorded run, dropping the attribution it was written with.
pub fn read_events(path: &Path) -> Result<Vec<Event>, ReplayError> {
    let mut events = Vec::new();
    for_each_event(open_events(path)?, path, |e| events.push(e))?;
    Ok(events)
}

/// Calls `f` with every event of `reader` (lines of JSON), in order, without the attribution it
/// was written with; `path` names the input in errors. Blank lines are skipped.
pub fn for_each_event(
    mut reader: impl BufRead,
    path: &Path,
    mut f: impl FnMut(Event),
) -> Result<(), ReplayError> {
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        number += 1;
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|error| ReplayError::Read {
                path: path.to_owned(),
                line: number,
                error,
            })?;
        if n == 0 {
            return Ok(());
        }
        let parse_error = |error: String| ReplayError::Parse {
            path: path.to_owned(),
            line: number,
            error,
        };
        if line.len() > MAX_LINE {
            return Err(parse_error(format!(
                "the line is longer than {} MiB",
                MAX_LINE >> 20
            )));
        }
        let text = std::str::from_utf8(&line).map_err(|e| {
            parse_error(format!(
                "invalid UTF-8 at byte {} of the line",
                e.valid_up_to() + 1
            ))
        })?;
        if text.trim().is_empty() {
            continue;
        }
        let mut event: Event =
            serde_json::from_str(text).map_err(|e| parse_error(e.to_string()))?;
        event.actor = None;
        f(event);
    }
}

/// Runs the pipeline over a recorded run.
pub fn replay(input: &Path, options: PipelineOptions<'_>) -> Result<RunReport, ReplayError> {
    let reader = open_events(input)?;
    replay_from(reader, input, options)
}

/// Runs the pipeline over the events of `reader`; `path` names it in errors.
pub fn replay_from(
    reader: impl BufRead,
    path: &Path,
    options: PipelineOptions<'_>,
) -> Result<RunReport, ReplayError> {
    let events_out = options.events.map(Path::to_owned).unwrap_or_default();
    let write_error = |error| ReplayError::Write {
        path: events_out.clone(),
        error,
    };
    let mut pipeline = Pipeline::new(options).map_err(write_error)?;
    let mut result = Ok(());
    for_each_event(reader, path, |event| {
        if result.is_ok() {
            result = pipeline.process(event).map(|_| ());
        }
    })?;
    result.map_err(write_error)?;
    pipeline
        .finish()
        .map(|(report, _)| report)
        .map_err(write_error)
}
