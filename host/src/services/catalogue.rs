//! The publications catalogue: titles, the formats and lengths sold, and price lists.

use std::sync::Arc;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::clock::Clock;
use super::{ServiceError, ServiceResult};
use crate::domain::money::{Currency, Money};
use crate::domain::publication::{
    Format, PriceListDraft, PublicationCode, PublicationDraft, PublicationKind, list_in_force,
};
use crate::store::{Publication, Store, StoreError};

/// The parts of a title that can change.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicationPatch {
    pub title: Option<String>,
    /// False discontinues the title: no new terms or renewals; existing terms run out.
    pub on_sale: Option<bool>,
}

/// A title as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicationView {
    #[schema(value_type = String, example = "DAILY")]
    pub code: PublicationCode,
    pub title: String,
    pub kind: PublicationKind,
    pub formats: Vec<Format>,
    pub term_months: Vec<u32>,
    pub on_sale: bool,
    #[schema(value_type = String, example = "GBP")]
    pub currency: Currency,
    /// Every price list, oldest first; each is in force until the next begins.
    pub price_lists: Vec<PriceListView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PriceListView {
    pub effective_from: NaiveDate,
    pub prices: Vec<PriceView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PriceView {
    pub format: Format,
    pub months: u32,
    pub price: Money,
}

pub struct Catalogue {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    currency: Currency,
}

impl Catalogue {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, currency: Currency) -> Self {
        Self {
            store,
            clock,
            currency,
        }
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub async fn create(&self, draft: PublicationDraft) -> ServiceResult<PublicationView> {
        let draft = draft.check().map_err(ServiceError::Invalid)?;
        match self
            .store
            .create_publication(&draft, self.clock.now())
            .await
        {
            Ok(publication) => Ok(self.view(publication)),
            Err(StoreError::Conflict(_)) => Err(ServiceError::Conflict(format!(
                "there is already a publication {}",
                draft.code
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn list(&self) -> ServiceResult<Vec<PublicationView>> {
        let all = self.store.list_publications().await?;
        Ok(all.into_iter().map(|p| self.view(p)).collect())
    }

    pub async fn get(&self, code: &PublicationCode) -> ServiceResult<PublicationView> {
        Ok(self.view(self.load(code).await?))
    }

    /// Renames a title or takes it off (or back on) sale. Formats and lengths stay as they
    /// were: every price list was checked against them.
    pub async fn update(
        &self,
        code: &PublicationCode,
        patch: PublicationPatch,
    ) -> ServiceResult<PublicationView> {
        let publication = self.load(code).await?;
        let mut definition = publication.definition.clone();
        if let Some(title) = patch.title {
            definition.title = title;
        }
        if let Some(on_sale) = patch.on_sale {
            definition.on_sale = on_sale;
        }
        let definition = definition.check().map_err(ServiceError::Invalid)?;
        self.store
            .update_publication(publication.id, &definition)
            .await?;
        self.get(code).await
    }

    /// Adds a price list. Lists are never edited: a change of price is a new list from a
    /// later date, so every term keeps the price it was sold at.
    pub async fn add_price_list(
        &self,
        code: &PublicationCode,
        draft: PriceListDraft,
        by: &str,
    ) -> ServiceResult<PublicationView> {
        let publication = self.load(code).await?;
        let draft = draft
            .check(&publication.definition)
            .map_err(ServiceError::Invalid)?;
        match self
            .store
            .add_price_list(publication.id, &draft, self.clock.now(), by)
            .await
        {
            Ok(()) => self.get(code).await,
            Err(StoreError::Conflict(_)) => Err(ServiceError::Conflict(format!(
                "{code} already has a price list from {}; add one from another date",
                draft.effective_from
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn load(&self, code: &PublicationCode) -> ServiceResult<Publication> {
        self.store
            .get_publication(code)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("there is no publication {code}")))
    }

    /// The list price of a format and length on a day, or why there is none.
    pub(crate) fn list_price(
        &self,
        publication: &Publication,
        format: Format,
        months: u32,
        on: NaiveDate,
    ) -> Result<Money, String> {
        let code = &publication.definition.code;
        let list = list_in_force(&publication.price_lists, on)
            .ok_or_else(|| format!("{code} has no price list in force on {on}"))?;
        list.price(format, months)
            .map(|amount| Money::new(amount, self.currency))
            .ok_or_else(|| {
                format!(
                    "the {code} price list from {} has no price for {} months in {}",
                    list.effective_from,
                    months,
                    format.as_str()
                )
            })
    }

    fn view(&self, publication: Publication) -> PublicationView {
        let d = publication.definition;
        PublicationView {
            code: d.code,
            title: d.title,
            kind: d.kind,
            formats: d.formats,
            term_months: d.term_months,
            on_sale: d.on_sale,
            currency: self.currency,
            price_lists: publication
                .price_lists
                .into_iter()
                .map(|l| PriceListView {
                    effective_from: l.effective_from,
                    prices: l
                        .prices
                        .into_iter()
                        .map(|p| PriceView {
                            format: p.format,
                            months: p.months,
                            price: Money::new(p.amount, self.currency),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}
