//! Reaches for what a plugin must not have and reports, as segment keys, what it got: files,
//! environment, network, a real clock, real timers and real randomness.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use masthead_sdk::{Config, Context, Segmenter, Subscriber};

pub struct Snoop;

impl Segmenter for Snoop {
    fn configure(_: &Config) -> Result<Self, String> {
        Ok(Self)
    }

    fn segment(&self, _: &Context, _: &Subscriber) -> Result<Vec<String>, String> {
        let mut keys = Vec::new();
        let file = std::fs::read_to_string("/etc/passwd").is_ok()
            || std::fs::read_dir("/").is_ok()
            || std::fs::read_dir(".").is_ok();
        keys.push(if file { "files-open" } else { "files-closed" }.to_string());
        let env = std::env::vars().count() > 0 || std::env::args().count() > 0;
        keys.push(if env { "env-open" } else { "env-closed" }.to_string());
        let net = std::net::TcpStream::connect("127.0.0.1:5432").is_ok()
            || std::net::UdpSocket::bind("0.0.0.0:0").is_ok();
        keys.push(
            if net {
                "network-open"
            } else {
                "network-closed"
            }
            .to_string(),
        );
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        keys.push(format!("clock-{now}"));
        // A day's sleep: with real timers the batch would never end.
        let before = Instant::now();
        std::thread::sleep(Duration::from_secs(86_400));
        keys.push(format!("slept-{}", before.elapsed().as_secs()));
        let mut bytes = [0u8; 8];
        let random = std::collections::hash_map::RandomState::new();
        use std::hash::BuildHasher;
        bytes.copy_from_slice(&random.hash_one(1u8).to_le_bytes());
        keys.push(format!("random-{}", u64::from_le_bytes(bytes)));
        Ok(keys)
    }
}

masthead_sdk::export_segmenter!(Snoop);
