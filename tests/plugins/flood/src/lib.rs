//! Answers 256 KiB of segment keys per reader: the result cap must refuse the batch.

use masthead_sdk::{Config, Context, Segmenter, Subscriber};

pub struct Flood;

impl Segmenter for Flood {
    fn configure(_: &Config) -> Result<Self, String> {
        Ok(Self)
    }

    fn segment(&self, _: &Context, reader: &Subscriber) -> Result<Vec<String>, String> {
        let key = format!("{:0>250}", reader.number);
        Ok(vec![key; 1024])
    }
}

masthead_sdk::export_segmenter!(Flood);
