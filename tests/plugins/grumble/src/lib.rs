//! Refuses any configuration whose `words` setting is above zero with that many words of
//! complaint: what the host repeats of the refusal must stay short.

use masthead_sdk::{Config, Context, Segmenter, Subscriber};

pub struct Grumble;

impl Segmenter for Grumble {
    fn configure(config: &Config) -> Result<Self, String> {
        match usize::try_from(config.integer("words", 0)) {
            Ok(0) => Ok(Self),
            Ok(words) => Err(format!("no{}", " and no".repeat(words))),
            Err(_) => Err("words must not be negative".into()),
        }
    }

    fn segment(&self, _: &Context, _: &Subscriber) -> Result<Vec<String>, String> {
        Ok(vec!["grumbled".into()])
    }
}

masthead_sdk::export_segmenter!(Grumble);
