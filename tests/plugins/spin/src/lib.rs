//! Loops forever: the fuel budget (or the deadline) must stop it.

use masthead_sdk::{Config, Context, Segmenter, Subscriber};

pub struct Spin;

impl Segmenter for Spin {
    fn configure(_: &Config) -> Result<Self, String> {
        Ok(Self)
    }

    fn segment(&self, _: &Context, reader: &Subscriber) -> Result<Vec<String>, String> {
        let mut n = reader.number;
        loop {
            n = std::hint::black_box(n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
            if n == 0 {
                return Ok(vec![]);
            }
        }
    }
}

masthead_sdk::export_segmenter!(Spin);
