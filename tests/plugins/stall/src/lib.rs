//! Asked for offers, sleeps an hour at a time and never answers: the host's virtual clock
//! turns the wait into a spin that the deadline stops.

use std::time::Duration;

use masthead_sdk::{Config, Context, Occasion, Offer, OfferProvider, Subscriber};

pub struct Stall;

impl OfferProvider for Stall {
    fn configure(_: &Config) -> Result<Self, String> {
        Ok(Self)
    }

    fn offers(&self, _: &Context, _: Occasion, _: &Subscriber) -> Result<Vec<Offer>, String> {
        loop {
            std::thread::sleep(Duration::from_secs(3_600));
        }
    }
}

masthead_sdk::export_offer_provider!(Stall);
