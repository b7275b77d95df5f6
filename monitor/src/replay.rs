//! `buildwatch replay`: the same pipeline on a recorded run, without privileges.
use std::{
    fs::File,
    io::{BufRead as _, BufReader, Read},
    path::{Path, PathBuf},
};

use thiserror::Error;

use crate::{
    model::Event,
    pipeline::{Pipeline, PipelineOptions, RunReport},
};

/// Replay failed.
#[derive(Debug, Error)]
pub enum ReplayError {
    /// The file cannot be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
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
        error: serde_json::Error,
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
pub fn open_events(path: &Path) -> Result<Box<dyn std::io::BufRead>, ReplayError> {
    let read_error = |error| ReplayError::Read {
        path: path.to_owned(),
        error,
    };
    let mut file = File::open(path).map_err(read_error)?;
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic).map_err(read_error)?;
    let file = File::open(path).map_err(read_error)?;
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(BufReader::new(flate2::read::GzDecoder::new(file))))
    } else {
        Ok(Box::new(BufReader::new(file)))
    }
}

/// Reads every event of a recorded run, dropping the attribution it was written with.
pub fn read_events(path: &Path) -> Result<Vec<Event>, ReplayError> {
    let mut events = Vec::new();
    for_each_event(path, |e| events.push(e))?;
    Ok(events)
}

fn for_each_event(path: &Path, mut f: impl FnMut(Event)) -> Result<(), ReplayError> {
    let reader = open_events(path)?;
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|error| ReplayError::Read {
            path: path.to_owned(),
            error,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let mut event: Event = serde_json::from_str(&line).map_err(|error| ReplayError::Parse {
            path: path.to_owned(),
            line: i + 1,
            error,
        })?;
        event.actor = None;
        f(event);
    }
    Ok(())
}

/// Runs the pipeline over a recorded run.
pub fn replay(input: &Path, options: PipelineOptions<'_>) -> Result<RunReport, ReplayError> {
    let events_out = options.events.map(Path::to_owned).unwrap_or_default();
    let write_error = |error| ReplayError::Write {
        path: events_out.clone(),
        error,
    };
    let mut pipeline = Pipeline::new(options).map_err(write_error)?;
    let mut result = Ok(());
    for_each_event(input, |event| {
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
