//! A segmenter built against `masthead:plugin@2.0.0`, a major version this host does not
//! serve: the upload must be refused before anything runs.
#![allow(unsafe_code)]

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "wit", world: "segmenter" });

    use exports::masthead::plugin::segment_api::Guest;
    use masthead::plugin::types::{Config, Context, Subscriber};

    struct Future;

    impl Guest for Future {
        fn configure(_: Config) -> Result<(), String> {
            Ok(())
        }

        fn segment(_: Context, batch: Vec<Subscriber>) -> Vec<Result<Vec<String>, String>> {
            batch
                .iter()
                .map(|_| Ok(vec!["from-the-future".into()]))
                .collect()
        }
    }

    export!(Future);
}
