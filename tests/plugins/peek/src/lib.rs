//! Reports what the host showed it, as segment keys: the test of field projection and PII.

use masthead_sdk::{Config, Context, Segmenter, Subscriber};

pub struct Peek;

impl Segmenter for Peek {
    fn configure(_: &Config) -> Result<Self, String> {
        Ok(Self)
    }

    fn segment(&self, _: &Context, reader: &Subscriber) -> Result<Vec<String>, String> {
        let contact = reader
            .contact
            .as_ref()
            .and_then(|c| c.family_name.clone())
            .unwrap_or_else(|| "none".into());
        Ok(vec![
            format!("terms-{}", reader.terms.len()),
            format!("region-{}", reader.region.as_deref().unwrap_or("none")),
            format!("contact-{contact}"),
            format!("status-{:?}", reader.status).to_lowercase(),
        ])
    }
}

masthead_sdk::export_segmenter!(Peek);
