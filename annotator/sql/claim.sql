-- annotator_claim: hand the labeler the next item of a campaign, reserving its price, in one call.
--
-- Only the campaign's labelers claim (annotator_labeler_member): anyone else gets one row whose `refused` is
-- 'not_member' and nothing else, decided before the lock, so they neither wait for it nor hold it up.
-- Then it takes the campaign row lock (FOR UPDATE) and runs one statement. A PL/pgSQL function's statements each
-- take their own snapshot, so that statement sees every claim and answer of the campaign that committed before the
-- lock: its count of free slots and its money are exact (annotator.services.assignments says why claims are serial).
-- The statement:
--   memo   on a budgeted campaign, folds the ledger entries written since the memoised prefix into it and reads
--          spent and reserved (annotator.services.ledger: the memo moves only under this exclusive lock);
--   lease  writes the lease on the first open comparison by priority that the labeler has not had and that has a
--          free slot, if the campaign is active and one more item of p_reserved fits in its budget; comparisons
--          someone else holds (a round being closed) are passed over (SKIP LOCKED), not waited for;
-- and returns one row: why nothing was claimed ('closed', 'over_budget'; NULL otherwise), the money as read, and
-- the lease with its comparison and the item's texts (NULLs when nothing is left for the labeler). The texts never
-- change, so reading them under the lock costs the lock a join, not a round trip.
DROP FUNCTION IF EXISTS annotator_claim(bigint, integer, boolean, timestamptz, timestamptz, numeric);

CREATE FUNCTION annotator_claim(
    p_campaign bigint, p_labeler integer, p_swapped boolean, p_now timestamptz, p_until timestamptz,
    p_reserved numeric)
RETURNS TABLE (refused text, budget numeric, spent numeric, reserved numeric, lease_id bigint,
               comparison_id bigint, campaign_id bigint, round_id bigint, prompt_id bigint,
               completion_a_id bigint, completion_b_id bigint, prompt_text text, text_a text, text_b text)
LANGUAGE plpgsql AS $function$
#variable_conflict use_column
BEGIN
    IF NOT annotator_labeler_member(p_campaign, p_labeler) THEN
        refused := 'not_member';
        RETURN NEXT;
        RETURN;
    END IF;
    PERFORM 1 FROM annotator_campaign WHERE id = p_campaign FOR UPDATE;
    RETURN QUERY
    WITH memo (spent, reserved) AS (
        UPDATE annotator_campaign AS k
           SET ledger_prefix_sum = annotator_money_spent(k.id),
               ledger_prefix_end_id = COALESCE((SELECT MAX(e.id) FROM annotator_ledgerentry e
                                                 WHERE e.campaign_id = k.id AND e.id > k.ledger_prefix_end_id),
                                               k.ledger_prefix_end_id)
         WHERE k.id = p_campaign AND k.money_budget IS NOT NULL
        RETURNING k.ledger_prefix_sum, annotator_money_reserved(k.id, p_now)
    ),
    lease AS (
        INSERT INTO annotator_assignment
            (comparison_id, labeler_id, status, swapped, leased_at, leased_until, submitted_at, reserved_amount)
        SELECT c.id, p_labeler, 'leased', p_swapped, p_now, p_until, NULL, p_reserved
          FROM annotator_comparison c
         WHERE c.campaign_id = p_campaign AND c.is_open
           -- two uncorrelated checks, run once before the candidate scan
           AND EXISTS (SELECT 1 FROM annotator_campaign k WHERE k.id = p_campaign AND k.is_active)
           AND NOT EXISTS (SELECT 1 FROM memo JOIN annotator_campaign k ON k.id = p_campaign
                            WHERE annotator_budget_exceeded(memo.spent, memo.reserved, p_reserved, k.money_budget))
           AND NOT EXISTS (SELECT 1 FROM annotator_assignment seen
                            WHERE seen.comparison_id = c.id AND seen.labeler_id = p_labeler)
           AND c.judgements_wanted > (SELECT COUNT(*) FROM annotator_assignment held
                                       WHERE held.comparison_id = c.id
                                         AND annotator_holds_slot(held.status, held.leased_until, p_now))
         ORDER BY c.priority DESC, c.id
         LIMIT 1
           FOR UPDATE OF c SKIP LOCKED
        RETURNING id, comparison_id
    )
    SELECT CASE WHEN NOT k.is_active THEN 'closed'
                WHEN lease.id IS NULL
                 AND annotator_budget_exceeded(memo.spent, memo.reserved, p_reserved, k.money_budget)
                THEN 'over_budget' END,
           k.money_budget, memo.spent, memo.reserved, lease.id,
           c.id, c.campaign_id, c.round_id, c.prompt_id, c.completion_a_id, c.completion_b_id,
           p.text, ca.text, cb.text
      FROM annotator_campaign k
      LEFT JOIN memo ON TRUE
      LEFT JOIN (lease
                 JOIN annotator_comparison c ON c.id = lease.comparison_id
                 JOIN annotator_prompt p ON p.id = c.prompt_id
                 JOIN annotator_completion ca ON ca.id = c.completion_a_id
                 LEFT JOIN annotator_completion cb ON cb.id = c.completion_b_id) ON TRUE
     WHERE k.id = p_campaign;
END
$function$;
