//! Circulation: the renewal history of a reader, one-step renewal, new subscriptions, holds,
//! cancellations and the auto-renewal job. Every order is priced here and written at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::audit::AuditLog;
use super::catalogue::Catalogue;
use super::clock::Clock;
use super::clubs::{Clubs, TierPerk};
use super::plugins::offers::{OfferView, Offers};
use super::subscribers::{Caller, Registry};
use super::{ServiceError, ServiceResult};
use crate::domain::money::{BasisPoints, Money, checked_sum};
use crate::domain::pricing::{self, LoyaltyPolicy, PriceBreakdown, Stacking};
use crate::domain::publication::{Format, PublicationCode, PublicationDraft};
use crate::domain::renewal::{self, PlannedTerm, RenewalChanges};
use crate::domain::tenure::{self, SubscriptionStatus, Tenure};
use crate::domain::term::{
    self, Discount, DiscountKind, PaymentMethod, SalesChannel, Span, Term, hold_days,
};
use crate::domain::text;
use crate::domain::{FieldErrors, SubscriberNumber};
use crate::store::{
    Actor, Compensation, NewOrder, NewTerm, Order, OrderKind, OrderOutcome, Publication, Store,
    StoreError, TermChange,
};

/// The rules circulation runs by.
#[derive(Debug, Clone, Copy)]
pub struct RenewalPolicy {
    pub grace_days: i64,
    pub loyalty: LoyaltyPolicy,
    /// How the club tier discount combines with the loyalty discount.
    pub stacking: Stacking,
}

/// All terms of a reader, grouped by title, with status and tenure.
#[derive(Debug, Serialize, ToSchema)]
pub struct RenewalHistory {
    #[schema(value_type = String)]
    pub subscriber: SubscriberNumber,
    pub today: NaiveDate,
    pub status: SubscriptionStatus,
    /// Unbroken subscription to any title.
    pub tenure: Tenure,
    pub first_subscribed: Option<NaiveDate>,
    /// Every price paid, less refunds.
    pub lifetime_revenue: Money,
    pub share_of_wallet: ShareOfWallet,
    /// Titles with the most recently started first.
    pub titles: Vec<TitleHistory>,
    /// Extra days and credits given when complaints were resolved, oldest first.
    pub compensations: Vec<Compensation>,
}

/// Titles held (active or in grace) of the titles offered.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShareOfWallet {
    pub held: usize,
    pub offered: usize,
    /// `held / offered` in percent, rounded down.
    pub percent: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TitleHistory {
    #[schema(value_type = String)]
    pub publication: PublicationCode,
    pub title: String,
    pub status: SubscriptionStatus,
    pub tenure: Tenure,
    /// Newest first.
    pub terms: Vec<Term>,
}

/// An order as the API shows it: the terms created and what they cost.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    pub id: i64,
    pub kind: OrderKind,
    #[schema(value_type = String)]
    pub subscriber: SubscriberNumber,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub created_by: String,
    /// Each term carries its list price, discounts with reasons, and price paid.
    pub terms: Vec<Term>,
    pub total: PriceTotal,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PriceTotal {
    pub list_price: Money,
    pub discounts: Money,
    pub total: Money,
}

/// An order's `Idempotency-Key` and the fingerprint of the request it was sent with: the same
/// key with the same fingerprint replays the order; with another, it is refused.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: String,
    /// A digest of the request's canonical form, independent of how its JSON was laid out.
    pub fingerprint: String,
}

/// A new subscription to one title, outside a renewal.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    #[schema(value_type = String)]
    pub publication: PublicationCode,
    pub format: Format,
    pub months: u32,
    /// First day served (default: today).
    pub start: Option<NaiveDate>,
    pub channel: SalesChannel,
    pub payment_method: PaymentMethod,
    #[serde(default)]
    pub auto_renew: bool,
    /// Discounts staff grant, each with its reason.
    #[serde(default)]
    pub discounts: Vec<ManualDiscount>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualDiscount {
    /// Percent of the list price, 0 to 100 with at most two decimals.
    pub percent: f64,
    pub reason: String,
}

/// A delivery hold (vacation stop) on a print or bundle term.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    pub from: NaiveDate,
    /// The last day without delivery.
    pub to: NaiveDate,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// The first day the reader is no longer served (from the term's start to the day after
    /// its end).
    pub effective: NaiveDate,
    pub reason: String,
    /// Minor units refunded, if any; recorded, not paid out by Masthead.
    pub refund: Option<i64>,
}

/// What the auto-renewal job did.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct AutoRenewReport {
    /// Terms ending in this window were considered.
    pub from: Option<NaiveDate>,
    pub until: Option<NaiveDate>,
    pub renewed: usize,
    pub failed: Vec<AutoRenewFailure>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AutoRenewFailure {
    #[schema(value_type = String)]
    pub subscriber: SubscriberNumber,
    pub term: i64,
    pub reason: String,
}

/// What prices an order's terms besides the price lists and tenure.
struct Pricing<'a> {
    /// The reader's club tier perk (renewals only).
    tier: Option<&'a TierPerk>,
    /// Staff discounts with their reasons.
    manual: &'a [(BasisPoints, String)],
    /// The offer the reader accepted, priced as it was made, for its title.
    offer: Option<&'a OfferView>,
}

/// The outcome of an idempotent order request.
pub struct Placed {
    pub order: OrderView,
    /// True when the key had been used before and this is the earlier answer.
    pub replayed: bool,
}

pub struct Circulation {
    store: Arc<dyn Store>,
    audit: AuditLog,
    registry: Arc<Registry>,
    catalogue: Arc<Catalogue>,
    clock: Arc<dyn Clock>,
    policy: RenewalPolicy,
    clubs: Arc<Clubs>,
}

impl Circulation {
    pub fn new(
        store: Arc<dyn Store>,
        audit: AuditLog,
        registry: Arc<Registry>,
        catalogue: Arc<Catalogue>,
        clock: Arc<dyn Clock>,
        policy: RenewalPolicy,
        clubs: Arc<Clubs>,
    ) -> Self {
        Self {
            store,
            audit,
            registry,
            catalogue,
            clock,
            policy,
            clubs,
        }
    }

    pub async fn history(
        &self,
        caller: &Caller,
        number: SubscriberNumber,
    ) -> ServiceResult<RenewalHistory> {
        self.registry.load(number).await?;
        let terms = self.store.list_terms(number).await?;
        let publications = self.store.list_publications().await?;
        let compensations = self.store.compensations(number).await?;
        self.audit
            .record(caller.audit("terms.read", Some(number), json!({})))
            .await;
        Ok(RenewalHistory {
            compensations,
            ..self.summarise(number, terms, &publications)?
        })
    }

    fn summarise(
        &self,
        number: SubscriberNumber,
        terms: Vec<Term>,
        publications: &[Publication],
    ) -> ServiceResult<RenewalHistory> {
        let today = self.clock.today();
        let grace = self.policy.grace_days;
        let spans: Vec<Span> = terms.iter().map(Term::span).collect();
        // Within the money limits no reader's terms come near i64; only amounts stored before
        // the limits could, and a wrapped (negative) total must never be shown.
        let revenue = checked_sum(terms.iter().map(Term::revenue)).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "the lifetime revenue of {number} does not fit in 64 bits: stored amounts exceed the money limits"
            ))
        })?;
        let mut by_title: BTreeMap<PublicationCode, Vec<Term>> = BTreeMap::new();
        for term in terms {
            by_title
                .entry(term.publication.clone())
                .or_default()
                .push(term);
        }
        let mut titles: Vec<TitleHistory> = by_title
            .into_iter()
            .map(|(code, mut terms)| {
                let spans: Vec<Span> = terms.iter().map(Term::span).collect();
                terms.sort_by_key(|t| std::cmp::Reverse((t.start, t.id)));
                let title = publications
                    .iter()
                    .find(|p| p.definition.code == code)
                    .map(|p| p.definition.title.clone())
                    .unwrap_or_default();
                TitleHistory {
                    status: tenure::status(&spans, today, grace),
                    tenure: tenure::tenure_on(&spans, today, grace),
                    publication: code,
                    title,
                    terms,
                }
            })
            .collect();
        titles.sort_by_key(|t| std::cmp::Reverse(t.terms.first().map(|x| (x.start, x.id))));
        let on_sale = |code: &PublicationCode| {
            publications
                .iter()
                .any(|p| &p.definition.code == code && p.definition.on_sale)
        };
        let held = titles
            .iter()
            .filter(|t| t.status.is_current() && on_sale(&t.publication))
            .count();
        let offered = publications.iter().filter(|p| p.definition.on_sale).count();
        Ok(RenewalHistory {
            subscriber: number,
            today,
            status: tenure::status(&spans, today, grace),
            tenure: tenure::tenure_on(&spans, today, grace),
            first_subscribed: tenure::first_subscribed(&spans),
            lifetime_revenue: Money::new(revenue, self.catalogue.currency()),
            share_of_wallet: ShareOfWallet {
                held,
                offered,
                percent: u32::try_from((held * 100).checked_div(offered).unwrap_or(0)).unwrap_or(0),
            },
            titles,
            compensations: Vec::new(),
        })
    }

    /// Renews "like last year", with `changes`; the key makes a retry return the same order.
    /// An accepted offer is checked with `offers` (its plugin asked again) and priced as made.
    pub async fn renew(
        &self,
        caller: &Caller,
        number: SubscriberNumber,
        idempotency: Idempotency,
        changes: RenewalChanges,
        offers: &Offers,
    ) -> ServiceResult<Placed> {
        let Idempotency {
            key: idempotency_key,
            fingerprint,
        } = idempotency;
        let hash = request_hash(number, "renewal", &fingerprint);
        if let Some(placed) = self.replay(&idempotency_key, &hash).await? {
            return Ok(placed);
        }
        self.registry.load_live(number).await?;
        let terms = self.store.list_terms(number).await?;
        let publications = self.store.list_publications().await?;
        let catalogue: BTreeMap<PublicationCode, PublicationDraft> = publications
            .iter()
            .map(|p| (p.definition.code.clone(), p.definition.clone()))
            .collect();
        let today = self.clock.today();
        let accepted = match &changes.offer {
            Some(choice) => Some(offers.accept(caller, number, choice).await?),
            None => None,
        };
        let changes = match &accepted {
            Some(offer) => {
                let title = offer.title_choice().map_err(|e| {
                    let mut errors = FieldErrors::default();
                    errors.add("offer", e);
                    ServiceError::Invalid(errors)
                })?;
                changes
                    .with_offer(&terms, &title)
                    .map_err(ServiceError::Invalid)?
            }
            None => changes,
        };
        let planned = renewal::plan(&terms, &changes, &catalogue, today, self.policy.grace_days)
            .map_err(ServiceError::Invalid)?;
        if let Some(offer) = &accepted
            && !planned.iter().any(|p| {
                p.publication.as_str() == offer.publication
                    && (p.format, p.months) == (offer.format, offer.months)
            })
        {
            let mut errors = FieldErrors::default();
            errors.add(
                "offer",
                format!("{} is not renewed by this request", offer.publication),
            );
            return Err(ServiceError::Invalid(errors));
        }
        let spans: Vec<Span> = terms.iter().map(Term::span).collect();
        let tier = self.clubs.renewal_perk(number).await?;
        let pricing = Pricing {
            tier: tier.as_ref(),
            manual: &[],
            offer: accepted.as_ref(),
        };
        let new_terms = self.price_all(&planned, &publications, &spans, &pricing)?;
        let order = NewOrder {
            subscriber: number,
            kind: OrderKind::Renewal,
            idempotency_key: Some(idempotency_key),
            request_hash: Some(hash),
            terms: new_terms,
            at: self.clock.now(),
            created_by: caller.actor.name.clone(),
        };
        self.place(caller, order).await
    }

    /// Subscribes the reader to one title, priced by the list in force on its start.
    pub async fn subscribe(
        &self,
        caller: &Caller,
        number: SubscriberNumber,
        idempotency: Idempotency,
        request: NewSubscription,
    ) -> ServiceResult<Placed> {
        let Idempotency {
            key: idempotency_key,
            fingerprint,
        } = idempotency;
        let hash = request_hash(number, "subscription", &fingerprint);
        if let Some(placed) = self.replay(&idempotency_key, &hash).await? {
            return Ok(placed);
        }
        self.registry.load_live(number).await?;
        let publication = self.catalogue.load(&request.publication).await?;
        let mut errors = FieldErrors::default();
        if !publication.definition.on_sale {
            errors.add(
                "publication",
                format!("{} is no longer sold", request.publication),
            );
        } else if !publication.definition.sells(request.format, request.months) {
            errors.add(
                "months",
                format!(
                    "{} is not sold as {} for {} months",
                    request.publication,
                    request.format.as_str(),
                    request.months
                ),
            );
        }
        let mut manual = Vec::new();
        for (i, d) in request.discounts.iter().enumerate() {
            let reason = text::clean(&d.reason);
            if reason.is_empty() || reason.chars().count() > 200 {
                errors.add(
                    format!("discounts[{i}].reason"),
                    "give the reason for the discount (1 to 200 characters)",
                );
            }
            match BasisPoints::from_percent(d.percent) {
                Ok(rate) => manual.push((rate, reason)),
                Err(e) => errors.add(format!("discounts[{i}].percent"), e),
            }
        }
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        let terms = self.store.list_terms(number).await?;
        let spans: Vec<Span> = terms.iter().map(Term::span).collect();
        let planned = PlannedTerm {
            publication: request.publication.clone(),
            format: request.format,
            months: request.months,
            start: request.start.unwrap_or_else(|| self.clock.today()),
            renews: None,
            channel: request.channel,
            payment_method: request.payment_method,
            auto_renew: request.auto_renew,
        };
        let pricing = Pricing {
            tier: None,
            manual: &manual,
            offer: None,
        };
        let new_terms = self.price_all(&[planned], &[publication], &spans, &pricing)?;
        let order = NewOrder {
            subscriber: number,
            kind: OrderKind::Subscription,
            idempotency_key: Some(idempotency_key),
            request_hash: Some(hash),
            terms: new_terms,
            at: self.clock.now(),
            created_by: caller.actor.name.clone(),
        };
        self.place(caller, order).await
    }

    /// A vacation stop: delivery pauses and the term grows by the days held.
    pub async fn hold(
        &self,
        caller: &Caller,
        number: SubscriberNumber,
        term_id: i64,
        request: HoldRequest,
    ) -> ServiceResult<Term> {
        let term = self.load_term(number, term_id).await?;
        let mut errors = FieldErrors::default();
        if !term.format.is_delivered() {
            errors.add(
                "term",
                format!(
                    "term {term_id} is {}; only delivered (print or bundle) terms can be held",
                    term.format.as_str()
                ),
            );
        }
        if request.to < request.from {
            errors.add("to", "the hold must end on or after the day it starts");
        } else if request.from < term.start || request.to > term.end {
            errors.add(
                "from",
                format!(
                    "the hold must lie within the term, {} to {}",
                    term.start, term.end
                ),
            );
        }
        if let Some(other) = term
            .holds
            .iter()
            .find(|h| h.from <= request.to && request.from <= h.to)
        {
            errors.add(
                "from",
                format!(
                    "the hold overlaps hold {} ({} to {})",
                    other.id, other.from, other.to
                ),
            );
        }
        let reason = request
            .reason
            .map(|r| text::clean(&r))
            .filter(|r| !r.is_empty());
        if reason.as_ref().is_some_and(|r| r.chars().count() > 200) {
            errors.add("reason", "keep the reason under 200 characters");
        }
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        let days = hold_days(request.from, request.to);
        let audit = caller.audit(
            "term.hold",
            Some(number),
            json!({ "term": term_id, "days": days }),
        );
        let change = TermChange::Hold {
            from: request.from,
            to: request.to,
            reason,
        };
        self.change(number, &term, change, audit).await
    }

    pub async fn cancel(
        &self,
        caller: &Caller,
        number: SubscriberNumber,
        term_id: i64,
        request: CancelRequest,
    ) -> ServiceResult<Term> {
        let term = self.load_term(number, term_id).await?;
        let mut errors = FieldErrors::default();
        if let Err(e) = term::check_cancellation(request.effective, term.start, term.end) {
            errors.add("effective", e);
        }
        let reason = text::clean(&request.reason);
        if reason.is_empty() || reason.chars().count() > 500 {
            errors.add("reason", "give the reason (1 to 500 characters)");
        }
        let refund = request
            .refund
            .and_then(|r| match pricing::check_refund(r, term.price_paid) {
                Ok(refund) => Some(refund),
                Err(e) => {
                    errors.add("refund", e);
                    None
                }
            });
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        let audit = caller.audit(
            "term.cancel",
            Some(number),
            json!({ "term": term_id, "refund": request.refund.is_some() }),
        );
        let change = TermChange::Cancel {
            effective: request.effective,
            reason,
            refund,
        };
        self.change_and_recompute(caller, number, &term, change, audit)
            .await
    }

    pub async fn set_auto_renew(
        &self,
        caller: &Caller,
        number: SubscriberNumber,
        term_id: i64,
        on: bool,
    ) -> ServiceResult<Term> {
        let term = self.load_term(number, term_id).await?;
        let audit = caller.audit(
            "term.auto_renew",
            Some(number),
            json!({ "term": term_id, "auto_renew": on }),
        );
        self.change(number, &term, TermChange::AutoRenew(on), audit)
            .await
    }

    /// Renews every auto-renew term ending within `days` (and any missed inside the grace
    /// period). Each renewal is its own order keyed by the term it continues, so a second run,
    /// or two hosts running at once, renew nothing twice.
    pub async fn auto_renew(&self, actor: Actor, days: u32) -> ServiceResult<AutoRenewReport> {
        let today = self.clock.today();
        let from = today - chrono::Days::new(u64::try_from(self.policy.grace_days).unwrap_or(0));
        let until = today + chrono::Days::new(u64::from(days));
        let caller = Caller {
            actor,
            request_id: None,
            now: self.clock.now(),
        };
        let publications = self.store.list_publications().await?;
        let mut report = AutoRenewReport {
            from: Some(from),
            until: Some(until),
            ..AutoRenewReport::default()
        };
        let mut after = 0;
        loop {
            let due = self.store.due_terms(from, until, after, 500).await?;
            let Some(last) = due.last() else { break };
            after = last.term_id;
            for item in due {
                match self.auto_renew_one(&caller, &publications, &item).await {
                    Ok(()) => report.renewed += 1,
                    Err(reason) => report.failed.push(AutoRenewFailure {
                        subscriber: item.subscriber,
                        term: item.term_id,
                        reason,
                    }),
                }
            }
        }
        tracing::info!(
            renewed = report.renewed,
            failed = report.failed.len(),
            "auto-renewal run finished"
        );
        Ok(report)
    }

    async fn auto_renew_one(
        &self,
        caller: &Caller,
        publications: &[Publication],
        due: &crate::store::DueTerm,
    ) -> Result<(), String> {
        let terms = self
            .store
            .list_terms(due.subscriber)
            .await
            .map_err(|e| e.to_string())?;
        let term = terms
            .iter()
            .find(|t| t.id == due.term_id)
            .ok_or("the term is gone")?;
        let planned = PlannedTerm {
            publication: term.publication.clone(),
            format: term.format,
            months: term.months,
            start: term.end.succ_opt().unwrap_or(term.end),
            renews: Some(term.id),
            channel: term.channel,
            payment_method: term.payment_method,
            auto_renew: true,
        };
        let spans: Vec<Span> = terms.iter().map(Term::span).collect();
        let tier = self
            .clubs
            .renewal_perk(due.subscriber)
            .await
            .map_err(|e| e.to_string())?;
        let new_terms = self
            .price_all(
                &[planned],
                publications,
                &spans,
                &Pricing {
                    tier: tier.as_ref(),
                    manual: &[],
                    offer: None,
                },
            )
            .map_err(|e| match e {
                ServiceError::Invalid(errors) => errors
                    .iter()
                    .map(|e| e.message.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
                other => other.to_string(),
            })?;
        let order = NewOrder {
            subscriber: due.subscriber,
            kind: OrderKind::AutoRenewal,
            idempotency_key: Some(format!("auto-renewal:{}", term.id)),
            request_hash: None,
            terms: new_terms,
            at: self.clock.now(),
            created_by: caller.actor.name.clone(),
        };
        let audit = caller.audit(
            "order.auto_renewal",
            Some(due.subscriber),
            json!({ "term": term.id }),
        );
        self.store
            .insert_order(order, audit)
            .await
            .map_err(|e| e.to_string())?;
        self.clubs.after_change(&caller.actor, due.subscriber).await;
        Ok(())
    }

    /// Prices each planned term by the list in force on its start, with the loyalty discount
    /// for the tenure it continues, the reader's club tier discount (at renewal) and any staff
    /// discounts.
    fn price_all(
        &self,
        planned: &[PlannedTerm],
        publications: &[Publication],
        spans: &[Span],
        pricing: &Pricing<'_>,
    ) -> ServiceResult<Vec<NewTerm>> {
        let mut errors = FieldErrors::default();
        let mut priced = Vec::new();
        for plan in planned {
            let Some(publication) = publications
                .iter()
                .find(|p| p.definition.code == plan.publication)
            else {
                errors.add(
                    "publication",
                    format!("there is no publication {}", plan.publication),
                );
                continue;
            };
            if !publication.definition.on_sale {
                errors.add(
                    plan.publication.as_str(),
                    format!("{} is no longer sold", plan.publication),
                );
                continue;
            }
            let list =
                match self
                    .catalogue
                    .list_price(publication, plan.format, plan.months, plan.start)
                {
                    Ok(list) => list,
                    Err(e) => {
                        errors.add(plan.publication.as_str(), e);
                        continue;
                    }
                };
            let offered = pricing.offer.filter(|o| {
                o.publication == plan.publication.as_str()
                    && (o.format, o.months) == (plan.format, plan.months)
            });
            let mut discounts = match offered {
                // An offer is the price the reader was shown: the usual discounts do not
                // stack on top of it.
                Some(offer) => vec![offer.discount(list)],
                None => {
                    let tenure = tenure::tenure_on(spans, plan.start, self.policy.grace_days);
                    pricing::stack(
                        list,
                        self.policy.loyalty.discount(list, &tenure),
                        pricing.tier.map(|t| (t.rate, t.label.as_str())),
                        self.policy.stacking,
                    )
                }
            };
            discounts.extend(pricing.manual.iter().map(|(rate, reason)| Discount {
                kind: DiscountKind::Manual,
                reason: format!("{reason} ({rate})"),
                amount: list.percent(*rate),
                offer: None,
            }));
            let breakdown = PriceBreakdown::new(list, discounts);
            priced.push(NewTerm {
                publication_id: publication.id,
                format: plan.format,
                months: plan.months,
                start: plan.start,
                end: term::last_day(plan.start, plan.months),
                list_price: breakdown.list_price,
                discounts: breakdown.discounts,
                price_paid: breakdown.total,
                channel: plan.channel,
                payment_method: plan.payment_method,
                auto_renew: plan.auto_renew,
                renews: plan.renews,
            });
        }
        errors.into_result(priced).map_err(ServiceError::Invalid)
    }

    async fn place(&self, caller: &Caller, order: NewOrder) -> ServiceResult<Placed> {
        let hash = order.request_hash.clone().unwrap_or_default();
        let audit = caller.audit(
            match order.kind {
                OrderKind::Renewal => "order.renewal",
                _ => "order.subscription",
            },
            Some(order.subscriber),
            json!({ "terms": order.terms.len() }),
        );
        match self.store.insert_order(order, audit).await {
            Ok(OrderOutcome::Created(order)) => {
                self.clubs
                    .after_change(&caller.actor, order.subscriber)
                    .await;
                Ok(Placed {
                    order: self.view(order),
                    replayed: false,
                })
            }
            Ok(OrderOutcome::Existing(order)) => self.replayed(order, &hash),
            Err(StoreError::Conflict(detail)) => Err(ServiceError::Conflict(detail)),
            Err(e) => Err(e.into()),
        }
    }

    async fn replay(&self, key: &str, hash: &str) -> ServiceResult<Option<Placed>> {
        match self.store.find_order(key).await? {
            Some(order) => self.replayed(order, hash).map(Some),
            None => Ok(None),
        }
    }

    fn replayed(&self, order: Order, hash: &str) -> ServiceResult<Placed> {
        if order.request_hash.as_deref() != Some(hash) {
            return Err(ServiceError::IdempotencyKeyReused);
        }
        Ok(Placed {
            order: self.view(order),
            replayed: true,
        })
    }

    fn view(&self, order: Order) -> OrderView {
        let currency = self.catalogue.currency();
        // An order holds a handful of terms, each within the money limits.
        let list = checked_sum(order.terms.iter().map(|t| t.list_price.amount)).unwrap_or(i64::MAX);
        let paid = checked_sum(order.terms.iter().map(|t| t.price_paid.amount)).unwrap_or(i64::MAX);
        OrderView {
            id: order.id,
            kind: order.kind,
            subscriber: order.subscriber,
            created_at: order.created_at,
            created_by: order.created_by,
            terms: order.terms,
            total: PriceTotal {
                list_price: Money::new(list, currency),
                discounts: Money::new(list - paid, currency),
                total: Money::new(paid, currency),
            },
        }
    }

    async fn load_term(&self, number: SubscriberNumber, term_id: i64) -> ServiceResult<Term> {
        self.registry.load_live(number).await?;
        self.store
            .list_terms(number)
            .await?
            .into_iter()
            .find(|t| t.id == term_id)
            .ok_or_else(|| {
                ServiceError::NotFound(format!("subscriber {number} has no term {term_id}"))
            })
    }

    async fn change(
        &self,
        number: SubscriberNumber,
        term: &Term,
        change: TermChange,
        audit: crate::store::AuditEntry,
    ) -> ServiceResult<Term> {
        match self
            .store
            .change_term(number, term.id, term.end, change, audit)
            .await
        {
            Ok(term) => Ok(term),
            Err(StoreError::Conflict(detail)) => Err(ServiceError::Conflict(detail)),
            Err(e) => Err(e.into()),
        }
    }

    /// Cancels the term, then recomputes the reader's club tiers.
    async fn change_and_recompute(
        &self,
        caller: &Caller,
        number: SubscriberNumber,
        term: &Term,
        change: TermChange,
        audit: crate::store::AuditEntry,
    ) -> ServiceResult<Term> {
        let changed = self.change(number, term, change, audit).await?;
        self.clubs.after_change(&caller.actor, number).await;
        Ok(changed)
    }
}

/// What an order's key is kept with: the reader, the kind of order and the request's
/// fingerprint, so that the key cannot be replayed for another reader or another request.
fn request_hash(number: SubscriberNumber, what: &str, fingerprint: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!("{what}\n{number}\n{fingerprint}"));
    format!("{:x}", hasher.finalize())
}
