//! Checking a segment's definition against what is stored: the plugin, its version and key,
//! or the filter with the publications, clubs, tiers, segments and plugin segments it names,
//! without a cycle of segments, on a day no later than today.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::selection::is_plugin_segment;
use crate::domain::FieldErrors;
use crate::domain::filter::{self, Filter};
use crate::domain::plugin::PluginKind;
use crate::services::ServiceResult;
use crate::store::{Definition, SegmentRecord, Store};

/// Adds to `errors` what is wrong with the plugin form of a definition.
pub(super) async fn plugin(
    store: &dyn Store,
    plugin: &str,
    version: Option<&str>,
    key: &str,
    errors: &mut FieldErrors,
) -> ServiceResult<()> {
    if key.trim().is_empty() || key.len() > 64 {
        errors.add(
            "key",
            "give the segment key (1 to 64 characters) the plugin returns",
        );
    }
    match store.get_plugin(plugin).await? {
        None => errors.add("plugin", format!("there is no plugin {plugin}")),
        Some(p) if p.kind != PluginKind::Segmenter => errors.add(
            "plugin",
            format!("{} is a {}, not a segmenter", p.id, p.kind.as_str()),
        ),
        Some(_) => {
            if let Some(v) = version {
                let versions = store.plugin_versions(plugin).await?;
                if !versions.iter().any(|x| x.version == v) {
                    errors.add("plugin_version", format!("{plugin} has no version {v}"));
                }
            }
        }
    }
    Ok(())
}

/// Adds to `errors` what is wrong with a filter (at `filter`) and its day (at `as_of`) for
/// the segment `name` (none for a preview): the filter's own problems, then what it names
/// that is not stored, and a cycle it would close.
pub(super) async fn filter(
    store: &dyn Store,
    name: Option<&str>,
    filter: &Filter,
    as_of: Option<NaiveDate>,
    today: NaiveDate,
    errors: &mut FieldErrors,
) -> ServiceResult<()> {
    if as_of.is_some_and(|day| day > today) {
        errors.add("as_of", format!("give a day no later than today, {today}"));
    }
    filter.validate("filter", errors);
    if !errors.is_empty() {
        return Ok(());
    }
    let segments: HashMap<String, SegmentRecord> = store
        .list_segments()
        .await?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    let lookup = |n: &str| segments.get(n).and_then(|s| s.definition.filter().cloned());
    // A preview is named by nothing a segment could refer to.
    if let Some(found) = filter::cycle(name.unwrap_or(""), filter, lookup) {
        errors.add(
            "filter",
            format!(
                "segments may not refer to each other in a cycle: {}",
                found.join(" -> ")
            ),
        );
        return Ok(());
    }
    let publications = store.list_publications().await?;
    for (at, condition) in filter.conditions("filter") {
        match condition {
            Filter::Holds { publication, .. } => {
                let code = publication.trim();
                if !publications
                    .iter()
                    .any(|p| p.definition.code.as_str().eq_ignore_ascii_case(code))
                {
                    errors.add(
                        format!("{at}.holds.publication"),
                        format!("there is no publication {code}"),
                    );
                }
            }
            Filter::Tier {
                club,
                at_least,
                exactly,
            } => {
                let (at_least, exactly) = (at_least.as_deref(), exactly.as_deref());
                tier(store, &at, club, at_least, exactly, errors).await?;
            }
            Filter::Segment { name } if !segments.contains_key(name) => {
                errors.add(
                    format!("{at}.segment.name"),
                    format!("there is no segment {name}"),
                );
            }
            Filter::Plugin { id, key } => {
                let stored = segments
                    .values()
                    .any(|s| is_plugin_segment(&s.definition, id, key));
                if !stored {
                    errors.add(
                        format!("{at}.plugin.key"),
                        format!(
                            "no segment of plugin {id} with the key {key} is defined; \
                             define one first, then refer to it"
                        ),
                    );
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The club a `tier` condition at `at` names must exist and have the tier it names.
async fn tier(
    store: &dyn Store,
    at: &str,
    club: &str,
    at_least: Option<&str>,
    exactly: Option<&str>,
    errors: &mut FieldErrors,
) -> ServiceResult<()> {
    let Some(record) = store.get_club(club).await? else {
        errors.add(
            format!("{at}.tier.club"),
            format!("there is no club {club}"),
        );
        return Ok(());
    };
    let tiers = &record.definition.tiers;
    let named = [("at_least", at_least), ("exactly", exactly)];
    for (field, code) in named.into_iter().filter_map(|(f, c)| Some((f, c?))) {
        if !tiers.iter().any(|t| t.code == code) {
            let codes: Vec<&str> = tiers.iter().map(|t| t.code.as_str()).collect();
            errors.add(
                format!("{at}.tier.{field}"),
                format!(
                    "club {club} has no tier {code}; its tiers are {}",
                    codes.join(", ")
                ),
            );
        }
    }
    Ok(())
}

/// The segments whose filters name `segment`, by name or (a plugin segment) by its plugin
/// and key: it may not be deleted while they do.
pub(super) fn referring<'a>(segment: &SegmentRecord, all: &'a [SegmentRecord]) -> Vec<&'a str> {
    let named = |f: &Filter| {
        f.segments().contains(&segment.name.as_str())
            || match &segment.definition {
                Definition::Plugin { plugin_id, key, .. } => {
                    f.plugins().contains(&(plugin_id.as_str(), key.as_str()))
                }
                Definition::Filter { .. } => false,
            }
    };
    all.iter()
        .filter(|s| s.id != segment.id && s.definition.filter().is_some_and(named))
        .map(|s| s.name.as_str())
        .collect()
}
