//! Host bindings generated from the SDK's WIT: one module per plugin kind, sharing one `types`.

pub mod segmenter {
    wasmtime::component::bindgen!({
        path: "../sdk/wit",
        world: "masthead:plugin/segmenter@1.0.0",
    });
}

pub mod targeter {
    wasmtime::component::bindgen!({
        path: "../sdk/wit",
        world: "masthead:plugin/targeter@1.0.0",
        with: {
            "masthead:plugin/types@1.0.0": super::segmenter::masthead::plugin::types,
            "masthead:plugin/host@1.0.0": super::segmenter::masthead::plugin::host,
        },
    });
}

pub mod offer_provider {
    wasmtime::component::bindgen!({
        path: "../sdk/wit",
        world: "masthead:plugin/offer-provider@1.0.0",
        with: {
            "masthead:plugin/types@1.0.0": super::segmenter::masthead::plugin::types,
            "masthead:plugin/host@1.0.0": super::segmenter::masthead::plugin::host,
        },
    });
}

pub use offer_provider::exports::masthead::plugin::offer_api::{Occasion, Offer, Pricing};
pub use segmenter::masthead::plugin::host;
/// The records every kind shares.
pub use segmenter::masthead::plugin::types as wit;
pub use targeter::exports::masthead::plugin::target_api::{Campaign, Targeting};
