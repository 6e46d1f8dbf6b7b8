//! Recurses without end: the stack limit must stop it.

use masthead_sdk::{Config, Context, Segmenter, Subscriber};

pub struct Recurse;

#[allow(unconditional_recursion)] // the point of this plugin
fn deeper(n: u64, trail: &mut [u64; 64]) -> u64 {
    trail[(n % 64) as usize] = n;
    std::hint::black_box(deeper(n + 1, trail)) + trail[0]
}

impl Segmenter for Recurse {
    fn configure(_: &Config) -> Result<Self, String> {
        Ok(Self)
    }

    fn segment(&self, _: &Context, reader: &Subscriber) -> Result<Vec<String>, String> {
        let mut trail = [0; 64];
        Ok(vec![deeper(reader.number, &mut trail).to_string()])
    }
}

masthead_sdk::export_segmenter!(Recurse);
