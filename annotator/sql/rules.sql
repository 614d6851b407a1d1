-- The labeling rules, each defined once. The claim and the answer (claim.sql, answer.sql) call them, and so do
-- the ORM's queries (annotator.core.leases, annotator.selectors.campaigns), the hot path's reads
-- (annotator.services.access, annotator.services.assignments) and the money reads (annotator.selectors.money).
--
-- The three boolean rules are one-expression SQL functions: PostgreSQL inlines such a function into the query
-- that calls it before planning, so a caller's plan is the plan of the expression written out (the partial
-- index on status = 'leased' still matches). IMMUTABLE because they read only their arguments.

-- A live lease: leased to a labeler and not yet expired at `at`.
CREATE OR REPLACE FUNCTION annotator_lease_live(status varchar, leased_until timestamptz, at timestamptz)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT status = 'leased' AND leased_until > at
$$;

-- An assignment that holds one of its comparison's slots: answered, or a live lease.
CREATE OR REPLACE FUNCTION annotator_holds_slot(status varchar, leased_until timestamptz, at timestamptz)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT status = 'submitted' OR annotator_lease_live(status, leased_until, at)
$$;

-- The cap: one more item (or step) of `price` may not start when spent + reserved + price would pass the budget.
-- No budget (NULL) is no cap.
CREATE OR REPLACE FUNCTION annotator_budget_exceeded(spent numeric, reserved numeric, price numeric, budget numeric)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT budget IS NOT NULL AND spent + reserved + price > budget
$$;

-- A labeler of a campaign: a member of it in the role 'labeler' (annotator.models.CampaignMembership, CampaignRole).
-- Only they see, claim and answer its items; staff are no exception, and a manager of the campaign does not label
-- it. One probe of the unique (campaign, user) index. PL/pgSQL for the reason given below: a query cannot be inlined.
CREATE OR REPLACE FUNCTION annotator_labeler_member(p_campaign bigint, p_user integer)
RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM annotator_campaignmembership m
                    WHERE m.campaign_id = p_campaign AND m.user_id = p_user AND m.role = 'labeler');
END
$$;

-- The two sums below are PL/pgSQL rather than SQL functions: a query cannot be inlined, and PL/pgSQL keeps its
-- plan for the connection, where (before PostgreSQL 18) an SQL function plans its query on every call.

-- What a campaign has spent: its memo of an immutable prefix of its ledger plus the entries after it
-- (see annotator.services.ledger for when the memo moves).
CREATE OR REPLACE FUNCTION annotator_money_spent(p_campaign bigint)
RETURNS numeric LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT k.ledger_prefix_sum + (SELECT COALESCE(SUM(e.amount), 0)
                                            FROM annotator_ledgerentry e
                                           WHERE e.campaign_id = k.id AND e.id > k.ledger_prefix_end_id)
              FROM annotator_campaign k
             WHERE k.id = p_campaign);
END
$$;

-- What a campaign holds in reservations at `p_at`: the reserved amounts of its live leases.
CREATE OR REPLACE FUNCTION annotator_money_reserved(p_campaign bigint, p_at timestamptz)
RETURNS numeric LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT COALESCE(SUM(a.reserved_amount), 0)
              FROM annotator_assignment a
              JOIN annotator_comparison c ON c.id = a.comparison_id
             WHERE c.campaign_id = p_campaign AND annotator_lease_live(a.status, a.leased_until, p_at));
END
$$;

-- A campaign's money at `at` in one snapshot, and whether one more item of `price` passes its cap.
CREATE OR REPLACE FUNCTION annotator_money(p_campaign bigint, at timestamptz, price numeric)
RETURNS TABLE (budget numeric, spent numeric, reserved numeric, exceeded boolean)
LANGUAGE sql STABLE AS $$
    SELECT k.money_budget, m.spent, m.reserved, annotator_budget_exceeded(m.spent, m.reserved, price, k.money_budget)
      FROM annotator_campaign k,
           LATERAL (SELECT annotator_money_spent(k.id) AS spent, annotator_money_reserved(k.id, at) AS reserved) m
     WHERE k.id = p_campaign
$$;
