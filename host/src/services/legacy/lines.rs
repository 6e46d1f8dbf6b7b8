//! The physical line on which each CSV record starts, counted from the bytes themselves.
//!
//! The csv crate's own line count is taken before a record's leading line break is consumed,
//! so it reads one line early after a CRLF and one line late before a structural error; its
//! byte offsets are exact. This reader remembers where the line breaks fall as the parser
//! pulls bytes through it, and turns a record's byte offset into the line of its first
//! character, so a quoted field spanning lines still reports the line the record began on.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::rc::Rc;

/// A run of consecutive `\r` and `\n` bytes: `start..end` in the file, with its line breaks
/// (`\n`, `\r\n` or a lone `\r`, as the csv crate reads them) and its last byte.
struct Run {
    start: u64,
    end: u64,
    newlines: u64,
    last: u8,
}

/// The line breaks read but not yet passed by the records asked about.
#[derive(Default)]
struct Breaks {
    runs: VecDeque<Run>,
    /// Line breaks in the runs already passed.
    passed: u64,
}

/// Reads through to `inner`, noting every line break for [`Lines::line_at`].
pub struct LineCounting<R> {
    inner: R,
    offset: u64,
    breaks: Rc<RefCell<Breaks>>,
}

/// Answers which line a byte offset lies on, for offsets that never go back.
pub struct Lines {
    breaks: Rc<RefCell<Breaks>>,
}

/// Wraps `inner`; the parser reads the one, the caller asks the other.
pub fn counting<R: Read>(inner: R) -> (LineCounting<R>, Lines) {
    let breaks = Rc::new(RefCell::new(Breaks::default()));
    let lines = Lines {
        breaks: Rc::clone(&breaks),
    };
    (
        LineCounting {
            inner,
            offset: 0,
            breaks,
        },
        lines,
    )
}

impl<R: Read> Read for LineCounting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut breaks = self.breaks.borrow_mut();
        for (i, byte) in buf[..n].iter().enumerate() {
            if !matches!(byte, b'\r' | b'\n') {
                continue;
            }
            let at = self.offset + i as u64;
            match breaks.runs.back_mut() {
                Some(run) if run.end == at => {
                    // The `\n` of a `\r\n` ends the line its `\r` already counted.
                    run.newlines += u64::from(!(run.last == b'\r' && *byte == b'\n'));
                    run.end += 1;
                    run.last = *byte;
                }
                _ => breaks.runs.push_back(Run {
                    start: at,
                    end: at + 1,
                    newlines: 1,
                    last: *byte,
                }),
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

impl Lines {
    /// The line (the first is 1) of the first character at or after `byte` that is not a
    /// line break: where a record whose parse began at `byte` really starts. Each call's
    /// `byte` must be at least the one before.
    pub fn line_at(&self, byte: u64) -> u64 {
        let mut breaks = self.breaks.borrow_mut();
        while let Some(run) = breaks.runs.front() {
            if run.start > byte {
                break;
            }
            // The record starts after this run, whether parsing began before it or inside it.
            let newlines = run.newlines;
            breaks.passed += newlines;
            breaks.runs.pop_front();
        }
        breaks.passed + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line of each record, as the import reads them.
    fn record_lines(data: &str) -> Vec<u64> {
        let (input, lines) = counting(data.as_bytes());
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(input);
        let mut record = csv::StringRecord::new();
        let mut found = Vec::new();
        loop {
            let start = reader.position().byte();
            match reader.read_record(&mut record) {
                Ok(true) => found.push(lines.line_at(start)),
                Ok(false) => break,
                Err(e) => panic!("{e}"),
            }
        }
        found
    }

    #[test]
    fn lines_are_physical_in_lf_and_crlf_files() {
        assert_eq!(record_lines("a,b\n1,2\n3,4\n"), [1, 2, 3]);
        assert_eq!(record_lines("a,b\r\n1,2\r\n3,4\r\n"), [1, 2, 3]);
        assert_eq!(record_lines("a,b\r1,2\r3,4"), [1, 2, 3]);
    }

    #[test]
    fn a_quoted_field_over_lines_reports_where_its_record_starts() {
        let data = "a,b\n\"one\ntwo\nthree\",2\n3,4\n";
        assert_eq!(record_lines(data), [1, 2, 5]);
        assert_eq!(record_lines(&data.replace('\n', "\r\n")), [1, 2, 5]);
    }

    #[test]
    fn blank_lines_between_records_are_counted() {
        assert_eq!(record_lines("a,b\n\n\n1,2\n"), [1, 4]);
        assert_eq!(record_lines("a,b\r\n\r\n1,2\r\n"), [1, 3]);
    }
}
