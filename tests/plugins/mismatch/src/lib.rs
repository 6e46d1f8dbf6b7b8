//! A segmenter whose `segment` has the wrong signature (see `wit/plugin.wit`): its export
//! names are right, so only a signature check at upload can refuse it.
#![allow(unsafe_code)]

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "wit", world: "segmenter" });

    use exports::masthead::plugin::segment_api::Guest;
    use masthead::plugin::types::Config;

    struct Mismatch;

    impl Guest for Mismatch {
        fn configure(_: Config) -> Result<(), String> {
            Ok(())
        }

        fn segment(batch: Vec<u64>) -> Vec<String> {
            batch.iter().map(u64::to_string).collect()
        }
    }

    export!(Mismatch);
}
