//! Waits, forever, in every way WASI offers a plugin with nothing granted: `sleep` (a timer's
//! `block`), an absolute timer and a long timeout through wasi-libc's `poll`, a blocking read
//! of stdin, blocking writes and flushes of stderr. The host must stop it at its deadline.

// wasi-libc's `clock_nanosleep` and `poll` reach `subscribe-instant` and `wasi:io/poll#poll`,
// which std does not expose; calling them takes `unsafe`.
#![allow(unsafe_code)]

use std::io::{Read, Write};
use std::time::Duration;

use masthead_sdk::{Config, Context, Segmenter, Subscriber};

const MINUTE: Duration = Duration::from_secs(60);

pub struct Sleep;

impl Segmenter for Sleep {
    fn configure(_: &Config) -> Result<Self, String> {
        Ok(Self)
    }

    fn segment(&self, _: &Context, _: &Subscriber) -> Result<Vec<String>, String> {
        loop {
            std::thread::sleep(MINUTE);
            sleep_until_an_hour_on();
            poll_stdin_for_a_minute();
            let mut byte = [0u8; 1];
            let _ = std::io::stdin().read(&mut byte);
            let mut stderr = std::io::stderr();
            let _ = stderr.write_all(b"z");
            let _ = stderr.flush();
        }
    }
}

/// An absolute deadline on the monotonic clock, an hour from now: `subscribe-instant`.
fn sleep_until_an_hour_on() {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: both pointers are to live, writable timespecs; a null remainder is allowed.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now);
        let until = libc::timespec {
            tv_sec: now.tv_sec + 3_600,
            tv_nsec: 0,
        };
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &until,
            std::ptr::null_mut(),
        );
    }
}

/// `poll` on stdin with a minute's timeout: a stream's pollable and a timer, polled together.
fn poll_stdin_for_a_minute() {
    let mut fds = [libc::pollfd {
        fd: 0,
        events: libc::POLLIN,
        revents: 0,
    }];
    // SAFETY: `fds` is a live array of the length passed.
    unsafe {
        libc::poll(fds.as_mut_ptr(), 1, MINUTE.as_millis() as libc::c_int);
    }
}

masthead_sdk::export_segmenter!(Sleep);
