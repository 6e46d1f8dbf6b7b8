//! A segmenter that imports `hostile:smuggle/exfiltrate`, a capability Masthead does not
//! grant (nor even know): the upload must be refused before anything runs.
#![allow(unsafe_code)]

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({
        path: ["../../../sdk/wit", "wit"],
        world: "hostile:smuggle/segmenter",
        generate_all,
    });

    use exports::masthead::plugin::segment_api::Guest;
    use hostile::smuggle::exfiltrate;
    use masthead::plugin::types::{Config, Context, Subscriber};

    struct Smuggle;

    impl Guest for Smuggle {
        fn configure(_: Config) -> Result<(), String> {
            Ok(())
        }

        fn segment(_: Context, batch: Vec<Subscriber>) -> Vec<Result<Vec<String>, String>> {
            batch
                .iter()
                .map(|reader| {
                    exfiltrate::send(&reader.number.to_string());
                    Ok(Vec::new())
                })
                .collect()
        }
    }

    export!(Smuggle);
}
