-- annotator_answer: store a labeler's answer to their assignment, charge it and count it, in one call.
--
-- The caller has read the assignment without a lock and priced the answer (p_pay, p_fee, p_paid_seconds: the
-- labeler's rate, never more than the reservation). Here, under the locks (the assignment FOR UPDATE, its campaign
-- FOR SHARE: see annotator.services.ledger), the assignment is checked again with the time read after the lock, and
-- the answer stored, the assignment marked submitted, the item charged and counted on its comparison.
-- Returns one row: `refused` (why the assignment cannot take the answer, or NULL when stored), the answer's id, when
-- it was answered (p_now, or the time after the lock) and when it was stored.
DROP FUNCTION IF EXISTS annotator_answer(bigint, integer, text, timestamptz, text, integer, text, text, integer,
                                         numeric, numeric, numeric, text);

CREATE FUNCTION annotator_answer(
    p_assignment bigint, p_labeler integer, p_task_kind text, p_now timestamptz,
    p_choice text, p_strength integer, p_value text, p_rationale text, p_milliseconds integer,
    p_pay numeric, p_fee numeric, p_paid_seconds numeric, p_unit text)
RETURNS TABLE (refused text, answer_id bigint, answered_at timestamptz, stored_at timestamptz)
LANGUAGE plpgsql AS $function$
DECLARE
    item record;
BEGIN
    -- The item's kind is its own (a rating item has no completion B), not its campaign's: an evaluation's blind
    -- ratings are rating items in a pairwise campaign.
    SELECT a.id, a.labeler_id, a.status, a.leased_until, a.comparison_id, c.campaign_id, c.round_id,
           CASE WHEN c.completion_b_id IS NULL THEN 'rating' ELSE 'pairwise' END AS task_kind,
           CASE WHEN c.purpose = 'evaluation' THEN 'evaluation' ELSE 'labeling' END AS charge_category
      INTO item
      FROM annotator_assignment a
      JOIN annotator_comparison c ON c.id = a.comparison_id
      JOIN annotator_campaign k ON k.id = c.campaign_id
     WHERE a.id = p_assignment AND a.labeler_id = p_labeler
       FOR UPDATE OF a FOR SHARE OF k;
    IF NOT FOUND THEN
        refused := 'not_found';
        RETURN NEXT;
        RETURN;
    END IF;
    stored_at := clock_timestamp();
    answered_at := COALESCE(p_now, stored_at);  -- after the campaign lock: see annotator.services.ledger

    -- The refusals, in this order (annotator.services.judgements words them for people).
    refused := CASE WHEN item.task_kind <> p_task_kind THEN 'wrong_kind'
                    WHEN item.status = 'submitted' THEN 'already_submitted'
                    WHEN NOT annotator_lease_live(item.status, item.leased_until, answered_at) THEN 'lease_expired'
               END;
    IF refused IS NOT NULL THEN
        RETURN NEXT;
        RETURN;
    END IF;

    IF p_task_kind = 'pairwise' THEN
        INSERT INTO annotator_judgement (assignment_id, choice, strength, rationale, milliseconds, created_at)
        VALUES (p_assignment, p_choice, p_strength, p_rationale, p_milliseconds, stored_at)
        RETURNING id INTO answer_id;
    ELSE
        INSERT INTO annotator_rating (assignment_id, value, rationale, milliseconds, created_at)
        VALUES (p_assignment, p_value, p_rationale, p_milliseconds, stored_at)
        RETURNING id INTO answer_id;
    END IF;
    UPDATE annotator_assignment SET status = 'submitted', submitted_at = answered_at WHERE id = p_assignment;

    -- The charge of an answer: the labeler's pay (under `evaluation` for an evaluation's item, so its spend shows
    -- apart), and the platform fee when there is one. A unique constraint on the assignment's pay charge makes a
    -- second charge for the same assignment impossible.
    INSERT INTO annotator_ledgerentry
        (campaign_id, category, amount, quantity, unit, labeler_id, assignment_id, round_id, task_ref, device_type,
         seconds_on_page, reverses_id, recorded_by_id, reason, created_at)
    SELECT item.campaign_id, e.category, e.amount, 1, p_unit, item.labeler_id, item.id, item.round_id, '', '',
           e.seconds, NULL, NULL, e.reason, stored_at
      FROM (VALUES (1, item.charge_category, p_pay, p_paid_seconds, 'judgement accepted'),
                   (2, 'platform_fee', p_fee, NULL, 'platform fee on judgement'))
           AS e (position, category, amount, seconds, reason)
     WHERE e.position = 1 OR e.amount <> 0
     ORDER BY e.position;

    -- One more answer on the comparison; the last one wanted closes it, so claims no longer scan past it. The row
    -- update waits for any other answer to the same comparison and then reads its count, so two last answers
    -- never both miss closing it. Lock order everywhere: campaign, then comparison.
    UPDATE annotator_comparison
       SET judgements_received = judgements_received + 1,
           is_open = is_open AND judgements_received + 1 < judgements_wanted
     WHERE id = item.comparison_id;
    RETURN NEXT;
END
$function$;
