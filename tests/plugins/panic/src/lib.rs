//! Panics on its first record: the trap must be recorded with the panic message.

use masthead_sdk::{Config, Context, Segmenter, Subscriber};

pub struct Panic;

impl Segmenter for Panic {
    fn configure(_: &Config) -> Result<Self, String> {
        Ok(Self)
    }

    fn segment(&self, _: &Context, reader: &Subscriber) -> Result<Vec<String>, String> {
        panic!("hostile plugin gave up on reader {}", reader.number)
    }
}

masthead_sdk::export_segmenter!(Panic);
