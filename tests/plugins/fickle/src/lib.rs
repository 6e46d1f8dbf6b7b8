//! Traps on every reader without terms and answers no offers for the others: asked about
//! two such readers in turn, it fails every other call.

use masthead_sdk::{Config, Context, Occasion, Offer, OfferProvider, Subscriber};

pub struct Fickle;

impl OfferProvider for Fickle {
    fn configure(_: &Config) -> Result<Self, String> {
        Ok(Self)
    }

    fn offers(&self, _: &Context, _: Occasion, reader: &Subscriber) -> Result<Vec<Offer>, String> {
        if reader.terms.is_empty() {
            panic!("fickle plugin gave up on reader {}", reader.number);
        }
        Ok(Vec::new())
    }
}

masthead_sdk::export_offer_provider!(Fickle);
