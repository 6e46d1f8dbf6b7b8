//! Allocates until it is refused: the memory cap must stop it.

use masthead_sdk::{Config, Context, Segmenter, Subscriber};

pub struct Hog;

impl Segmenter for Hog {
    fn configure(_: &Config) -> Result<Self, String> {
        Ok(Self)
    }

    fn segment(&self, _: &Context, _: &Subscriber) -> Result<Vec<String>, String> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![1; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

masthead_sdk::export_segmenter!(Hog);
