//! The sandbox's clocks: a wall clock that reads the batch's `today`, and a virtual monotonic
//! clock whose timers are ready at once, so no guest can block its thread by waiting.
//!
//! wasmtime-wasi's own timers sleep on real time inside the import, where neither fuel nor the
//! epoch deadline can reach. Here a wait jumps virtual time forward and returns, so a plugin
//! that sleeps in a loop spins in its own code and is stopped by its fuel or its deadline like
//! any other endless loop, and a plugin that sleeps once carries on at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

use super::bindings::wit;

/// The clocks of one sandbox.
#[derive(Clone)]
pub struct Clocks {
    wall: WallClock,
    monotonic: VirtualClock,
}

impl Clocks {
    /// Clocks for a batch run on `today`: the wall clock reads its first second (UTC) and never
    /// moves; the monotonic clock starts at zero.
    pub fn on(today: &wit::Date) -> Self {
        Self {
            wall: WallClock(Duration::from_secs(midnight_secs(today))),
            monotonic: VirtualClock::default(),
        }
    }

    pub fn wall(&self) -> WallClock {
        self.wall.clone()
    }

    pub fn monotonic(&self) -> VirtualClock {
        self.monotonic.clone()
    }
}

/// Unix seconds at the start of `day` (UTC); a day before 1970 or out of range reads 0.
fn midnight_secs(day: &wit::Date) -> u64 {
    chrono::NaiveDate::from_ymd_opt(day.year, u32::from(day.month), u32::from(day.day))
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|t| u64::try_from(t.and_utc().timestamp()).ok())
        .unwrap_or(0)
}

/// A wall clock fixed at one instant.
#[derive(Clone)]
pub struct WallClock(Duration);

impl HostWallClock for WallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        self.0
    }
}

/// Nanoseconds of virtual time, shared by the clock and the timers it hands out.
#[derive(Clone, Default)]
pub struct VirtualClock(Arc<AtomicU64>);

impl VirtualClock {
    fn read(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// A timer due at `when` (nanoseconds of virtual time).
    fn timer(&self, when: u64) -> Timer {
        Timer {
            clock: self.clone(),
            when,
        }
    }
}

impl HostMonotonicClock for VirtualClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        self.read()
    }
}

/// A timer that is ready as soon as it is asked: being waited on moves the clock to its time.
struct Timer {
    clock: VirtualClock,
    when: u64,
}

#[async_trait::async_trait]
impl Pollable for Timer {
    async fn ready(&mut self) {
        self.clock.0.fetch_max(self.when, Ordering::Relaxed);
    }
}

/// What the `wasi:clocks/monotonic-clock` functions reach: the clock, and the table the
/// guest's pollables live in.
pub struct Timers<'a> {
    pub clock: &'a VirtualClock,
    pub table: &'a mut ResourceTable,
}

struct VirtualTime;

impl HasData for VirtualTime {
    type Data<'a> = Timers<'a>;
}

impl monotonic_clock::Host for Timers<'_> {
    fn now(&mut self) -> wasmtime::Result<u64> {
        Ok(self.clock.read())
    }

    fn resolution(&mut self) -> wasmtime::Result<u64> {
        Ok(1)
    }

    fn subscribe_instant(&mut self, when: u64) -> wasmtime::Result<Resource<DynPollable>> {
        let timer = self.table.push(self.clock.timer(when))?;
        subscribe(self.table, timer)
    }

    fn subscribe_duration(&mut self, duration: u64) -> wasmtime::Result<Resource<DynPollable>> {
        let when = self.clock.read().saturating_add(duration);
        let timer = self.table.push(self.clock.timer(when))?;
        subscribe(self.table, timer)
    }
}

/// Replaces wasmtime-wasi's monotonic clock (linked before) with the virtual one.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    timers: fn(&mut T) -> Timers<'_>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let linked = monotonic_clock::add_to_linker::<T, VirtualTime>(linker, timers);
    linker.allow_shadowing(false);
    linked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wall_clock_reads_the_first_second_of_today() {
        let day = wit::Date {
            year: 2026,
            month: 11,
            day: 23,
        };
        assert_eq!(Clocks::on(&day).wall().now().as_secs(), 1_795_392_000);
    }

    #[test]
    fn waiting_on_a_timer_moves_virtual_time_to_it_and_never_back() {
        let clock = VirtualClock::default();
        let mut later = clock.timer(5_000);
        let mut earlier = clock.timer(1_000);
        futures::executor::block_on(later.ready());
        futures::executor::block_on(earlier.ready());
        assert_eq!(clock.now(), 5_000);
    }
}
