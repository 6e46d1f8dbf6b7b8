//! Refuses its configuration with an error of `refuse_bytes` bytes (set in its manifest):
//! the host must keep and show only a capped part of it.

use masthead_sdk::{Config, Context, Occasion, Offer, OfferProvider, Subscriber};

pub struct Verbose;

impl OfferProvider for Verbose {
    fn configure(config: &Config) -> Result<Self, String> {
        let bytes = usize::try_from(config.integer("refuse_bytes", 0)).unwrap_or(0);
        if bytes == 0 {
            return Ok(Self);
        }
        // One allocation of exactly `bytes`: 50 MB fits under a 64 MiB memory cap.
        let mut text = Vec::with_capacity(bytes);
        text.extend_from_slice(b"refused: ");
        text.resize(bytes.max(text.len()), b'x');
        Err(String::from_utf8(text).unwrap_or_default())
    }

    fn offers(&self, _: &Context, _: Occasion, _: &Subscriber) -> Result<Vec<Offer>, String> {
        Ok(Vec::new())
    }
}

masthead_sdk::export_offer_provider!(Verbose);
