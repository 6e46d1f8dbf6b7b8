//! Plugin packages: the manifest an author ships, its checks, and the sandbox limits it gets.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::validation::FieldErrors;

/// The contract version this host serves; a plugin must be built for the same major and no
/// newer minor.
pub const API_VERSION: Version = Version {
    major: 1,
    minor: 0,
    patch: 0,
};

const MAX_ID_CHARS: usize = 64;
const MAX_CONFIG_KEYS: usize = 64;

/// What a plugin decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    Segmenter,
    Targeter,
    OfferProvider,
}

impl PluginKind {
    pub const ALL: [Self; 3] = [Self::Segmenter, Self::Targeter, Self::OfferProvider];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Segmenter => "segmenter",
            Self::Targeter => "targeter",
            Self::OfferProvider => "offer-provider",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The interface a component of this kind exports, without its version.
    pub fn export_interface(self) -> &'static str {
        match self {
            Self::Segmenter => "masthead:plugin/segment-api",
            Self::Targeter => "masthead:plugin/target-api",
            Self::OfferProvider => "masthead:plugin/offer-api",
        }
    }
}

/// A subscriber field a plugin may read; the host fills only those its manifest lists.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Field {
    Status,
    Region,
    PostalCode,
    BirthYear,
    Tenure,
    LifetimeRevenue,
    ShareOfWallet,
    Terms,
    ClubTiers,
    Complaints,
    Consents,
    Attributes,
    /// Names, emails, phones and address: needs the `pii` permission, granted by an admin.
    Contact,
}

impl Field {
    pub const ALL: [Self; 13] = [
        Self::Status,
        Self::Region,
        Self::PostalCode,
        Self::BirthYear,
        Self::Tenure,
        Self::LifetimeRevenue,
        Self::ShareOfWallet,
        Self::Terms,
        Self::ClubTiers,
        Self::Complaints,
        Self::Consents,
        Self::Attributes,
        Self::Contact,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Region => "region",
            Self::PostalCode => "postal-code",
            Self::BirthYear => "birth-year",
            Self::Tenure => "tenure",
            Self::LifetimeRevenue => "lifetime-revenue",
            Self::ShareOfWallet => "share-of-wallet",
            Self::Terms => "terms",
            Self::ClubTiers => "club-tiers",
            Self::Complaints => "complaints",
            Self::Consents => "consents",
            Self::Attributes => "attributes",
            Self::Contact => "contact",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// Whether reading this field needs the subscriber's terms.
    pub fn needs_terms(self) -> bool {
        matches!(
            self,
            Self::Status | Self::Tenure | Self::LifetimeRevenue | Self::ShareOfWallet | Self::Terms
        )
    }
}

/// The set of fields a plugin reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FieldSet(u16);

impl FieldSet {
    pub fn of(fields: &[Field]) -> Self {
        Self(fields.iter().fold(0, |bits, f| bits | 1 << *f as u16))
    }

    pub fn contains(self, field: Field) -> bool {
        self.0 & (1 << field as u16) != 0
    }

    pub fn needs_terms(self) -> bool {
        Field::ALL
            .iter()
            .any(|f| f.needs_terms() && self.contains(*f))
    }
}

/// A `major.minor.patch` version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split('.').map(|p| p.parse::<u32>().ok());
        let version = Self {
            major: parts.next()??,
            minor: parts.next()??,
            patch: parts.next()??,
        };
        parts.next().is_none().then_some(version)
    }

    /// Whether this host can run a plugin built against `self`.
    pub fn is_served(self) -> bool {
        // Minor versions only add, so a host serves every minor up to its own.
        self.major == API_VERSION.major && self.minor.cmp(&API_VERSION.minor).is_le()
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The type of one configuration setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SettingType {
    Boolean,
    Integer,
    Float,
    Text,
}

impl SettingType {
    /// What a value of this type is, in words for a person sending one.
    pub fn described(self) -> &'static str {
        match self {
            Self::Boolean => "true or false",
            Self::Integer => "a whole number",
            Self::Float => "a number",
            Self::Text => "a text",
        }
    }
}

/// A configuration value, typed as its schema says.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum SettingValue {
    Boolean(bool),
    Integer(i64),
    Float(f64),
    Text(String),
}

// By hand rather than `untagged`, whose error ("did not match any variant of untagged enum")
// tells the sender nothing; this one says what a setting may be.
impl<'de> Deserialize<'de> for SettingValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Scalar;
        impl serde::de::Visitor<'_> for Scalar {
            type Value = SettingValue;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a setting value: true or false, a number or a text")
            }

            fn visit_bool<E>(self, v: bool) -> Result<SettingValue, E> {
                Ok(SettingValue::Boolean(v))
            }

            fn visit_i64<E>(self, v: i64) -> Result<SettingValue, E> {
                Ok(SettingValue::Integer(v))
            }

            fn visit_u64<E>(self, v: u64) -> Result<SettingValue, E> {
                Ok(i64::try_from(v).map_or(SettingValue::Float(v as f64), SettingValue::Integer))
            }

            fn visit_f64<E>(self, v: f64) -> Result<SettingValue, E> {
                Ok(SettingValue::Float(v))
            }

            fn visit_str<E>(self, v: &str) -> Result<SettingValue, E> {
                Ok(SettingValue::Text(v.to_string()))
            }

            fn visit_string<E>(self, v: String) -> Result<SettingValue, E> {
                Ok(SettingValue::Text(v))
            }
        }
        deserializer.deserialize_any(Scalar)
    }
}

impl SettingValue {
    /// Reads a JSON or TOML scalar as `ty`; an integer is accepted for a float.
    fn typed(ty: SettingType, value: &SettingValue) -> Option<SettingValue> {
        match (ty, value) {
            (SettingType::Boolean, SettingValue::Boolean(_))
            | (SettingType::Integer, SettingValue::Integer(_))
            | (SettingType::Float, SettingValue::Float(_))
            | (SettingType::Text, SettingValue::Text(_)) => Some(value.clone()),
            (SettingType::Float, SettingValue::Integer(i)) => Some(SettingValue::Float(*i as f64)),
            _ => None,
        }
    }
}

/// One setting of a plugin's configuration schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Setting {
    #[serde(rename = "type")]
    pub ty: SettingType,
    pub default: SettingValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Limits a manifest asks for; each may only lower the host's cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestedLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_per_batch: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
}

/// The limits a plugin runs under: the host's caps, lowered where its manifest asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Limits {
    pub memory_mib: u32,
    pub fuel_per_batch: u64,
    pub deadline_ms: u64,
}

impl Limits {
    /// The limits for a manifest; asking for more than a cap is an error naming the cap.
    pub fn within(self, asked: RequestedLimits) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        let mut pick = |field: &str, asked: Option<u64>, cap: u64| match asked {
            Some(0) => {
                errors.add(format!("limits.{field}"), "must be positive");
                cap
            }
            Some(v) if v > cap => {
                errors.add(
                    format!("limits.{field}"),
                    format!("{v} exceeds this host's cap of {cap}"),
                );
                cap
            }
            Some(v) => v,
            None => cap,
        };
        let memory_mib = pick(
            "memory_mib",
            asked.memory_mib.map(u64::from),
            u64::from(self.memory_mib),
        );
        let fuel_per_batch = pick("fuel_per_batch", asked.fuel_per_batch, self.fuel_per_batch);
        let deadline_ms = pick("deadline_ms", asked.deadline_ms, self.deadline_ms);
        errors.into_result(Self {
            memory_mib: memory_mib as u32,
            fuel_per_batch,
            deadline_ms,
        })
    }
}

/// `masthead-plugin.toml` as written by the author.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub id: String,
    pub version: String,
    pub kind: PluginKind,
    pub api_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Subscriber fields the plugin reads.
    #[serde(default)]
    pub fields: Vec<String>,
    /// Permissions asked for: only `pii` exists (contact details).
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub limits: RequestedLimits,
    /// The configuration schema with defaults, by setting name.
    #[serde(default)]
    pub config: BTreeMap<String, Setting>,
    /// Hex SHA-256 of the component; filled in by `masthead plugin upload` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// A manifest that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedManifest {
    pub manifest: Manifest,
    pub version: Version,
    pub api_version: Version,
    pub fields: FieldSet,
    pub wants_pii: bool,
    pub limits: Limits,
}

impl Manifest {
    /// Parses the TOML text; syntax and shape errors name the line and key.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| format!("masthead-plugin.toml: {}", e.message()))
    }

    /// Checks every field against the contract and the host's caps, reporting all problems.
    pub fn check(self, caps: Limits) -> Result<CheckedManifest, FieldErrors> {
        let mut errors = FieldErrors::default();
        if !is_plugin_id(&self.id) {
            errors.add(
                "id",
                format!(
                    "use 1 to {MAX_ID_CHARS} lower-case letters, digits and dashes, starting with a letter"
                ),
            );
        }
        let version = Version::parse(&self.version);
        if version.is_none() {
            errors.add("version", "use major.minor.patch, e.g. 1.0.0");
        }
        let api_version = Version::parse(&self.api_version);
        match api_version {
            None => errors.add("api_version", "use major.minor.patch, e.g. 1.0.0"),
            Some(v) if !v.is_served() => errors.add(
                "api_version",
                format!("this host serves masthead:plugin@{API_VERSION}; {v} cannot run here"),
            ),
            Some(_) => {}
        }
        let mut fields = Vec::new();
        for (i, name) in self.fields.iter().enumerate() {
            match Field::parse(name) {
                Some(f) if fields.contains(&f) => {
                    errors.add(format!("fields[{i}]"), format!("{name} is listed twice"))
                }
                Some(f) => fields.push(f),
                None => errors.add(
                    format!("fields[{i}]"),
                    format!(
                        "unknown field \"{name}\"; known: {}",
                        Field::ALL.map(Field::as_str).join(", ")
                    ),
                ),
            }
        }
        let mut wants_pii = false;
        for (i, permission) in self.permissions.iter().enumerate() {
            if permission == "pii" {
                wants_pii = true;
            } else {
                errors.add(
                    format!("permissions[{i}]"),
                    format!("unknown permission \"{permission}\"; the only one is \"pii\""),
                );
            }
        }
        if fields.contains(&Field::Contact) && !wants_pii {
            errors.add(
                "fields",
                "reading contact needs the \"pii\" permission in permissions",
            );
        }
        if self.config.len() > MAX_CONFIG_KEYS {
            errors.add("config", format!("at most {MAX_CONFIG_KEYS} settings"));
        }
        for (key, setting) in &self.config {
            if !is_setting_key(key) {
                errors.add(
                    format!("config.{key}"),
                    "use lower-case letters, digits and underscores",
                );
            }
            if SettingValue::typed(setting.ty, &setting.default).is_none() {
                errors.add(
                    format!("config.{key}.default"),
                    format!("must be {}", setting.ty.described()),
                );
            }
        }
        if let Some(sha) = &self.sha256
            && !(sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            errors.add("sha256", "must be 64 hexadecimal digits");
        }
        let limits = match caps.within(self.limits) {
            Ok(limits) => limits,
            Err(e) => {
                errors.extend(e);
                caps
            }
        };
        let (Some(version), Some(api_version)) = (version, api_version) else {
            return Err(errors);
        };
        errors.into_result(()).map(|()| CheckedManifest {
            fields: FieldSet::of(&fields),
            wants_pii,
            limits,
            version,
            api_version,
            manifest: self,
        })
    }

    /// The defaults with `overrides` applied, every override checked against the schema.
    pub fn resolve_config(
        &self,
        overrides: &BTreeMap<String, SettingValue>,
    ) -> Result<Vec<(String, SettingValue)>, FieldErrors> {
        let mut errors = FieldErrors::default();
        for (key, value) in overrides {
            match self.config.get(key) {
                None => errors.add(
                    format!("config.{key}"),
                    format!(
                        "not a setting of this plugin; its settings: {}",
                        self.config.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ),
                Some(setting) if SettingValue::typed(setting.ty, value).is_none() => errors.add(
                    format!("config.{key}"),
                    format!("must be {}", setting.ty.described()),
                ),
                Some(_) => {}
            }
        }
        let resolved = self
            .config
            .iter()
            .map(|(key, setting)| {
                let value = overrides.get(key).unwrap_or(&setting.default);
                let value = SettingValue::typed(setting.ty, value).unwrap_or_else(|| value.clone());
                (key.clone(), value)
            })
            .collect();
        errors.into_result(resolved)
    }
}

fn is_plugin_id(id: &str) -> bool {
    (1..=MAX_ID_CHARS).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn is_setting_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_ID_CHARS
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: Limits = Limits {
        memory_mib: 64,
        fuel_per_batch: 1_000_000,
        deadline_ms: 500,
    };

    fn manifest(extra: &str) -> Manifest {
        Manifest::from_toml(&format!(
            "id = \"churn-risk\"\nversion = \"1.2.0\"\nkind = \"segmenter\"\napi_version = \"1.0.0\"\n{extra}"
        ))
        .expect("parses")
    }

    #[test]
    fn a_good_manifest_gets_the_caps_lowered_where_asked() {
        let checked = manifest("fields = [\"status\", \"terms\"]\n[limits]\nmemory_mib = 16\n")
            .check(CAPS)
            .expect("valid");
        assert_eq!(checked.limits.memory_mib, 16);
        assert_eq!(checked.limits.deadline_ms, 500);
        assert!(checked.fields.contains(Field::Terms));
        assert!(!checked.fields.contains(Field::Contact));
        assert!(checked.fields.needs_terms());
        assert_eq!(checked.version.to_string(), "1.2.0");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut bad = manifest(
            "fields = [\"status\", \"shoe-size\", \"contact\"]\npermissions = [\"network\"]\n[limits]\nmemory_mib = 4096\n[config.weeks]\ntype = \"integer\"\ndefault = \"four\"\n",
        );
        bad.id = "Churn Risk".into();
        bad.api_version = "2.0.0".into();
        let errors = bad.check(CAPS).expect_err("invalid");
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "id",
                "api_version",
                "fields[1]",
                "permissions[0]",
                "fields",
                "config.weeks.default",
                "limits.memory_mib"
            ]
        );
        let api = errors
            .iter()
            .find(|e| e.field == "api_version")
            .expect("api");
        assert!(
            api.message.contains("serves masthead:plugin@1.0.0"),
            "{}",
            api.message
        );
    }

    #[test]
    fn unknown_keys_in_the_manifest_are_refused() {
        let e = Manifest::from_toml("id = \"x\"\nversion = \"1.0.0\"\nkind = \"segmenter\"\napi_version = \"1.0.0\"\nfeilds = []\n")
            .expect_err("unknown key");
        assert!(e.contains("feilds"), "{e}");
    }

    #[test]
    fn overrides_are_checked_against_the_schema() {
        let m = manifest(
            "[config.weeks]\ntype = \"integer\"\ndefault = 4\n[config.ratio]\ntype = \"float\"\ndefault = 0.5\n",
        );
        let ok = m
            .resolve_config(&BTreeMap::from([(
                "ratio".into(),
                SettingValue::Integer(1),
            )]))
            .expect("valid");
        assert_eq!(
            ok,
            [
                ("ratio".to_string(), SettingValue::Float(1.0)),
                ("weeks".to_string(), SettingValue::Integer(4))
            ]
        );
        let bad = m
            .resolve_config(&BTreeMap::from([
                ("weeks".into(), SettingValue::Text("x".into())),
                ("colour".into(), SettingValue::Boolean(true)),
            ]))
            .expect_err("invalid");
        assert_eq!(bad.iter().count(), 2);
        let weeks = bad
            .iter()
            .find(|e| e.field == "config.weeks")
            .expect("weeks");
        assert_eq!(weeks.message, "must be a whole number");
    }

    #[test]
    fn a_setting_value_is_read_from_any_scalar_and_a_list_is_refused_in_words() {
        let read =
            |json: &str| serde_json::from_str::<SettingValue>(json).map_err(|e| e.to_string());
        assert_eq!(read("true"), Ok(SettingValue::Boolean(true)));
        assert_eq!(read("-3"), Ok(SettingValue::Integer(-3)));
        assert_eq!(read("2.5"), Ok(SettingValue::Float(2.5)));
        assert_eq!(read("\"red\""), Ok(SettingValue::Text("red".into())));
        let refused = read("[1, 2]").expect_err("a list is no setting");
        assert!(
            refused.contains("true or false, a number or a text"),
            "{refused}"
        );
        assert!(!refused.contains("untagged"), "{refused}");
    }

    #[test]
    fn versions_of_another_major_or_a_newer_minor_are_not_served() {
        assert!(Version::parse("1.0.7").expect("v").is_served());
        assert!(!Version::parse("1.1.0").expect("v").is_served());
        assert!(!Version::parse("2.0.0").expect("v").is_served());
        assert!(Version::parse("1.0").is_none());
        assert!(Version::parse("1.0.0.1").is_none());
    }
}
